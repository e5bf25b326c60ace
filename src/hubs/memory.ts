/**
 * The embedded default: one process, so there is nobody else to reach. Core delivers to local
 * subscribers itself, so publish has nothing to carry. The class still tracks its topics so
 * that it behaves like the other hubs (and so tests and `status` can ask what is subscribed).
 */
import type { Message } from '../codec/types.js';
import { LocalPresence } from './presence.js';
import type { Hub, HubListener } from './types.js';

export class MemoryHub implements Hub {
  readonly kind = 'memory';
  private readonly topicSet = new Set<string>();
  private closed = false;
  /** Presence and claims of this process (shared by every Server given this hub object). */
  readonly presence = new LocalPresence();

  setListener(_listener: HubListener): void {
    // Never called back: no other process publishes into a memory hub.
  }

  subscribe(topic: string): void {
    if (!this.closed) this.topicSet.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topicSet.delete(topic);
  }

  publish(_topic: string, _data: Message): void {
    // Local delivery is core's job; there is no remote side.
  }

  /** The topics this process subscribes to. */
  topics(): string[] {
    return [...this.topicSet];
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.topicSet.clear();
    this.presence.clear();
  }
}
