/**
 * A hub carries published messages between processes and machines, so that a topic
 * spans them. Core delivers to local subscribers itself; the hub only moves messages to
 * and from *other* processes. A hub must never hand a process back its own publishes.
 */
import type { Message } from '../codec/types.js';

export interface HubMessage {
  topic: string;
  data: Message;
  /** Connection ids (of the publishing process) not to deliver to; meaningful only there, so hubs may drop it. */
}

export type HubListener = (topic: string, data: Message) => void;

export interface Hub {
  /** A short name for logs ("memory", "redis", "cluster"). */
  readonly kind: string;
  /** Called by core for every message that another process published on a topic this process subscribes to. */
  setListener(listener: HubListener): void;
  /** This process has its first local subscriber on `topic`. */
  subscribe(topic: string): void;
  /** This process has no local subscriber left on `topic`. */
  unsubscribe(topic: string): void;
  /** Send a message to every other process subscribed to `topic`. Never throws; failures are logged by the hub. */
  publish(topic: string, data: Message): void;
  /** Stop; further calls are no-ops. */
  close(): Promise<void>;
}
