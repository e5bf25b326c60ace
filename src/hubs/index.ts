/**
 * createHub(spec): the one place that turns a `--hub` value (or API option) into a Hub.
 *   'memory'                   one process (the default outside worker processes)
 *   'cluster'                  worker processes on one machine, a socket mesh between them (see cluster-mesh.ts)
 *   'redis://host:port[/db]'   processes and machines sharing a Redis (also rediss:// for TLS)
 *   'redis+cluster://h:p,h:p'  processes and machines sharing a Redis Cluster (sharded pub/sub)
 *   'nats://host:port[,h:p]'   processes and machines sharing a NATS server or cluster
 *   'redis+streams://host:port[/db]'  the same on Redis Streams: history, offsets, replay (also rediss+streams://)
 *   a Hub object               used as is
 * Leaving spec out picks 'cluster' inside a worker started by runWorkers(), else 'memory'.
 */
import { SwitchboardError } from '../errors.js';
import { ClusterHub, inSwitchboardWorker } from './cluster.js';
import { MemoryHub } from './memory.js';
import { NatsHub } from './nats.js';
import { RedisClusterHub } from './redis-cluster.js';
import { RedisHub } from './redis.js';
import { RedisStreamsHub } from './redis-streams.js';
import type { HistoryOptions } from './history.js';
import type { Hub, HubLog } from './types.js';

export type HubSpec = 'memory' | 'cluster' | `redis://${string}` | `rediss://${string}` | `redis+streams://${string}`
  | `rediss+streams://${string}` | `redis+cluster://${string}` | `nats://${string}` | Hub;

export interface HubOptions {
  /** Where the hub reports outages and recoveries. Default: console.error. */
  log?: HubLog;
  /** Redis channel / NATS subject prefix. Default 'switchboard:' (redis, redis+cluster) or 'switchboard.' (nats). */
  prefix?: string;
  /** How long ready() waits for the hub to connect, in ms. Default 5000. */
  readyTimeout?: number;
  /** Redis, Redis Cluster, NATS: publishes sent and not yet answered; beyond, publishes are dropped (counted, logged once). Default 50000. */
  maxPendingPublishes?: number;
  /** Redis, Redis Cluster, NATS: bytes of publishes sent and not yet answered; cluster: bytes waiting for one other worker. Beyond, publishes are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** Redis, Redis Cluster, NATS: a PING unanswered this long (ms) means Redis is not answering; publishes are dropped until it does. Default 5000. */
  answerTimeout?: number;
  /** Redis: presence entries and claims of a process that stopped refreshing lapse after this many ms. Default 15000. */
  presenceTtl?: number;
  /** Redis: how often a process refreshes its presence entries and claims, in ms. Default 5000. */
  presenceInterval?: number;
  /**
   * History per topic: memory and cluster keep it in process (default 100 messages per topic, 4 MiB
   * in all; false: none); redis+streams trims its streams to it (default 1000 messages per topic).
   * redis:// pub/sub keeps none.
   */
  history?: HistoryOptions | false;
  /** redis+streams: the most messages one replay carries (default 10000). */
  maxReplay?: number;
}

/** Whether `spec` names a hub createHub() can make (checked without connecting to anything). */
export function isHubSpec(spec: string): boolean {
  return spec === 'memory' || spec === 'cluster' || STREAMS_URL.test(spec) || spec.startsWith('redis://') || spec.startsWith('rediss://') ||
    spec.startsWith('redis+cluster://') || spec.startsWith('nats://');
}

export function createHub(spec?: HubSpec | string, options: HubOptions = {}): Hub {
  if (spec === undefined) spec = inSwitchboardWorker() ? 'cluster' : 'memory';
  if (typeof spec !== 'string') return spec;
  if (spec === 'memory') return new MemoryHub({ history: options.history });
  if (spec === 'cluster') return new ClusterHub(options);
  if (STREAMS_URL.test(spec)) {
    const { history, ...rest } = options;
    return new RedisStreamsHub(spec.replace('+streams', ''), { ...rest, history: history === false ? undefined : history });
  }
  // The hubs below keep no history: its options do not apply.
  const { history: _none, maxReplay: _unused, ...rest } = options;
  if (spec.startsWith('redis://') || spec.startsWith('rediss://')) return new RedisHub(spec, rest);
  if (spec.startsWith('redis+cluster://')) return new RedisClusterHub(spec, rest);
  if (spec.startsWith('nats://')) return new NatsHub(spec, rest);
  throw new SwitchboardError(
    'ERR_INVALID_OPTION',
    `unknown hub '${spec}': use 'memory', 'cluster', redis://HOST:PORT, redis+streams://HOST:PORT (history), redis+cluster://HOST:PORT,HOST:PORT or nats://HOST:PORT`,
  );
}

const STREAMS_URL = /^rediss?\+streams:\/\//;

export { ClusterHub, inSwitchboardWorker, MemoryHub, NatsHub, RedisClusterHub, RedisHub, RedisStreamsHub };
export type { RedisHubOptions } from './redis.js';
export type { RedisStreamsHubOptions } from './redis-streams.js';
export type { MemoryHubOptions } from './memory.js';
export type { HistoryOptions } from './history.js';
export type { NatsHubOptions } from './nats.js';
export type { RedisClusterHubOptions } from './redis-cluster.js';
export type { ClusterHubOptions, PeerStats } from './cluster.js';
export type { HistoryEntry, HistoryQuery, HistoryResult, Hub, HubListener, HubLog, HubPresence, PresenceEntry, PresenceListing, ReplayGap } from './types.js';
