/**
 * Redis pub/sub as the hub between processes and machines.
 *
 * Two connections: one publishes, one subscribes (a subscribed connection may not publish
 * under RESP2). Channel = prefix + topic. A payload is a 9-byte header then the raw bytes:
 *   byte 0     'b' (0x62) binary or 't' (0x74) text (UTF-8), so text stays text and bytes stay bytes
 *   bytes 1-8  origin: random per hub instance, so a process drops its own publishes
 *              (core already delivered them locally; Redis would echo them back)
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
import { randomBytes } from 'node:crypto';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import { RedisPresence } from './redis-presence.js';
import type { Hub, HubListener, HubLog } from './types.js';

export interface RedisHubOptions {
  /** Prepended to every topic to make the channel name. Default 'switchboard:'. */
  prefix?: string;
  /** Where outages and recoveries are reported. Default: console.error. */
  log?: HubLog;
  /** How long ready() waits for Redis before it rejects, in ms. Default 5000. */
  readyTimeout?: number;
  /** The longest pause between reconnect attempts, in ms (backoff doubles from 50 ms up to it). Default 2000. */
  maxRetryDelay?: number;
  /** Publishes sent and not yet answered by Redis; beyond, publishes are dropped. Default 50000. */
  maxPendingPublishes?: number;
  /** Bytes of publishes sent and not yet answered; beyond, publishes are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** Redis that leaves a PING unanswered this long (ms) is treated as down. Default 5000. */
  answerTimeout?: number;
  /** Presence: a member (or claim) of a process that stopped refreshing lapses this long after its last refresh, in ms. Default 15000. */
  presenceTtl?: number;
  /** Presence: how often a process refreshes its members and claims, in ms (less than presenceTtl). Default 5000. */
  presenceInterval?: number;
}

/** How often the publisher connection is pinged, at most (ms). */
const PING_EVERY = 1000;

const HEADER = 9;
const KIND_TEXT = 0x74;
const KIND_BINARY = 0x62;

type Role = 'publisher' | 'subscriber';

export class RedisHub implements Hub {
  readonly kind = 'redis';
  /** This instance's origin id (8 random bytes); messages carrying it are our own. */
  readonly origin: Buffer = randomBytes(8);
  readonly prefix: string;
  /** Publishes dropped because Redis was unreachable or not answering (for status output and tests). */
  dropped = 0;
  /** Publishes sent to Redis and not answered yet, and their bytes (bounded by the options of the same name). */
  pendingPublishes = 0;
  pendingBytes = 0;

  private readonly url: string;
  private readonly safeUrl: string;
  private readonly log: HubLog;
  private readonly readyTimeout: number;
  private readonly maxRetryDelay: number;
  private readonly maxPendingPublishes: number;
  private readonly maxPendingBytes: number;
  private readonly answerTimeout: number;
  private readonly topicSet = new Set<string>();
  private listener: HubListener | null = null;
  private pub: RedisClient | null = null;
  private sub: RedisClient | null = null;
  private readonly loading: Promise<void>;
  private loadError: unknown = null;
  /** The subscriber connection's current SUBSCRIBE set is acknowledged. */
  private subSynced = false;
  /** Settles when the last SUBSCRIBE sent has been answered (or failed). */
  private lastSub: Promise<unknown> = Promise.resolve();
  private everUp = false;
  private outage = false;
  /** `dropped` when the current outage (or the time without answers) began: its own count is logged at the end. */
  private droppedAtOutage = 0;
  /** Connected, but Redis does not answer (or not fast enough): publishes are dropped. */
  private stalled = false;
  /** When the outstanding PING was sent (0: none outstanding). */
  private pingSentAt = 0;
  private pinger: NodeJS.Timeout | null = null;
  /** Why the last connection attempt failed, for the start-up report. */
  private lastError: string | null = null;
  /** The start-up failure was told (by ready() rejecting, or logged when nobody waited in ready()). */
  private startReported = false;
  private startTimer: NodeJS.Timeout | null = null;
  private publishErrorLogged = false;
  private foreignLogged = false;
  private waiters: Array<() => void> = [];
  private closed = false;
  /** Who is subscribed where, across processes (see redis-presence.ts). */
  readonly presence: RedisPresence;

  constructor(url: string, options: RedisHubOptions = {}) {
    this.url = url;
    this.safeUrl = redactUrl(url);
    this.prefix = options.prefix ?? 'switchboard:';
    this.log = options.log ?? ((m) => console.error(m));
    this.readyTimeout = options.readyTimeout ?? 5000;
    this.maxRetryDelay = options.maxRetryDelay ?? 2000;
    this.maxPendingPublishes = positive('maxPendingPublishes', options.maxPendingPublishes ?? 50_000);
    this.maxPendingBytes = positive('maxPendingBytes', options.maxPendingBytes ?? 16 * 1024 * 1024);
    this.answerTimeout = positive('answerTimeout', options.answerTimeout ?? 5000);
    const presenceTtl = positive('presenceTtl', options.presenceTtl ?? 15_000);
    const presenceInterval = positive('presenceInterval', options.presenceInterval ?? Math.min(5000, presenceTtl / 3));
    if (presenceInterval >= presenceTtl) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `redis hub: presenceInterval (${presenceInterval}) must be less than presenceTtl (${presenceTtl})`);
    }
    this.presence = new RedisPresence({
      usable: () => (this.pub !== null && this.pub.status === 'ready' && !this.stalled && !this.closed ? this.pub : null),
      prefix: this.prefix,
      origin: this.origin.toString('hex'),
      ttl: Math.ceil(presenceTtl),
      interval: presenceInterval,
      answerTimeout: this.answerTimeout,
      log: this.log,
    });
    // Until Redis has been up once, failed attempts are start-up trouble: one report, from ready()
    // if someone waits there, else one log line after readyTimeout (never "retrying" and then "cannot reach").
    this.startTimer = setTimeout(() => this.reportStartTrouble(), this.readyTimeout);
    this.startTimer.unref();
    this.loading = this.load();
  }

  private reportStartTrouble(): void {
    this.startTimer = null;
    if (this.closed || this.everUp || this.startReported || this.waiters.length > 0) return;
    this.startReported = true;
    this.outage = true;
    this.droppedAtOutage = 0;
    this.log(
      `redis hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'}; retrying; until then only local ` +
        `subscribers get messages and publishes to other processes are dropped`,
    );
  }

  private async load(): Promise<void> {
    let Redis: typeof import('ioredis').Redis;
    try {
      ({ Redis } = await import('ioredis'));
    } catch (err) {
      this.loadError = err;
      this.log(`redis hub: cannot load the 'ioredis' package (${errorText(err)}); install it to use a redis hub`);
      return;
    }
    if (this.closed) return;
    const options: RedisOptions = {
      // Never queue while disconnected and never resend after a reconnect: at-most-once, bounded memory.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // We resubscribe ourselves on every 'ready', from our own topic set, so that topics
      // subscribed or unsubscribed during an outage are right when Redis comes back.
      autoResubscribe: false,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 16), this.maxRetryDelay),
      connectTimeout: Math.max(1000, Math.min(this.readyTimeout, 10000)),
    };
    try {
      this.pub = new Redis(this.url, { ...options, connectionName: 'switchboard-pub' });
      this.sub = new Redis(this.url, { ...options, connectionName: 'switchboard-sub' });
    } catch (err) {
      this.loadError = err;
      this.log(`redis hub: bad redis address ${this.safeUrl} (${errorText(err)})`);
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
        this.stalled = false;
      }
      this.noteDown(null);
    });
    conn.on('ready', () => {
      if (role === 'subscriber') this.resubscribeAll(conn);
      else {
        this.startPinging();
        this.checkUp();
        this.presence.connected();
      }
    });
  }

  private startPinging(): void {
    if (this.pinger !== null || this.closed) return;
    this.pinger = setInterval(() => this.ping(), Math.min(PING_EVERY, Math.max(10, Math.floor(this.answerTimeout / 2))));
    this.pinger.unref();
  }

  /** One PING in flight at a time on the publisher connection: it is answered after every publish sent before it. */
  private ping(): void {
    const pub = this.pub;
    if (pub === null || pub.status !== 'ready' || this.closed) return;
    const now = Date.now();
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt >= this.answerTimeout) this.stall(`no answer for ${now - this.pingSentAt} ms`);
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

  /** Redis is connected but does not answer: drop publishes until it does (logged once). */
  private stall(why: string): void {
    if (this.stalled || this.closed) return;
    this.stalled = true;
    if (this.outage) return; // already told that publishes to other processes are dropped
    this.droppedAtOutage = this.dropped;
    this.log(
      `redis hub: ${this.safeUrl} is not answering (${why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it answers`,
    );
  }

  /** A reply came. Publishing resumes once no PING is overdue and what waits is down to half the bounds. */
  private answered(): void {
    if (!this.stalled || this.closed) return;
    if (this.pingSentAt !== 0 && Date.now() - this.pingSentAt >= this.answerTimeout) return;
    if (this.pendingPublishes > this.maxPendingPublishes / 2 || this.pendingBytes > this.maxPendingBytes / 2) return;
    this.stalled = false;
    this.presence.connected();
    if (this.outage) return;
    this.log(
      `redis hub: ${this.safeUrl} answers again; delivery across processes resumes ` +
        `(${this.dropped - this.droppedAtOutage} message(s) dropped while it did not answer)`,
    );
  }

  private resubscribeAll(conn: RedisClient): void {
    const channels = [...this.topicSet].map((t) => this.prefix + t);
    const sent = channels.length > 0 ? conn.subscribe(...channels) : Promise.resolve();
    const done = sent.then(
      () => {
        if (conn.status === 'ready' && !this.closed) {
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

  private checkUp(): void {
    if (this.closed || !this.up) return;
    if (this.outage) {
      this.outage = false;
      const dropped = this.dropped - this.droppedAtOutage;
      this.log(
        this.everUp
          ? `redis hub: connection to ${this.safeUrl} is back; ${this.topicSet.size} topic(s) resubscribed, ` +
              `delivery across processes resumes (${dropped} message(s) dropped while it was down)`
          : `redis hub: connected to ${this.safeUrl}; ${this.topicSet.size} topic(s) subscribed, ` +
              `delivery across processes starts (${dropped} message(s) dropped before)`,
      );
    }
    this.everUp = true;
    this.lastError = null;
    this.publishErrorLogged = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private noteDown(err: Error | null): void {
    if (this.closed) return;
    if (!this.everUp) {
      // Start-up trouble is reported once, by reportStartTrouble() or ready(), with the last reason.
      if (err !== null) this.lastError = errorText(err);
      return;
    }
    if (this.outage) return;
    this.outage = true;
    this.droppedAtOutage = this.dropped;
    const why = err ? errorText(err) : 'connection closed';
    this.log(
      `redis hub: lost connection to ${this.safeUrl} (${why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it is back`,
    );
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    if (this.closed || this.listener === null) return;
    const name = channel.toString('utf8');
    if (!name.startsWith(this.prefix)) return;
    const topic = name.slice(this.prefix.length);
    // A message in flight when we unsubscribed: the topic is gone here, drop it.
    if (!this.topicSet.has(topic)) return;
    const kind = message.length >= HEADER ? message[0] : -1;
    if (kind !== KIND_TEXT && kind !== KIND_BINARY) {
      if (!this.foreignLogged) {
        this.foreignLogged = true;
        this.log(`redis hub: ignoring a message on ${name} without a switchboard header (published by something else?)`);
      }
      return;
    }
    if (message.compare(this.origin, 0, 8, 1, HEADER) === 0) return; // our own publish, echoed back
    const data: Message = kind === KIND_TEXT ? message.toString('utf8', HEADER) : message.subarray(HEADER);
    this.listener(topic, data);
  }

  setListener(listener: HubListener): void {
    this.listener = listener;
  }

  topics(): string[] {
    return [...this.topicSet];
  }

  subscribe(topic: string): void {
    if (this.closed || this.topicSet.has(topic)) return;
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
    if (this.closed) return;
    if (pub === null || pub.status !== 'ready' || this.stalled) {
      this.dropped++;
      return;
    }
    const payload = encodePayload(this.origin, data);
    const size = payload.length;
    if (this.pendingPublishes >= this.maxPendingPublishes || this.pendingBytes + size > this.maxPendingBytes) {
      this.stall(`${this.pendingPublishes} publish(es), ${this.pendingBytes} bytes, wait for an answer`);
      this.dropped++;
      return;
    }
    this.pendingPublishes++;
    this.pendingBytes += size;
    pub.publish(this.prefix + topic, payload).then(
      () => {
        this.pendingPublishes--;
        this.pendingBytes -= size;
        this.answered();
      },
      (err: unknown) => {
        this.pendingPublishes--;
        this.pendingBytes -= size;
        this.dropped++;
        if (this.outage || this.stalled || this.publishErrorLogged || this.closed) return;
        this.publishErrorLogged = true;
        this.log(`redis hub: publish on ${this.prefix + topic} failed (${errorText(err)}); that message is lost for other processes`);
      },
    );
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + this.readyTimeout;
    await this.loading;
    if (this.loadError !== null) {
      throw new SwitchboardError('ERR_HUB', `redis hub: not available (${errorText(this.loadError)})`, { cause: this.loadError });
    }
    while (true) {
      if (this.closed) throw new SwitchboardError('ERR_CLOSED', 'redis hub: closed');
      if (!this.up) await this.whenUp(deadline);
      const pending = this.lastSub;
      await pending;
      if (this.up && pending === this.lastSub) return;
    }
  }

  private whenUp(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onUp);
        if (this.everUp) {
          // Up once and down again: the outage is logged as such; this caller only learns it timed out.
          reject(new SwitchboardError('ERR_HUB', `redis hub: ${this.safeUrl} is not back within ${this.readyTimeout} ms`));
          return;
        }
        this.startReported = true;
        if (!this.outage) {
          // From now on the hub (if it is kept) is in an outage that ends with "connected to".
          this.outage = true;
          this.droppedAtOutage = 0;
        }
        reject(
          new SwitchboardError('ERR_HUB',
            `redis hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'} (tried for ${this.readyTimeout} ms; is redis running there?)`),
        );
      }, Math.max(0, deadline - Date.now()));
      const onUp = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(onUp);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Before `closed`: its clean leaves and releases go out ahead of the QUIT.
    this.presence.close();
    this.closed = true;
    if (this.pinger !== null) clearInterval(this.pinger);
    if (this.startTimer !== null) clearTimeout(this.startTimer);
    this.pinger = this.startTimer = null;
    this.topicSet.clear();
    this.listener = null;
    await this.loading;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(); // ready() callers loop, see `closed` and reject
    await Promise.all([this.pub, this.sub].map((c) => (c === null ? undefined : shutdown(c))));
  }
}

/** QUIT politely when connected (bounded by a second), then make sure no reconnect timer is left. */
async function shutdown(conn: RedisClient): Promise<void> {
  if (conn.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      conn.quit().catch(() => undefined),
      new Promise<void>((r) => {
        timer = setTimeout(r, 1000);
      }),
    ]);
    clearTimeout(timer);
  }
  conn.disconnect();
}

export function encodePayload(origin: Buffer, data: Message): Buffer {
  if (typeof data === 'string') {
    const out = Buffer.allocUnsafe(HEADER + Buffer.byteLength(data, 'utf8'));
    out[0] = KIND_TEXT;
    origin.copy(out, 1, 0, 8);
    out.write(data, HEADER, 'utf8');
    return out;
  }
  const out = Buffer.allocUnsafe(HEADER + data.length);
  out[0] = KIND_BINARY;
  origin.copy(out, 1, 0, 8);
  data.copy(out, HEADER);
  return out;
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number' || !(v > 0)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `redis hub: option ${name} must be a number > 0 (got ${String(v)})`);
  }
  return v;
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

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
