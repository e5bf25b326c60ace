/**
 * The embedded default: one process, so there is nobody else to reach. It keeps a bounded
 * history per topic (history.ts), so it gives every message an offset and delivers publishes
 * to local subscribers itself, at once, through the listener (see types.ts). With
 * `history: { messages: 0 }` or `history: false` it keeps nothing and core delivers as before.
 */
import type { Message } from '../codec/types.js';
import { LocalPresence } from './presence.js';
import { LocalHistory, type HistoryOptions } from './history.js';
import type { HistoryQuery, HistoryResult, Hub, HubListener } from './types.js';

export interface MemoryHubOptions {
  /** The bounded in-process history (default 100 messages per topic, 4 MiB in all); false: none. */
  history?: HistoryOptions | false;
}

export class MemoryHub implements Hub {
  readonly kind = 'memory';
  readonly keepsHistory: boolean;
  /** The kept messages; null without history. */
  readonly store: LocalHistory | null;
  private readonly topicSet = new Set<string>();
  private listener: HubListener | null = null;
  private closed = false;
  /** Presence and claims of this process (shared by every Server given this hub object). */
  readonly presence = new LocalPresence();

  constructor(options: MemoryHubOptions = {}) {
    this.store = options.history === false ? null : new LocalHistory(options.history);
    if (this.store?.maxMessages === 0) this.store = null;
    this.keepsHistory = this.store !== null;
  }

  setListener(listener: HubListener): void {
    this.listener = listener;
  }

  subscribe(topic: string): void {
    if (!this.closed) this.topicSet.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topicSet.delete(topic);
  }

  publish(topic: string, data: Message, token?: unknown): void {
    // Without history, local delivery is core's job and there is no remote side.
    if (this.store === null || this.closed) return;
    const offset = this.store.append(topic, data);
    this.listener?.(topic, data, offset, token);
  }

  history(topic: string, query: HistoryQuery): Promise<HistoryResult> {
    if (this.store === null) return Promise.resolve({ entries: [], gap: 'no-history' });
    return Promise.resolve(this.store.query(topic, query));
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
