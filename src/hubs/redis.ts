/**
 * Redis pub/sub as the hub between processes and machines.
 *
 * Two connections: one publishes, one subscribes (a subscribed connection may not publish
 * under RESP2). Channel = prefix + topic. A switchboard payload is a 10-byte header then the raw bytes:
 *   byte 0     0xFF, a byte that never occurs in UTF-8, so no text published by another program
 *              (`redis-cli PUBLISH switchboard:chat hello`) can be taken for a header
 *   byte 1     'b' (0x62) binary or 't' (0x74) text (UTF-8), so text stays text and bytes stay bytes
 *   bytes 2-9  origin: random per hub instance, so a process drops its own publishes
 *              (core already delivered them locally; Redis would echo them back)
 * A payload without the header comes from another program: it is delivered as text when it is
 * valid UTF-8, else as binary (its bytes as they are).
 *
 * Guarantee: at most once, in publish order per publisher and topic (what Redis gives on one
 * connection). Nothing is queued while Redis is unreachable: publishes are dropped, the outage is
 * logged once, ioredis reconnects with backoff and we resubscribe every topic on each new connection.
 *
 * A Redis that is connected but does not answer (stopped, swapping, overloaded) is an outage too:
 * every PUBLISH waits in ioredis and in the socket's buffer for its reply, so without a bound memory
 * grows as fast as we publish. Publishes waiting for a reply are bounded (count and bytes), and a
 * PING sent each second that goes unanswered for answerTimeout marks Redis as not answering; either
 * way further publishes are dropped until it answers again.
 *
 * ioredis is imported lazily so that the core keeps zero runtime dependencies unless Redis is used.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import { bounded, EngineHub, errorText, positive, type EngineLinkOptions } from './engine-link.js';
import { RedisPresence } from './redis-presence.js';
import type { Hub, HubListener } from './types.js';

export interface RedisHubOptions extends EngineLinkOptions {
  /** Prepended to every topic to make the channel name. Default 'switchboard:'. */
  prefix?: string;
  /** Presence: a member (or claim) of a process that stopped refreshing lapses this long after its last refresh, in ms. Default 15000. */
  presenceTtl?: number;
  /** Presence: how often a process refreshes its members and claims, in ms (less than presenceTtl). Default 5000. */
  presenceInterval?: number;
}

const MAGIC = 0xff;
const HEADER = 10;
const KIND_TEXT = 0x74;
const KIND_BINARY = 0x62;

type Role = 'publisher' | 'subscriber';

export class RedisHub extends EngineHub implements Hub {
  readonly kind: string = 'redis';
  /** This instance's origin id (8 random bytes); messages carrying it are our own. */
  readonly origin: Buffer = randomBytes(8);
  readonly prefix: string;

  protected readonly url: string;
  protected readonly topicSet = new Set<string>();
  protected listener: HubListener | null = null;
  protected pub: RedisClient | null = null;
  protected sub: RedisClient | null = null;
  private readonly loading: Promise<void>;
  /** The subscriber connection's current SUBSCRIBE set is acknowledged. */
  protected subSynced = false;
  /** Settles when the last SUBSCRIBE sent has been answered (or failed). */
  protected lastSub: Promise<unknown> = Promise.resolve();
  /** When the outstanding PING was sent (0: none outstanding). */
  private pingSentAt = 0;
  /** Who is subscribed where, across processes (see redis-presence.ts). */
  readonly presence: RedisPresence;

  constructor(url: string, options: RedisHubOptions = {}) {
    // The redis hub has always taken readyTimeout and maxRetryDelay as given (checkTimes false).
    super('redis', redactUrl(url), 'is redis running there?', options, false);
    const link = this.link;
    this.url = url;
    this.prefix = options.prefix ?? 'switchboard:';
    const presenceTtl = positive('redis', 'presenceTtl', options.presenceTtl ?? 15_000);
    const presenceInterval = positive('redis', 'presenceInterval', options.presenceInterval ?? Math.min(5000, presenceTtl / 3));
    if (presenceInterval >= presenceTtl) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `redis hub: presenceInterval (${presenceInterval}) must be less than presenceTtl (${presenceTtl})`);
    }
    this.presence = new RedisPresence({
      usable: () => (this.pub !== null && this.pub.status === 'ready' && !link.stalled && !link.closed ? this.pub : null),
      prefix: this.prefix,
      origin: this.origin.toString('hex'),
      ttl: Math.ceil(presenceTtl),
      interval: presenceInterval,
      answerTimeout: link.answerTimeout,
      log: link.log,
    });
    link.begin();
    this.loading = this.load();
  }

  private async load(): Promise<void> {
    const link = this.link;
    let Redis: typeof import('ioredis').Redis;
    try {
      ({ Redis } = await import('ioredis'));
    } catch (err) {
      link.loadError = err;
      link.log(`redis hub: cannot load the 'ioredis' package (${errorText(err)}); install it to use a redis hub`);
      return;
    }
    if (link.closed) return;
    const options: RedisOptions = {
      // Never queue while disconnected and never resend after a reconnect: at-most-once, bounded memory.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // We resubscribe ourselves on every 'ready', from our own topic set, so that topics
      // subscribed or unsubscribed during an outage are right when Redis comes back.
      autoResubscribe: false,
      retryStrategy: (times) => link.retryDelay(times),
      connectTimeout: link.connectTimeout,
    };
    try {
      this.pub = new Redis(this.url, { ...options, connectionName: 'switchboard-pub' });
      this.sub = new Redis(this.url, { ...options, connectionName: 'switchboard-sub' });
    } catch (err) {
      link.loadError = err;
      link.log(`redis hub: bad redis address ${link.safeUrl} (${errorText(err)})`);
      return;
    }
    this.watch(this.pub, 'publisher');
    this.watch(this.sub, 'subscriber');
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
  }

  private watch(conn: RedisClient, role: Role): void {
    // An 'error' listener is what keeps ioredis errors from crashing the process.
    conn.on('error', (err: Error) => this.noteDown(err));
    conn.on('close', () => {
      if (role === 'subscriber') this.subSynced = false;
      else {
        // The replies we waited for will not come; the outage line (if any) takes over from the stall's.
        this.pingSentAt = 0;
        this.link.stalled = false;
      }
      this.noteDown(null);
    });
    conn.on('ready', () => {
      if (role === 'subscriber') this.resubscribeAll(conn);
      else {
        this.link.startPinging(() => this.ping());
        this.checkUp();
        this.presence.connected();
      }
    });
  }

  /** One PING in flight at a time on the publisher connection: it is answered after every publish sent before it. */
  private ping(): void {
    const pub = this.pub;
    if (pub === null || pub.status !== 'ready' || this.link.closed) return;
    const now = Date.now();
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt >= this.link.answerTimeout) this.link.stall(`no answer for ${now - this.pingSentAt} ms`);
      return;
    }
    const sentAt = (this.pingSentAt = now);
    pub.ping().then(
      () => {
        if (this.pingSentAt === sentAt) this.pingSentAt = 0;
        this.answered();
      },
      () => {
        if (this.pingSentAt === sentAt) this.pingSentAt = 0;
      },
    );
  }

  /** A reply came. Publishing resumes once no PING is overdue and what waits is down to half the bounds. */
  protected answered(): void {
    if (this.pingSentAt !== 0 && Date.now() - this.pingSentAt >= this.link.answerTimeout) return;
    if (this.link.answered()) this.presence.connected();
  }

  protected resubscribeAll(conn: RedisClient): void {
    const channels = [...this.topicSet].map((t) => this.prefix + t);
    const sent = channels.length > 0 ? conn.subscribe(...channels) : Promise.resolve();
    const done = sent.then(
      () => {
        if (conn.status === 'ready' && !this.link.closed) {
          this.subSynced = true;
          this.checkUp();
        }
      },
      () => undefined, // the connection went away again; the next 'ready' retries
    );
    this.lastSub = done;
  }

  get up(): boolean {
    return this.pub?.status === 'ready' && this.sub?.status === 'ready' && this.subSynced;
  }

  protected checkUp(): void {
    if (this.link.closed || !this.up) return;
    this.link.markUp(this.topicSet.size);
  }

  private noteDown(err: Error | null): void {
    const link = this.link;
    if (link.closed) return;
    if (!link.everUp) {
      // Start-up trouble is reported once, by the link's start-up report or ready(), with the last reason.
      if (err !== null) link.lastError = errorText(err);
      return;
    }
    link.lost(err ? errorText(err) : 'connection closed');
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    if (this.link.closed || this.listener === null) return;
    const name = channel.toString('utf8');
    if (!name.startsWith(this.prefix)) return;
    const topic = name.slice(this.prefix.length);
    // A message in flight when we unsubscribed: the topic is gone here, drop it.
    if (!this.topicSet.has(topic)) return;
    const data = decodePayload(message, this.origin);
    if (data === null) return; // our own publish, echoed back
    this.listener(topic, data);
  }

  setListener(listener: HubListener): void {
    this.listener = listener;
  }

  topics(): string[] {
    return [...this.topicSet];
  }

  subscribe(topic: string): void {
    if (this.link.closed || this.topicSet.has(topic)) return;
    this.topicSet.add(topic);
    const sub = this.sub;
    // While down the topic just waits in the set; resubscribeAll() sends it on 'ready'.
    if (sub !== null && sub.status === 'ready') this.lastSub = sub.subscribe(this.prefix + topic).catch(() => undefined);
  }

  unsubscribe(topic: string): void {
    if (!this.topicSet.delete(topic)) return;
    const sub = this.sub;
    if (sub !== null && sub.status === 'ready') sub.unsubscribe(this.prefix + topic).catch(() => undefined);
  }

  publish(topic: string, data: Message): void {
    const pub = this.pub;
    const link = this.link;
    if (link.closed) return;
    if (pub === null || pub.status !== 'ready' || link.stalled) {
      link.dropped++;
      return;
    }
    const payload = encodePayload(this.origin, data);
    const size = payload.length;
    if (!link.admit(size)) return;
    link.track(pub.publish(this.prefix + topic, payload), size, () => this.answered(), (err) => {
      link.publishFailed(`publish on ${this.prefix + topic} failed (${errorText(err)}); that message is lost for other processes`);
    });
  }

  async ready(): Promise<void> {
    const deadline = await this.link.loaded(this.loading);
    while (true) {
      this.link.assertOpen();
      if (!this.up) await this.link.whenUp(deadline);
      const pending = this.lastSub;
      await pending;
      if (this.up && pending === this.lastSub) return;
    }
  }

  async close(): Promise<void> {
    if (this.link.closed) return;
    // Before `closed`: its clean leaves and releases go out ahead of the QUIT.
    this.presence.close();
    this.link.close();
    this.topicSet.clear();
    this.listener = null;
    await this.loading;
    this.link.wakeWaiters(); // ready() callers loop, see `closed` and reject
    await Promise.all([this.pub, this.sub].map((c) => (c === null ? undefined : shutdown(c))));
  }
}

/** QUIT politely when connected (bounded by a second), then make sure no reconnect timer is left. */
async function shutdown(conn: RedisClient): Promise<void> {
  if (conn.status === 'ready') await bounded(conn.quit(), 1000);
  conn.disconnect();
}

export function encodePayload(origin: Buffer, data: Message): Buffer {
  const text = typeof data === 'string';
  const size = text ? Buffer.byteLength(data, 'utf8') : data.length;
  const out = Buffer.allocUnsafe(HEADER + size);
  out[0] = MAGIC;
  out[1] = text ? KIND_TEXT : KIND_BINARY;
  origin.copy(out, 2, 0, 8);
  if (text) out.write(data, HEADER, 'utf8');
  else data.copy(out, HEADER);
  return out;
}

/**
 * The message in a payload read from Redis; null when it is `origin`'s own. A payload without a
 * switchboard header was published by another program: text when it is UTF-8, else its bytes.
 */
export function decodePayload(message: Buffer, origin: Buffer): Message | null {
  const kind = message.length >= HEADER && message[0] === MAGIC ? message[1] : -1;
  if (kind !== KIND_TEXT && kind !== KIND_BINARY) return isUtf8(message) ? message.toString('utf8') : message;
  if (message.compare(origin, 0, 8, 2, HEADER) === 0) return null;
  return kind === KIND_TEXT ? message.toString('utf8', HEADER) : message.subarray(HEADER);
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
