/**
 * Redis Streams as the hub: every message of a topic is an entry of one stream (key = prefix +
 * topic), so it has an offset (the entry id, "ms-seq") and stays readable within the retention.
 *
 *   publish    XADD key MAXLEN ~ N * o ORIGIN:SEQ t|b PAYLOAD   (and XTRIM MINID ~ with maxAge)
 *   delivery   one connection loops XREAD BLOCK over the subscribed topics' streams, from the last
 *              id it read of each, and delivers every entry, this process's own publishes too, in
 *              stream order with its id (see hubs/types.ts: this hub does local delivery)
 *   replay     history(): XRANGE/XREVRANGE on the publisher connection, in a MULTI with XINFO STREAM
 *
 * The same bounds as the pub/sub hub (RedisHub, whose connection handling it shares): XADDs waiting
 * for an answer are bounded in count and bytes, and an unanswered PING (answerTimeout) marks Redis as
 * not answering. While Redis is down or not answering, publishes are delivered locally without an
 * offset and are not kept (counted in `dropped`); they never reach other processes.
 *
 * A subscription starts at the stream's last id when the topic is first subscribed in this process,
 * and the reader keeps its place across reconnects: what was added while the connection was down is
 * read when it is back (if Redis kept it). A reader that falls more than the retention behind (a
 * burst bigger than MAXLEN that it cannot keep up with) misses what was trimmed before it read it:
 * XREAD gives what is there, and the ids cannot tell what was trimmed. Field "o" names the publishing hub instance and a
 * sequence number, so our own entries find the `except` connection given to publish().
 */
import type { Redis as RedisClient } from 'ioredis';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import type { HistoryOptions } from './history.js';
import { RedisHub, type RedisHubOptions } from './redis.js';
import { compareOffsets, parseOffset, type HistoryEntry, type HistoryQuery, type HistoryResult } from './types.js';

export interface RedisStreamsHubOptions extends RedisHubOptions {
  /** Retention per topic: `messages` (MAXLEN ~, default 1000) and/or `maxAge` in ms (MINID ~). */
  history?: HistoryOptions;
  /** A replay carries at most this many messages (the newest; the rest is reported as 'limit'). Default 10000. */
  maxReplay?: number;
}

export const STREAMS_DEFAULT_MESSAGES = 1000;
/** Entries taken per stream per XREAD: what one read may bring into memory. */
const READ_COUNT = 1000;
/** A blocked XREAD returns after this long even when nothing came (it is woken early when topics change). */
const BLOCK_MS = 10_000;
/** How often a topic is trimmed by age at most (ms). */
const AGE_TRIM_EVERY = 1000;

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]>;

export class RedisStreamsHub extends RedisHub {
  override readonly kind: string = 'redis-streams';
  readonly keepsHistory = true;
  readonly maxLen: number | null;
  readonly maxAge: number | null;
  readonly maxReplay: number;
  private readonly originHex: string;
  /** Per subscribed topic, the last id read (a topic without one is not read until it is known). */
  private readonly positions = new Map<string, string>();
  /** Our publishes in flight with an `except` token, by sequence number. */
  private readonly tokens = new Map<number, unknown>();
  private seq = 0;
  private readerId: number | null = null;
  private looping = false;
  /** Bumped when the set of topics changes; the XREAD in flight was sent at `readGen`. */
  private gen = 0;
  private readGen = 0;
  private blocked = false;
  private wakeIdle: (() => void) | null = null;
  private positionWaiters: Array<() => void> = [];
  private readonly lastAgeTrim = new Map<string, number>();
  private foreignEntryLogged = false;

  constructor(url: string, options: RedisStreamsHubOptions = {}) {
    super(url, options);
    const h = options.history ?? {};
    this.maxLen = h.messages !== undefined ? positiveInt('history.messages', h.messages) : h.maxAge !== undefined ? null : STREAMS_DEFAULT_MESSAGES;
    this.maxAge = h.maxAge !== undefined ? positiveInt('history.maxAge', h.maxAge) : null;
    this.maxReplay = positiveInt('maxReplay', options.maxReplay ?? 10_000);
    this.originHex = this.origin.toString('hex');
  }

  private key(topic: string): string {
    return this.prefix + topic;
  }

  // ---- subscriptions and the read loop ----

  protected override resubscribeAll(conn: RedisClient): void {
    // Called on every 'ready' of the reader connection: learn its id (to wake it), then read.
    this.lastSub = this.positionsKnown();
    conn.client('ID').then(
      (id) => {
        this.readerId = Number(id);
        void this.readLoop(conn);
      },
      () => undefined, // gone again; the next 'ready' retries
    );
  }

  /** Settles once every subscribed topic has a start position (or the reader connection is lost). */
  private positionsKnown(): Promise<void> {
    return new Promise((resolve) => this.positionWaiters.push(resolve));
  }

  private settlePositionWaiters(): void {
    const w = this.positionWaiters;
    this.positionWaiters = [];
    for (const f of w) f();
  }

  private async readLoop(conn: RedisClient): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      while (!this.link.closed && conn.status === 'ready') {
        const unknown = [...this.topicSet].filter((t) => !this.positions.has(t));
        if (unknown.length > 0) {
          // The stream's newest id now: everything added after it is new to this process.
          const newest = await Promise.all(unknown.map((t) => conn.xrevrange(this.key(t), '+', '-', 'COUNT', 1)));
          unknown.forEach((t, i) => {
            if (this.topicSet.has(t) && !this.positions.has(t)) this.positions.set(t, newest[i]![0]?.[0] ?? '0-0');
          });
        }
        if (!this.subSynced) {
          this.subSynced = true;
          this.checkUp();
        }
        if ([...this.topicSet].every((t) => this.positions.has(t))) this.settlePositionWaiters();
        const topics = [...this.positions.keys()];
        if (topics.length === 0) {
          await new Promise<void>((resolve) => {
            this.wakeIdle = resolve;
          });
          this.wakeIdle = null;
          continue;
        }
        this.readGen = this.gen;
        this.blocked = true;
        const reply = (await conn.xreadBuffer('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS',
          ...topics.map((t) => this.key(t)), ...topics.map((t) => this.positions.get(t)!))) as StreamReply | null;
        this.blocked = false;
        if (reply !== null) this.onEntries(reply);
      }
    } catch {
      // The connection went away (or closed): its next 'ready' starts the loop again from `positions`.
    } finally {
      this.looping = false;
      this.blocked = false;
      this.settlePositionWaiters();
    }
  }

  /** The topic set changed: the XREAD in flight does not name it, so unblock it (retried while it has not reached Redis). */
  private wake(tries = 0): void {
    if (this.link.closed) return;
    if (this.wakeIdle !== null) {
      this.wakeIdle();
      return;
    }
    const pub = this.pub;
    if (!this.blocked || this.readGen === this.gen || this.readerId === null || pub === null || pub.status !== 'ready') return;
    pub.client('UNBLOCK', this.readerId).then(
      (n) => {
        if (Number(n) === 0 && tries < 50) setTimeout(() => this.wake(tries + 1), 5).unref();
      },
      () => undefined,
    );
  }

  private onEntries(reply: StreamReply): void {
    for (const [keyBuf, entries] of reply) {
      const topic = keyBuf.toString('utf8').slice(this.prefix.length);
      // Unsubscribed meanwhile (or resubscribed and waiting for a fresh start position): not ours now.
      if (!this.positions.has(topic)) continue;
      for (const [idBuf, fields] of entries) {
        const id = idBuf.toString('latin1');
        this.positions.set(topic, id);
        const entry = decodeEntry(fields);
        if (entry === null) {
          if (!this.foreignEntryLogged) {
            this.foreignEntryLogged = true;
            this.link.log(`redis hub: ignoring entry ${id} of stream ${this.key(topic)} without switchboard fields (added by something else?)`);
          }
          continue;
        }
        let token: unknown;
        if (entry.origin === this.originHex) {
          token = this.tokens.get(entry.seq);
          this.tokens.delete(entry.seq);
        }
        if (this.listener === null || this.link.closed) return;
        this.listener(topic, entry.data, id, token);
        if (!this.positions.has(topic)) break; // the listener unsubscribed it
      }
    }
  }

  override subscribe(topic: string): void {
    if (this.link.closed || this.topicSet.has(topic)) return;
    this.topicSet.add(topic);
    this.gen++;
    this.lastSub = this.positionsKnown();
    this.wake();
  }

  override unsubscribe(topic: string): void {
    if (!this.topicSet.delete(topic)) return;
    // A later subscribe starts afresh, not where this one left off.
    this.positions.delete(topic);
    this.gen++;
  }

  /** Topics and the last id read of each (for tests and status). */
  readPositions(): Map<string, string> {
    return new Map(this.positions);
  }

  // ---- publishing ----

  override publish(topic: string, data: Message, token?: unknown): void {
    const link = this.link;
    if (link.closed) return;
    const pub = this.pub;
    if (pub === null || pub.status !== 'ready' || link.stalled) {
      this.dropLocally(topic, data, token);
      return;
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
    if (!link.admit(size)) {
      this.listener?.(topic, data, undefined, token); // dropped for other processes (admit() counted it), delivered here
      return;
    }
    const seq = ++this.seq;
    // Only a topic read here comes back to find its token.
    if (token !== undefined && this.topicSet.has(topic)) {
      this.tokens.set(seq, token);
      // Entries never read back (trimmed before the reader got them, unsubscribed) must not pile up.
      if (this.tokens.size > link.maxPendingPublishes) this.tokens.delete(this.tokens.keys().next().value as number);
    }
    const key = this.key(topic);
    const trim: (string | number)[] = this.maxLen !== null ? ['MAXLEN', '~', this.maxLen] : ['MINID', '~', Date.now() - this.maxAge!];
    const reply = pub.xadd(key, ...trim, '*', 'o', `${this.originHex}:${seq}`, typeof data === 'string' ? 't' : 'b', data);
    link.track(reply, size, () => this.answered(), (err) => {
      this.tokens.delete(seq);
      link.publishFailed(`XADD on ${key} failed (${err instanceof Error ? err.message : String(err)}); that message is lost`);
    });
    if (this.maxLen !== null && this.maxAge !== null) this.trimByAge(pub, topic, key);
  }

  /** Not through Redis: this process's subscribers still get it, without an offset; other processes do not. */
  private dropLocally(topic: string, data: Message, token: unknown): void {
    this.link.dropped++;
    this.listener?.(topic, data, undefined, token);
  }

  private trimByAge(pub: RedisClient, topic: string, key: string): void {
    const now = Date.now();
    if (now - (this.lastAgeTrim.get(topic) ?? 0) < AGE_TRIM_EVERY) return;
    if (this.lastAgeTrim.size > 10_000) this.lastAgeTrim.clear();
    this.lastAgeTrim.set(topic, now);
    pub.xtrim(key, 'MINID', '~', now - this.maxAge!).catch(() => undefined);
  }

  override async close(): Promise<void> {
    const done = super.close();
    // The reader sits in a blocking XREAD: a QUIT would wait behind it, so it is cut at once.
    this.sub?.disconnect();
    this.wakeIdle?.();
    this.tokens.clear();
    await done;
  }

  // ---- history ----

  history(topic: string, query: HistoryQuery): Promise<HistoryResult> {
    const pub = this.pub;
    if (this.link.closed || pub === null || pub.status !== 'ready' || this.link.stalled) return Promise.resolve({ entries: [], gap: 'unavailable' });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<HistoryResult>((resolve) => {
      timer = setTimeout(() => resolve({ entries: [], gap: 'unavailable' }), this.link.answerTimeout);
      timer.unref();
    });
    // Read only once live reading of the topic has its start: the replay then reaches at least
    // that far, so nothing falls between the replay's end and the first live entry.
    const started = this.topicSet.has(topic) && !this.positions.has(topic) ? this.positionsKnown() : Promise.resolve();
    const read = started.then(() => (this.positions.has(topic) || !this.topicSet.has(topic)
      ? this.readHistory(pub, this.key(topic), query)
      : { entries: [], gap: 'unavailable' as const }));
    return Promise.race([read, timeout]).finally(() => clearTimeout(timer));
  }

  private async readHistory(pub: RedisClient, key: string, query: HistoryQuery): Promise<HistoryResult> {
    try {
      if (query.since === undefined) {
        const n = Math.min(query.last ?? 0, this.maxReplay);
        if (n <= 0) return { entries: [] };
        const rows = (await pub.xrevrangeBuffer(key, '+', '-', 'COUNT', n)) as Array<[Buffer, Buffer[]]>;
        return { entries: toEntries(rows.reverse()) };
      }
      const since = query.since;
      if (parseOffset(since) === null) return { entries: [], gap: 'unknown-offset' };
      // One MULTI: whether `since` is still there, what trimming removed, and what came after it.
      const replies = (await pub.multi()
        .xrange(key, since, since)
        .xinfo('STREAM', key)
        .xrevrangeBuffer(key, '+', `(${since}`, 'COUNT', this.maxReplay + 1)
        .exec()) ?? [];
      const [present, info, after] = replies as Array<[Error | null, unknown]>;
      if (info === undefined || info[0] !== null) return { entries: [], gap: 'unknown-offset' }; // no such stream
      const rows = (after?.[1] ?? []) as Array<[Buffer, Buffer[]]>;
      const result: HistoryResult = { entries: toEntries(rows.slice(0, this.maxReplay).reverse()) };
      if (!(Array.isArray(present?.[1]) && (present[1] as unknown[]).length > 0)) {
        // `since` is gone. Trimming removes the oldest first (and does not record what it removed):
        // if `since` is older than the first entry kept and entries were trimmed, messages after it
        // may be lost; otherwise the offset was never in this stream as it is now (Redis lost its
        // data, or the offset is not of this topic). An offset trimmed with nothing lost after it is
        // reported as 'retention' too: the ids cannot tell the two apart.
        const first = fieldOf(info[1], 'recorded-first-entry-id') ?? '0-0';
        const added = Number(fieldOf(info[1], 'entries-added') ?? 0);
        const length = Number(fieldOf(info[1], 'length') ?? 0);
        const older = parseOffset(first) !== null && compareOffsets(since, first) < 0;
        result.gap = older && added > length ? 'retention' : 'unknown-offset';
      }
      if (rows.length > this.maxReplay) result.gap ??= 'limit';
      return result;
    } catch {
      return { entries: [], gap: 'unavailable' };
    }
  }
}

function toEntries(rows: Array<[Buffer, Buffer[]]>): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const [id, fields] of rows) {
    const e = decodeEntry(fields);
    if (e !== null) out.push({ offset: id.toString('latin1'), data: e.data });
  }
  return out;
}

/** Fields o (origin:seq) and t (text) or b (bytes); null for entries someone else added. */
function decodeEntry(fields: Buffer[]): { origin: string; seq: number; data: Message } | null {
  let origin = '';
  let seq = 0;
  let data: Message | null = null;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    if (name.length !== 1) continue;
    const v = fields[i + 1]!;
    if (name[0] === 0x6f) {
      const s = v.toString('latin1');
      const colon = s.indexOf(':');
      origin = s.slice(0, colon);
      seq = Number(s.slice(colon + 1));
    } else if (name[0] === 0x74) data = v.toString('utf8');
    else if (name[0] === 0x62) data = v;
  }
  return data === null || origin === '' ? null : { origin, seq, data };
}

/** A field of a flat [name, value, ...] reply (XINFO STREAM). */
function fieldOf(reply: unknown, name: string): string | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return String(reply[i + 1]);
  return undefined;
}

function positiveInt(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `redis streams hub: option ${name} must be an integer > 0 (got ${String(v)})`);
  }
  return v;
}
