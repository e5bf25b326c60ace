/**
 * NATS as the hub between processes and machines (the official `nats` client, loaded lazily).
 *
 * One connection per hub, opened with `noEcho`, so the server never hands a process its own
 * publishes back: no origin id is needed. Subject = prefix + topic (prefix 'switchboard.' by
 * default), one subscription per topic, so the server routes only what a process subscribes to.
 * Payloads are the message bytes as they are: a text message is a plain NATS message that any
 * `nats sub` reads as is; a binary one carries the header `Switchboard-Type: binary`. A message
 * without that header (`nats pub switchboard.chat hello` from anything else) is text when it is
 * valid UTF-8, else binary.
 *
 * Guarantee: at most once, in publish order per publisher and topic (NATS core on one connection).
 * While the connection is down, publishes are dropped (the client would buffer them without a
 * bound), the outage is logged once, the client reconnects and resubscribes by itself.
 *
 * NATS does not answer a PUB, so what waits is measured with PING/PONG (`flush()`): publishes not yet
 * covered by an answered PING are pending, bounded by count and bytes; a PING (one in flight,
 * at least one a second) unanswered for answerTimeout marks the server as not answering. Either way
 * publishes are dropped until it answers, as the redis hub does.
 */
import { isUtf8 } from 'node:buffer';
import type { ConnectionOptions, Msg, MsgHdrs, NatsConnection, Subscription } from 'nats';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import type { Hub, HubListener, HubLog } from './types.js';

export interface NatsHubOptions {
  /** Prepended to every topic to make the subject. Default 'switchboard.'. */
  prefix?: string;
  /** Where outages and recoveries are reported. Default: console.error. */
  log?: HubLog;
  /** How long ready() waits for the server before it rejects, in ms. Default 5000. */
  readyTimeout?: number;
  /** The longest pause between reconnect attempts, in ms. Default 2000. */
  maxRetryDelay?: number;
  /** Publishes not yet covered by an answered PING; beyond, publishes are dropped. Default 50000. */
  maxPendingPublishes?: number;
  /** Bytes of those publishes; beyond, publishes are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** A PING unanswered this long (ms) means the server is not answering. Default 5000. */
  answerTimeout?: number;
}

const PING_EVERY = 1000;
export const NATS_TYPE_HEADER = 'Switchboard-Type';

interface Flush {
  count: number;
  bytes: number;
  sentAt: number;
}

type NatsModule = typeof import('nats');

export class NatsHub implements Hub {
  readonly kind = 'nats';
  readonly prefix: string;
  dropped = 0;
  pendingPublishes = 0;
  pendingBytes = 0;

  private readonly servers: string[];
  private readonly auth: { user?: string; pass?: string };
  private readonly safeUrl: string;
  private readonly log: HubLog;
  private readonly readyTimeout: number;
  private readonly maxRetryDelay: number;
  private readonly maxPendingPublishes: number;
  private readonly maxPendingBytes: number;
  private readonly answerTimeout: number;
  /** topic -> its subscription (null while not connected yet). */
  private readonly subs = new Map<string, Subscription | null>();
  private listener: HubListener | null = null;
  private nats: NatsModule | null = null;
  private nc: NatsConnection | null = null;
  private connected = false;
  private everUp = false;
  private outage = false;
  private stalled = false;
  private droppedAtOutage = 0;
  private lastError: string | null = null;
  private startReported = false;
  private publishErrorLogged = false;
  /** Publishes made since the last PING was sent, and the PING in flight with what it covers. */
  private unflushed: { count: number; bytes: number } = { count: 0, bytes: 0 };
  private inflight: Flush | null = null;
  private binaryHeaders: MsgHdrs | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private startTimer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private attempts = 0;
  private waiters: Array<() => void> = [];
  private loadError: unknown = null;
  private readonly loading: Promise<void>;
  private closed = false;

  constructor(url: string, options: NatsHubOptions = {}) {
    const parsed = parseNatsUrl(url);
    this.servers = parsed.servers;
    this.auth = parsed.auth;
    this.safeUrl = parsed.safe;
    this.prefix = options.prefix ?? 'switchboard.';
    this.log = options.log ?? ((m) => console.error(m));
    this.readyTimeout = positive('readyTimeout', options.readyTimeout ?? 5000);
    this.maxRetryDelay = positive('maxRetryDelay', options.maxRetryDelay ?? 2000);
    this.maxPendingPublishes = positive('maxPendingPublishes', options.maxPendingPublishes ?? 50_000);
    this.maxPendingBytes = positive('maxPendingBytes', options.maxPendingBytes ?? 16 * 1024 * 1024);
    this.answerTimeout = positive('answerTimeout', options.answerTimeout ?? 5000);
    this.startTimer = setTimeout(() => this.reportStartTrouble(), this.readyTimeout);
    this.startTimer.unref();
    this.loading = this.load();
  }

  /** The subject a topic is published on: prefix + topic, with what a subject may not hold escaped (see subjectFor). */
  subject(topic: string): string {
    return subjectFor(this.prefix, topic);
  }

  private async load(): Promise<void> {
    try {
      this.nats = await import('nats');
    } catch (err) {
      this.loadError = err;
      this.log(`nats hub: cannot load the 'nats' package (${errorText(err)}); install it to use a nats hub`);
      return;
    }
    this.binaryHeaders = this.nats.headers();
    this.binaryHeaders.set(NATS_TYPE_HEADER, 'binary');
    this.connect();
  }

  private connect(): void {
    if (this.closed || this.nats === null) return;
    const options: ConnectionOptions = {
      servers: this.servers,
      ...this.auth,
      name: 'switchboard',
      noEcho: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: Math.min(250, this.maxRetryDelay),
      timeout: Math.max(1000, Math.min(this.readyTimeout, 10000)),
      // A dead peer that does not close the socket is found by our own PINGs (answerTimeout)
      // only as "not answering"; the client's own pings make it reconnect.
      pingInterval: Math.max(1000, this.answerTimeout),
      maxPingOut: 2,
    };
    this.nats.connect(options).then(
      (nc) => {
        if (this.closed) {
          nc.close().catch(() => undefined);
          return;
        }
        this.attempts = 0;
        this.nc = nc;
        for (const topic of this.subs.keys()) this.subs.set(topic, this.subscribeOn(nc, topic));
        void this.watch(nc);
        this.startPinging();
        this.onConnected();
      },
      (err: unknown) => {
        this.noteDown(err);
        // The client retries by itself only once it has connected; before that, we do.
        const delay = Math.min(50 * 2 ** Math.min(this.attempts++, 16), this.maxRetryDelay);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.connect();
        }, delay);
        this.retryTimer.unref();
      },
    );
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.closed) return;
      if (s.type === 'disconnect') {
        this.connected = false;
        this.everUpSinceConnect = false;
        this.resetPending();
        this.noteDown(null);
      } else if (s.type === 'reconnect') {
        this.onConnected();
      } else if (s.type === 'error') {
        this.lastError = String(s.data);
      }
    }
  }

  /** Connected (first time or again). Subscriptions are in effect once a PING sent after them is answered. */
  private onConnected(): void {
    const nc = this.nc;
    if (nc === null || this.closed) return;
    this.connected = true;
    this.resetPending();
    nc.flush().then(() => {
      if (this.closed || !this.connected || this.nc !== nc) return;
      this.checkUp();
    }, () => undefined);
  }

  private resetPending(): void {
    this.unflushed = { count: 0, bytes: 0 };
    this.inflight = null;
    this.pendingPublishes = this.pendingBytes = 0;
    this.stalled = false;
  }

  private subscribeOn(nc: NatsConnection, topic: string): Subscription {
    return nc.subscribe(this.subject(topic), { callback: (err, msg) => { if (err === null) this.onMessage(topic, msg); } });
  }

  private onMessage(topic: string, msg: Msg): void {
    if (this.closed || this.listener === null || !this.subs.has(topic)) return;
    const bytes = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
    const binary = msg.headers?.get(NATS_TYPE_HEADER) === 'binary';
    const data: Message = !binary && isUtf8(bytes) ? bytes.toString('utf8') : bytes;
    this.listener(topic, data);
  }

  private reportStartTrouble(): void {
    this.startTimer = null;
    if (this.closed || this.everUp || this.startReported || this.waiters.length > 0) return;
    this.startReported = true;
    this.outage = true;
    this.droppedAtOutage = 0;
    this.log(
      `nats hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'}; retrying; until then only local ` +
        `subscribers get messages and publishes to other processes are dropped`,
    );
  }

  private noteDown(err: unknown): void {
    if (this.closed) return;
    if (err !== null) this.lastError = errorText(err);
    if (!this.everUp || this.outage) return;
    this.outage = true;
    this.droppedAtOutage = this.dropped;
    this.log(
      `nats hub: lost connection to ${this.safeUrl} (${err !== null ? errorText(err) : 'connection closed'}); ` +
        `local delivery goes on, messages published to other processes are dropped until it is back`,
    );
  }

  get up(): boolean {
    return this.connected && this.everUpSinceConnect && !this.stalled;
  }

  /** Set when the PING after (re)connecting was answered: the subscriptions are in effect. */
  private everUpSinceConnect = false;

  private checkUp(): void {
    this.everUpSinceConnect = true;
    if (this.outage) {
      this.outage = false;
      const dropped = this.dropped - this.droppedAtOutage;
      this.log(
        this.everUp
          ? `nats hub: connection to ${this.safeUrl} is back; ${this.subs.size} topic(s) resubscribed, ` +
              `delivery across processes resumes (${dropped} message(s) dropped while it was down)`
          : `nats hub: connected to ${this.safeUrl}; ${this.subs.size} topic(s) subscribed, ` +
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

  private startPinging(): void {
    if (this.pinger !== null || this.closed) return;
    this.pinger = setInterval(() => this.ping(), Math.min(PING_EVERY, Math.max(10, Math.floor(this.answerTimeout / 2))));
    this.pinger.unref();
  }

  private ping(): void {
    if (!this.connected || this.closed) return;
    const inflight = this.inflight;
    if (inflight !== null) {
      const waited = Date.now() - inflight.sentAt;
      if (waited >= this.answerTimeout) this.stall(`no answer for ${waited} ms`);
      return;
    }
    this.sendFlush();
  }

  /** One PING in flight: its PONG comes after every publish written before it. */
  private sendFlush(): void {
    const nc = this.nc;
    if (nc === null || this.inflight !== null) return;
    const flush: Flush = { ...this.unflushed, sentAt: Date.now() };
    this.unflushed = { count: 0, bytes: 0 };
    this.inflight = flush;
    nc.flush().then(
      () => {
        if (this.inflight !== flush) return; // a reconnect reset the books
        this.inflight = null;
        this.pendingPublishes -= flush.count;
        this.pendingBytes -= flush.bytes;
        this.answered();
        if (this.unflushed.count > 0) this.sendFlush();
      },
      () => {
        if (this.inflight === flush) this.inflight = null;
      },
    );
  }

  private stall(why: string): void {
    if (this.stalled || this.closed) return;
    this.stalled = true;
    if (this.outage) return;
    this.droppedAtOutage = this.dropped;
    this.log(
      `nats hub: ${this.safeUrl} is not answering (${why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it answers`,
    );
  }

  private answered(): void {
    if (!this.stalled || this.closed) return;
    if (this.pendingPublishes > this.maxPendingPublishes / 2 || this.pendingBytes > this.maxPendingBytes / 2) return;
    this.stalled = false;
    if (this.outage) return;
    this.log(
      `nats hub: ${this.safeUrl} answers again; delivery across processes resumes ` +
        `(${this.dropped - this.droppedAtOutage} message(s) dropped while it did not answer)`,
    );
  }

  setListener(listener: HubListener): void {
    this.listener = listener;
  }

  topics(): string[] {
    return [...this.subs.keys()];
  }

  subscribe(topic: string): void {
    if (this.closed || this.subs.has(topic)) return;
    const nc = this.nc;
    // Before the first connection the topic waits in the map; connect() subscribes it. After
    // that the client keeps subscriptions across reconnects by itself.
    this.subs.set(topic, nc === null ? null : this.subscribeOn(nc, topic));
  }

  unsubscribe(topic: string): void {
    const sub = this.subs.get(topic);
    if (!this.subs.delete(topic)) return;
    try {
      sub?.unsubscribe();
    } catch {
      // closed connection: nothing left to undo
    }
  }

  publish(topic: string, data: Message): void {
    if (this.closed) return;
    const nc = this.nc;
    if (nc === null || !this.connected || this.stalled) {
      this.dropped++;
      return;
    }
    const text = typeof data === 'string';
    const payload = text ? Buffer.from(data, 'utf8') : data;
    const size = payload.length;
    if (this.pendingPublishes >= this.maxPendingPublishes || this.pendingBytes + size > this.maxPendingBytes) {
      this.stall(`${this.pendingPublishes} publish(es), ${this.pendingBytes} bytes, wait for an answer`);
      this.dropped++;
      return;
    }
    try {
      nc.publish(this.subject(topic), payload, text ? undefined : { headers: this.binaryHeaders! });
    } catch (err) {
      // Too large for the server's max_payload, or the connection just closed.
      this.dropped++;
      if (!this.publishErrorLogged && !this.outage) {
        this.publishErrorLogged = true;
        this.log(`nats hub: publish on ${this.subject(topic)} failed (${errorText(err)}); that message is lost for other processes`);
      }
      return;
    }
    this.pendingPublishes++;
    this.pendingBytes += size;
    this.unflushed.count++;
    this.unflushed.bytes += size;
    if (this.inflight === null) this.sendFlush();
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + this.readyTimeout;
    await this.loading;
    if (this.loadError !== null) {
      throw new SwitchboardError('ERR_HUB', `nats hub: not available (${errorText(this.loadError)})`, { cause: this.loadError });
    }
    if (this.closed) throw new SwitchboardError('ERR_CLOSED', 'nats hub: closed');
    if (!this.up) await this.whenUp(deadline);
    if (this.closed) throw new SwitchboardError('ERR_CLOSED', 'nats hub: closed');
    // Topics subscribed since: a PING answered after them puts them in effect.
    await this.nc?.flush().catch(() => undefined);
  }

  private whenUp(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onUp);
        if (this.everUp) {
          reject(new SwitchboardError('ERR_HUB', `nats hub: ${this.safeUrl} is not back within ${this.readyTimeout} ms`));
          return;
        }
        this.startReported = true;
        if (!this.outage) {
          this.outage = true;
          this.droppedAtOutage = 0;
        }
        reject(new SwitchboardError('ERR_HUB',
          `nats hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'} (tried for ${this.readyTimeout} ms; is nats-server running there?)`));
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
    this.closed = true;
    for (const t of [this.retryTimer, this.startTimer]) if (t !== null) clearTimeout(t);
    if (this.pinger !== null) clearInterval(this.pinger);
    this.retryTimer = this.startTimer = this.pinger = null;
    this.subs.clear();
    this.listener = null;
    await this.loading;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    const nc = this.nc;
    this.nc = null;
    this.connected = false;
    if (nc !== null) {
      // drain() would wait for the server; a bounded close is what shutdown needs.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        nc.close().catch(() => undefined),
        new Promise<void>((r) => {
          timer = setTimeout(r, 1000);
        }),
      ]);
      clearTimeout(timer);
    }
  }
}

/**
 * prefix + topic, where a byte a NATS subject may not hold (whitespace and control characters,
 * the wildcards '*' and '>', and '%' itself) is written %XX, and so is a '.' that would make an
 * empty token. A topic that is a valid subject ('chat', 'rooms.lobby') is used as it is.
 */
export function subjectFor(prefix: string, topic: string): string {
  let out = '';
  for (let i = 0; i < topic.length; i++) {
    const c = topic[i]!;
    const code = c.charCodeAt(0);
    const emptyToken = c === '.' && (i === 0 || i === topic.length - 1 || topic[i + 1] === '.');
    if (code <= 0x20 || code === 0x7f || c === '*' || c === '>' || c === '%' || emptyToken || /\s/.test(c)) {
      for (const b of Buffer.from(c, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    } else out += c;
  }
  return prefix + (out === '' ? '%00' : out);
}

/** 'nats://[user:pass@]host:port[,host:port...]' into the client's servers and credentials. */
export function parseNatsUrl(url: string): { servers: string[]; auth: { user?: string; pass?: string }; safe: string } {
  if (!url.startsWith('nats://')) throw new SwitchboardError('ERR_INVALID_OPTION', `nats hub: '${url}' is not a nats:// URL`);
  let rest = url.slice('nats://'.length).replace(/\/$/, '');
  const auth: { user?: string; pass?: string } = {};
  const at = rest.lastIndexOf('@');
  let safeAuth = '';
  if (at !== -1) {
    const [user, pass] = rest.slice(0, at).split(':');
    auth.user = decodeURIComponent(user ?? '');
    if (pass !== undefined) auth.pass = decodeURIComponent(pass);
    safeAuth = pass !== undefined ? `${user}:***@` : `${user}@`;
    rest = rest.slice(at + 1);
  }
  const hosts = rest.split(',').filter((h) => h !== '');
  if (hosts.length === 0 || hosts.some((h) => /[\s/]/.test(h))) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `nats hub: '${url}' has no host:port (use nats://HOST:PORT[,HOST:PORT])`);
  }
  return { servers: hosts.map((h) => (h.includes(':') ? h : `${h}:4222`)), auth, safe: `nats://${safeAuth}${hosts.join(',')}` };
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number' || !(v > 0)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `nats hub: option ${name} must be a number > 0 (got ${String(v)})`);
  }
  return v;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
