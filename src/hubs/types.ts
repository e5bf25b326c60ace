/**
 * A hub carries published messages between processes and machines, so that a topic
 * spans them. Core delivers to local subscribers itself; the hub only moves messages to
 * and from *other* processes. A hub must never hand a process back its own publishes.
 */
import type { Message } from '../codec/types.js';

export type HubListener = (topic: string, data: Message) => void;

/** Where hubs (and the worker runner) write what an operator must know: one line per event, no trailing newline. */
export type HubLog = (message: string) => void;

export interface Hub {
  /** A short name for logs ("memory", "redis", "cluster", "redis+cluster", "nats"). */
  readonly kind: string;
  /** Called by core for every message that another process published on a topic this process subscribes to. */
  setListener(listener: HubListener): void;
  /** This process has its first local subscriber on `topic`. Idempotent. */
  subscribe(topic: string): void;
  /** This process has no local subscriber left on `topic`. Idempotent; delivery on `topic` stops at once. */
  unsubscribe(topic: string): void;
  /** Send a message to every other process subscribed to `topic`. Never throws; failures are logged by the hub. */
  publish(topic: string, data: Message): void;
  /**
   * Resolves once the hub is connected and every subscribe() called before it is in effect
   * (a publish made elsewhere after that point reaches this process). Rejects with a
   * SwitchboardError (code ERR_HUB) when the hub cannot get there (Redis unreachable at start).
   * Not needed for correctness; a server awaits it in listen() so that it starts ready.
   */
  ready(): Promise<void>;
  /** False while the hub cannot carry messages (Redis down); absent: always up. For /healthz. */
  readonly up?: boolean;
  /** Publishes dropped so far (outages, congestion); absent: none are dropped. For /metrics. */
  readonly dropped?: number;
  /** Stop; further calls are no-ops. */
  close(): Promise<void>;
}
