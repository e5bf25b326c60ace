/**
 * createHub(spec): the one place that turns a `--hub` value (or API option) into a Hub.
 *   'memory'                   one process (the default outside worker processes)
 *   'cluster'                  worker processes on one machine, relayed by the primary (see core/workers.ts)
 *   'redis://host:port[/db]'   processes and machines sharing a Redis (also rediss:// for TLS)
 *   a Hub object               used as is
 * Leaving spec out picks 'cluster' inside a worker started by runWorkers(), else 'memory'.
 */
import { SwitchboardError } from '../errors.js';
import { ClusterHub, inSwitchboardWorker } from './cluster.js';
import { MemoryHub } from './memory.js';
import { RedisHub } from './redis.js';
import type { Hub, HubLog } from './types.js';

export type HubSpec = 'memory' | 'cluster' | `redis://${string}` | `rediss://${string}` | Hub;

export interface HubOptions {
  /** Where the hub reports outages and recoveries. Default: console.error. */
  log?: HubLog;
  /** Redis channel prefix. Default 'switchboard:'. */
  prefix?: string;
  /** How long ready() waits for the hub to connect, in ms. Default 5000. */
  readyTimeout?: number;
  /** Redis: publishes sent and not yet answered; beyond, publishes are dropped (counted, logged once). Default 50000. */
  maxPendingPublishes?: number;
  /** Redis: bytes of publishes sent and not yet answered; beyond, publishes are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** Redis: a PING unanswered this long (ms) means Redis is not answering; publishes are dropped until it does. Default 5000. */
  answerTimeout?: number;
  /** Redis: presence entries and claims of a process that stopped refreshing lapse after this many ms. Default 15000. */
  presenceTtl?: number;
  /** Redis: how often a process refreshes its presence entries and claims, in ms. Default 5000. */
  presenceInterval?: number;
}

/** Whether `spec` names a hub createHub() can make (checked without connecting to anything). */
export function isHubSpec(spec: string): boolean {
  return spec === 'memory' || spec === 'cluster' || spec.startsWith('redis://') || spec.startsWith('rediss://');
}

export function createHub(spec?: HubSpec | string, options: HubOptions = {}): Hub {
  if (spec === undefined) spec = inSwitchboardWorker() ? 'cluster' : 'memory';
  if (typeof spec !== 'string') return spec;
  if (spec === 'memory') return new MemoryHub();
  if (spec === 'cluster') return new ClusterHub(options);
  if (spec.startsWith('redis://') || spec.startsWith('rediss://')) return new RedisHub(spec, options);
  throw new SwitchboardError(
    'ERR_INVALID_OPTION',
    `unknown hub '${spec}': use 'memory', 'cluster' or a redis URL such as redis://127.0.0.1:6379`,
  );
}

export { ClusterHub, inSwitchboardWorker, MemoryHub, RedisHub };
export type { RedisHubOptions } from './redis.js';
export type { ClusterHubOptions } from './cluster.js';
export type { Hub, HubListener, HubLog, HubPresence, PresenceEntry, PresenceListing } from './types.js';
