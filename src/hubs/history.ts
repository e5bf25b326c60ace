/**
 * The bounded history of the in-process hubs (memory, cluster): the last messages of each topic,
 * with an offset each, so that a subscriber can ask for what it missed.
 *
 * Offsets are "EPOCH-SEQ": EPOCH is when this history was created (ms), SEQ counts messages
 * across all topics. An offset of another process or an earlier run has another EPOCH and is
 * reported as 'unknown-offset' rather than silently replayed from the wrong place.
 *
 * Two bounds: messages per topic, and bytes across all topics. Past the byte bound the oldest
 * messages of the topic appended to longest ago go first, so a busy topic cannot push a quiet
 * one out entirely while it has its own room.
 */
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import { parseOffset, type HistoryEntry, type HistoryQuery, type HistoryResult } from './types.js';

export interface HistoryOptions {
  /** Messages kept per topic. In-process hubs: default 100; redis+streams: MAXLEN ~, default 1000. 0: keep none. */
  messages?: number;
  /** In-process hubs: bytes kept across all topics (text counted at 2 bytes per UTF-16 unit). Default 4 MiB. */
  bytes?: number;
  /** redis+streams: also trim messages older than this many ms (MINID ~). Default: no age limit. */
  maxAge?: number;
}

export const LOCAL_HISTORY_MESSAGES = 100;
export const LOCAL_HISTORY_BYTES = 4 * 1024 * 1024;

interface Kept {
  seq: number;
  data: Message;
  size: number;
}

interface TopicLog {
  entries: Kept[];
  /** Index of the oldest kept entry (entries before it are trimmed, compacted now and then). */
  head: number;
  /** The newest seq trimmed from this topic (0: none). */
  trimmedThrough: number;
}

export class LocalHistory {
  readonly epoch = Date.now();
  readonly maxMessages: number;
  readonly maxBytes: number;
  private seq = 0;
  private bytes = 0;
  /** In order of last append: the first is the topic appended to longest ago. */
  private readonly topics = new Map<string, TopicLog>();
  /** The newest seq of any topic dropped entirely (its own record is gone with it). */
  private evictedThrough = 0;

  constructor(options: HistoryOptions = {}) {
    this.maxMessages = count('history.messages', options.messages ?? LOCAL_HISTORY_MESSAGES);
    this.maxBytes = count('history.bytes', options.bytes ?? LOCAL_HISTORY_BYTES);
  }

  /** Bytes held now (for tests and status). */
  get size(): number {
    return this.bytes;
  }

  /** Keeps `data` as the newest message of `topic`; returns its offset. */
  append(topic: string, data: Message): string {
    const seq = ++this.seq;
    const offset = `${this.epoch}-${seq}`;
    if (this.maxMessages === 0) return offset;
    let log = this.topics.get(topic);
    // A topic dropped entirely lost its record: whatever was evicted before may have been its.
    if (log === undefined) log = { entries: [], head: 0, trimmedThrough: this.evictedThrough };
    else this.topics.delete(topic); // re-inserted below: now the most recently appended
    this.topics.set(topic, log);
    // A small slice of a big read buffer would keep all of it alive.
    if (typeof data !== 'string' && data.buffer.byteLength > data.length * 2) data = Buffer.from(data);
    const size = typeof data === 'string' ? data.length * 2 : data.length;
    log.entries.push({ seq, data, size });
    this.bytes += size;
    if (log.entries.length - log.head > this.maxMessages) this.trimOne(topic, log);
    while (this.bytes > this.maxBytes) {
      const [oldestTopic, oldest] = this.topics.entries().next().value as [string, TopicLog];
      this.trimOne(oldestTopic, oldest);
    }
    return offset;
  }

  private trimOne(topic: string, log: TopicLog): void {
    const e = log.entries[log.head]!;
    log.entries[log.head] = undefined as unknown as Kept;
    log.head++;
    log.trimmedThrough = e.seq;
    this.bytes -= e.size;
    if (log.head === log.entries.length) {
      this.topics.delete(topic);
      if (e.seq > this.evictedThrough) this.evictedThrough = e.seq;
    } else if (log.head > 64 && log.head * 2 > log.entries.length) {
      log.entries = log.entries.slice(log.head);
      log.head = 0;
    }
  }

  query(topic: string, q: HistoryQuery): HistoryResult {
    const log = this.topics.get(topic);
    const kept = log === undefined ? [] : log.entries;
    const head = log === undefined ? 0 : log.head;
    if (q.since === undefined) {
      const n = Math.max(0, Math.min(q.last ?? 0, kept.length - head));
      return { entries: this.toEntries(kept, kept.length - n) };
    }
    const parsed = parseOffset(q.since);
    if (parsed === null || parsed[0] !== this.epoch || parsed[1] > this.seq) return { entries: [], gap: 'unknown-offset' };
    const since = parsed[1];
    // First kept entry after `since` (entries are in seq order).
    let lo = head;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (kept[mid]!.seq <= since) lo = mid + 1;
      else hi = mid;
    }
    const trimmed = log === undefined ? this.evictedThrough : log.trimmedThrough;
    const result: HistoryResult = { entries: this.toEntries(kept, lo) };
    if (since < trimmed) result.gap = 'retention';
    return result;
  }

  private toEntries(kept: Kept[], from: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let i = from; i < kept.length; i++) out.push({ offset: `${this.epoch}-${kept[i]!.seq}`, data: kept[i]!.data });
    return out;
  }
}

function count(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `option ${name} must be an integer >= 0 (got ${String(v)})`);
  }
  return v;
}
