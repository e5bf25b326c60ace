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
  /** A short name for logs ("memory", "redis", "cluster"). */
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

  /** Presence and claims across the processes sharing this hub (see HubPresence); absent: this process only. */
  readonly presence?: HubPresence;
}

// ---- presence: an optional capability of a hub (Hub.presence) ----

/**
 * One member of a topic as a hub stores it: `id` is unique across the processes sharing the hub
 * (the process's `origin`, then its own part), `meta` the application's metadata as JSON, already
 * bounded in bytes by the server.
 */
export interface PresenceEntry {
  readonly id: string;
  readonly meta: string;
}

export interface PresenceListing {
  /** At most the limit asked for, in no particular order. */
  readonly entries: readonly PresenceEntry[];
  /** Members of the topic in all processes (entries.length <= total). */
  readonly total: number;
}

/**
 * Who is subscribed to a topic across every process sharing the hub, and names that one holder
 * at a time may claim across them. Entries and claims of a process that crashes go away by
 * themselves (a TTL, or the primary seeing the worker exit). Core calls it; applications use
 * Server.presence(), setPresence(), claim() and release().
 */
export interface HubPresence {
  /** Unique among the processes sharing the hub; core prefixes member and holder ids with it. */
  readonly origin: string;
  /** `id` is a member of `topic` with `meta` (again: its meta is replaced). Never throws. */
  join(topic: string, id: string, meta: string): void;
  /** `id` is no longer a member of `topic`. Never throws. */
  leave(topic: string, id: string): void;
  /** At most `limit` members of `topic` and their count; rejects (ERR_HUB) when the hub cannot answer. */
  list(topic: string, limit: number): Promise<PresenceListing>;
  /** Takes `key` for `holder` if nobody else holds it (true), or says it is held (false); rejects (ERR_HUB) when it cannot tell. */
  claim(key: string, holder: string): Promise<boolean>;
  /** Gives `key` back if `holder` holds it. Never throws. */
  release(key: string, holder: string): void;
  /** Called when a claim this process held was found taken by another (after it was cut off longer than the TTL). */
  onClaimLost(listener: (key: string, holder: string) => void): void;
}
