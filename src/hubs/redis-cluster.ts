/**
 * Sharded pub/sub on a Redis Cluster (Redis 7: SSUBSCRIBE / SPUBLISH) as the hub.
 *
 * Plain PUBLISH on a cluster is broadcast to every node over the cluster bus, so it does not scale
 * with the cluster; a sharded channel lives on the master that owns its slot, and only that shard
 * carries its messages. Channel = prefix + topic, payloads framed as the redis hub frames them
 * (redis.ts: a header a text from another program cannot carry, so `SPUBLISH switchboard:chat hi`
 * from anything arrives as text, and our own publishes are told apart by origin).
 *
 * ioredis's Cluster client with `shardedSubscribers` keeps one subscriber connection per master and
 * moves subscriptions when slots move or a master fails over (it resubscribes after each change of
 * the slot map, and when a shard's subscriber connection dies). We add the bounds of the redis hub:
 * publishes waiting for their reply are bounded (count, bytes); every master is PINGed once a
 * second, and a master that fails or leaves a PING unanswered for answerTimeout is down (logged
 * once, `up` false) until it answers. Publishes to a down master fail in ioredis and are counted
 * as dropped; nothing is queued for later.
 */
import type { Cluster, ClusterOptions } from 'ioredis';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import { randomBytes } from 'node:crypto';
import { decodePayload, encodePayload } from './redis.js';
import type { Hub, HubListener, HubLog } from './types.js';

export interface RedisClusterHubOptions {
  /** Prepended to every topic to make the sharded channel name. Default 'switchboard:'. */
  prefix?: string;
  /** Where outages and recoveries are reported. Default: console.error. */
  log?: HubLog;
  /** How long ready() waits for the cluster before it rejects, in ms. Default 5000. */
  readyTimeout?: number;
  /** The longest pause between reconnect attempts, in ms. Default 2000. */
  maxRetryDelay?: number;
  /** Publishes sent and not yet answered; beyond, publishes are dropped. Default 50000. */
  maxPendingPublishes?: number;
  /** Bytes of publishes sent and not yet answered; beyond, publishes are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** A master that leaves a PING unanswered this long (ms) is treated as down. Default 5000. */
  answerTimeout?: number;
}

const PING_EVERY = 1000;

export class RedisClusterHub implements Hub {
  readonly kind = 'redis+cluster';
  readonly origin: Buffer = randomBytes(8);
  readonly prefix: string;
  dropped = 0;
  pendingPublishes = 0;
  pendingBytes = 0;

  private readonly seeds: Array<{ host: string; port: number }>;
  private readonly auth: { username?: string; password?: string };
  private readonly safeUrl: string;
  private readonly log: HubLog;
  private readonly readyTimeout: number;
  private readonly maxRetryDelay: number;
  private readonly maxPendingPublishes: number;
  private readonly maxPendingBytes: number;
  private readonly answerTimeout: number;
  private readonly topicSet = new Set<string>();
  /** Topics whose SSUBSCRIBE is not acknowledged yet (sent, or waiting for the cluster). */
  private readonly unsynced = new Set<string>();
  /** Topics given up while the cluster was unreachable: SUNSUBSCRIBE them when it is back. */
  private readonly unsubscribeLater = new Set<string>();
  private listener: HubListener | null = null;
  private cluster: Cluster | null = null;
  private readonly loading: Promise<void>;
  private loadError: unknown = null;
  /** Masters (host:port) that failed or did not answer their last PING, with why. */
  private readonly downNodes = new Map<string, string>();
  /** Per master: when its outstanding PING was sent. */
  private readonly pingSentAt = new Map<string, number>();
  private pinger: NodeJS.Timeout | null = null;
  private refreshing = false;
  private everUp = false;
  private outage = false;
  private stalled = false;
  private droppedAtOutage = 0;
  private lastError: string | null = null;
  private startReported = false;
  private startTimer: NodeJS.Timeout | null = null;
  private publishErrorLogged = false;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(url: string, options: RedisClusterHubOptions = {}) {
    const parsed = parseClusterUrl(url);
    this.seeds = parsed.seeds;
    this.auth = parsed.auth;
    this.safeUrl = parsed.safe;
    this.prefix = options.prefix ?? 'switchboard:';
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

  private async load(): Promise<void> {
    let ClusterClass: typeof import('ioredis').Cluster;
    try {
      ({ Cluster: ClusterClass } = await import('ioredis'));
    } catch (err) {
      this.loadError = err;
      this.log(`redis+cluster hub: cannot load the 'ioredis' package (${errorText(err)}); install it to use this hub`);
      return;
    }
    if (this.closed) return;
    const options: ClusterOptions = {
      shardedSubscribers: true,
      // Commands while the cluster is not ready fail at once: at-most-once, nothing grows.
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 16), this.maxRetryDelay),
      redisOptions: {
        ...this.auth,
        connectionName: 'switchboard-cluster',
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        connectTimeout: Math.max(1000, Math.min(this.readyTimeout, 10000)),
      },
    };
    const cluster = (this.cluster = new ClusterClass(this.seeds, options));
    cluster.on('error', (err: Error) => {
      this.lastError = errorText(err);
    });
    cluster.on('ready', () => this.onReady());
    cluster.on('close', () => this.noteDown('connection closed'));
    // A node whose connection ended leaves the pool, and nothing refreshes the slot map for a
    // process that only publishes: mark it down here; ping() refreshes until it is back.
    cluster.on('-node', (node: { options: { host?: string; port?: number } }) => {
      if (cluster.status === 'ready') this.nodeDown(`${node.options.host ?? '?'}:${node.options.port ?? '?'}`, 'connection closed');
    });
    cluster.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    this.pinger = setInterval(() => this.ping(), Math.min(PING_EVERY, Math.max(10, Math.floor(this.answerTimeout / 2))));
    this.pinger.unref();
  }

  private onReady(): void {
    const cluster = this.cluster;
    if (cluster === null || this.closed) return;
    for (const topic of this.unsubscribeLater) cluster.sunsubscribe(this.prefix + topic).catch(() => undefined);
    this.unsubscribeLater.clear();
    // ioredis keeps the channels it had and resubscribes them itself; what it never got is sent now.
    for (const topic of [...this.unsynced]) this.sendSubscribe(topic);
    this.ping(); // connects every master now, so that publishes are not dropped for a cold connection
    this.checkUp();
  }

  private sendSubscribe(topic: string): void {
    const cluster = this.cluster;
    if (cluster === null || cluster.status !== 'ready') return;
    this.unsynced.add(topic);
    cluster.ssubscribe(this.prefix + topic).then(
      () => {
        if (!this.topicSet.has(topic)) return;
        this.unsynced.delete(topic);
        this.checkUp();
      },
      (err: unknown) => {
        // Its shard is unreachable: the subscriber group retries when the slot map is refreshed;
        // we send it again on the next 'ready' or the next ping round that finds every master up.
        this.lastError = errorText(err);
      },
    );
  }

  /** One PING per master in flight; a failed or overdue one marks that master down. */
  private ping(): void {
    const cluster = this.cluster;
    if (cluster === null || this.closed || cluster.status !== 'ready') return;
    const now = Date.now();
    const masters = cluster.nodes('master');
    const keys = new Set(masters.map((n) => `${n.options.host ?? '?'}:${n.options.port ?? '?'}`));
    const missing = [...this.downNodes.keys()].filter((k) => !keys.has(k));
    if (missing.length > 0 && !this.refreshing) {
      // Down and out of the pool: a fresh slot map brings it back if the cluster still has it, and
      // if it does not (the node left the cluster), it is no longer ours to wait for.
      this.refreshing = true;
      cluster.refreshSlotsCache((err) => {
        this.refreshing = false;
        if (err || this.closed) return;
        const now = new Set(cluster.nodes('master').map((n) => `${n.options.host ?? '?'}:${n.options.port ?? '?'}`));
        for (const k of missing) if (!now.has(k)) this.nodeUp(k);
      });
    }
    for (const node of masters) {
      const key = `${node.options.host ?? '?'}:${node.options.port ?? '?'}`;
      const sentAt = this.pingSentAt.get(key);
      if (sentAt !== undefined) {
        if (now - sentAt >= this.answerTimeout) this.nodeDown(key, `no answer for ${now - sentAt} ms`);
        continue;
      }
      this.pingSentAt.set(key, now);
      node.ping().then(
        () => {
          if (this.pingSentAt.get(key) === now) this.pingSentAt.delete(key);
          this.nodeUp(key);
          this.checkUp(); // the first answers are what make a fresh connection count as up
        },
        (err: unknown) => {
          if (this.pingSentAt.get(key) === now) this.pingSentAt.delete(key);
          this.nodeDown(key, errorText(err));
        },
      );
    }
  }

  private nodeDown(key: string, why: string): void {
    if (this.closed || this.downNodes.has(key)) return;
    this.downNodes.set(key, why);
    if (this.downNodes.size === 1 && this.everUp && !this.outage) {
      this.droppedAtOutage = this.dropped;
      this.log(
        `redis+cluster hub: master ${key} of ${this.safeUrl} is not answering (${why}); local delivery goes on, ` +
          `messages published to other processes on its slots are dropped until it answers`,
      );
    }
  }

  private nodeUp(key: string): void {
    if (!this.downNodes.delete(key) || this.closed) return;
    if (this.downNodes.size > 0) return;
    for (const topic of [...this.unsynced]) this.sendSubscribe(topic);
    if (!this.outage && this.everUp) {
      this.log(
        `redis+cluster hub: every master of ${this.safeUrl} answers again; delivery across processes resumes ` +
          `(${this.dropped - this.droppedAtOutage} message(s) dropped meanwhile)`,
      );
    }
    this.checkUp();
  }

  get up(): boolean {
    const cluster = this.cluster;
    return cluster !== null && cluster.status === 'ready' && this.unsynced.size === 0 && this.downNodes.size === 0 && !this.stalled &&
      cluster.nodes('master').every((n) => n.status === 'ready');
  }

  private checkUp(): void {
    if (this.closed || !this.up) return;
    if (this.outage) {
      this.outage = false;
      const dropped = this.dropped - this.droppedAtOutage;
      this.log(
        this.everUp
          ? `redis+cluster hub: connection to ${this.safeUrl} is back; ${this.topicSet.size} topic(s) resubscribed, ` +
              `delivery across processes resumes (${dropped} message(s) dropped while it was down)`
          : `redis+cluster hub: connected to ${this.safeUrl}; ${this.topicSet.size} topic(s) subscribed, ` +
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

  private noteDown(why: string): void {
    if (this.closed) return;
    this.pingSentAt.clear();
    if (!this.everUp || this.outage) return;
    this.outage = true;
    this.droppedAtOutage = this.dropped;
    this.log(
      `redis+cluster hub: lost connection to ${this.safeUrl} (${this.lastError ?? why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it is back`,
    );
  }

  private reportStartTrouble(): void {
    this.startTimer = null;
    if (this.closed || this.everUp || this.startReported || this.waiters.length > 0) return;
    this.startReported = true;
    this.outage = true;
    this.droppedAtOutage = 0;
    this.log(
      `redis+cluster hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'}; retrying; until then only local ` +
        `subscribers get messages and publishes to other processes are dropped`,
    );
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    if (this.closed || this.listener === null) return;
    const name = channel.toString('utf8');
    if (!name.startsWith(this.prefix)) return;
    const topic = name.slice(this.prefix.length);
    if (!this.topicSet.has(topic)) return;
    const data = decodePayload(message, this.origin);
    if (data !== null) this.listener(topic, data);
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
    this.unsubscribeLater.delete(topic);
    this.unsynced.add(topic);
    this.sendSubscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topicSet.delete(topic)) return;
    this.unsynced.delete(topic);
    const cluster = this.cluster;
    if (cluster !== null && cluster.status === 'ready') {
      cluster.sunsubscribe(this.prefix + topic).catch(() => this.unsubscribeLater.add(topic));
    } else this.unsubscribeLater.add(topic);
    this.checkUp();
  }

  publish(topic: string, data: Message): void {
    const cluster = this.cluster;
    if (this.closed) return;
    if (cluster === null || cluster.status !== 'ready' || this.stalled) {
      this.dropped++;
      return;
    }
    const channel = this.prefix + topic;
    if (!this.shardReady(cluster, channel)) {
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
    cluster.spublish(channel, payload).then(
      () => {
        this.pendingPublishes--;
        this.pendingBytes -= size;
        this.answered();
      },
      (err: unknown) => {
        this.pendingPublishes--;
        this.pendingBytes -= size;
        this.dropped++;
        this.answered();
        if (this.outage || this.downNodes.size > 0 || this.stalled || this.publishErrorLogged || this.closed) return;
        this.publishErrorLogged = true;
        this.log(`redis+cluster hub: publish on ${this.prefix + topic} failed (${errorText(err)}); that message is lost for other processes`);
      },
    );
  }

  /**
   * Whether the connection to the master of `channel`'s slot is ready. A node connection that is
   * still starting queues some commands and writes others (ioredis 6 writes "loading"-safe commands
   * such as SPUBLISH during its ready check, ahead of those it queued), which would reorder a topic:
   * until it is ready, publishes on its slots are dropped like those to a node that is down.
   */
  private shardReady(cluster: Cluster, channel: string): boolean {
    const slots = (cluster as unknown as { slots?: Array<string[] | undefined> }).slots;
    const key = slots?.[keySlot(channel)]?.[0];
    const nodes = cluster.nodes('master');
    const node = key === undefined ? undefined : nodes.find((n) => `${n.options.host ?? ''}:${n.options.port ?? ''}` === key);
    if (node === undefined) return nodes.length > 0 && nodes.every((n) => n.status === 'ready'); // no slot map: all must be
    if (node.status === 'wait') node.connect().catch(() => undefined);
    return node.status === 'ready';
  }

  private stall(why: string): void {
    if (this.stalled || this.closed) return;
    this.stalled = true;
    if (this.outage) return;
    this.droppedAtOutage = this.dropped;
    this.log(
      `redis+cluster hub: ${this.safeUrl} is not answering (${why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it answers`,
    );
  }

  private answered(): void {
    if (!this.stalled || this.closed) return;
    if (this.pendingPublishes > this.maxPendingPublishes / 2 || this.pendingBytes > this.maxPendingBytes / 2) return;
    this.stalled = false;
    if (!this.outage) {
      this.log(
        `redis+cluster hub: ${this.safeUrl} answers again; delivery across processes resumes ` +
          `(${this.dropped - this.droppedAtOutage} message(s) dropped while it did not answer)`,
      );
    }
    this.checkUp();
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + this.readyTimeout;
    await this.loading;
    if (this.loadError !== null) {
      throw new SwitchboardError('ERR_HUB', `redis+cluster hub: not available (${errorText(this.loadError)})`, { cause: this.loadError });
    }
    if (this.closed) throw new SwitchboardError('ERR_CLOSED', 'redis+cluster hub: closed');
    if (!this.up) await this.whenUp(deadline);
    if (this.closed) throw new SwitchboardError('ERR_CLOSED', 'redis+cluster hub: closed');
  }

  private whenUp(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onUp);
        if (this.everUp) {
          reject(new SwitchboardError('ERR_HUB', `redis+cluster hub: ${this.safeUrl} is not back within ${this.readyTimeout} ms`));
          return;
        }
        this.startReported = true;
        if (!this.outage) {
          this.outage = true;
          this.droppedAtOutage = 0;
        }
        reject(new SwitchboardError('ERR_HUB',
          `redis+cluster hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'} (tried for ${this.readyTimeout} ms; is the cluster running there?)`));
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
    if (this.pinger !== null) clearInterval(this.pinger);
    if (this.startTimer !== null) clearTimeout(this.startTimer);
    this.pinger = this.startTimer = null;
    this.topicSet.clear();
    this.listener = null;
    await this.loading;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    const cluster = this.cluster;
    if (cluster === null) return;
    if (cluster.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        cluster.quit().catch(() => undefined),
        new Promise<void>((r) => {
          timer = setTimeout(r, 1000);
        }),
      ]);
      clearTimeout(timer);
    }
    cluster.disconnect();
  }
}

/** 'redis+cluster://[user:pass@]host:port[,host:port...]': seed nodes (any of them; the rest is discovered). */
export function parseClusterUrl(url: string): {
  seeds: Array<{ host: string; port: number }>;
  auth: { username?: string; password?: string };
  safe: string;
} {
  const scheme = 'redis+cluster://';
  if (!url.startsWith(scheme)) throw new SwitchboardError('ERR_INVALID_OPTION', `redis+cluster hub: '${url}' is not a ${scheme} URL`);
  let rest = url.slice(scheme.length).replace(/\/$/, '');
  const auth: { username?: string; password?: string } = {};
  let safeAuth = '';
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const [user, pass] = rest.slice(0, at).split(':');
    if (user) auth.username = decodeURIComponent(user);
    if (pass !== undefined) auth.password = decodeURIComponent(pass);
    safeAuth = pass !== undefined ? `${user ?? ''}:***@` : `${user ?? ''}@`;
    rest = rest.slice(at + 1);
  }
  const seeds = rest.split(',').filter((h) => h !== '').map((h) => {
    const m = /^(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?$/.exec(h);
    if (m === null) throw new SwitchboardError('ERR_INVALID_OPTION', `redis+cluster hub: '${h}' in '${url}' is not HOST:PORT`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] === undefined ? 6379 : Number(m[2]) };
  });
  if (seeds.length === 0) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `redis+cluster hub: '${url}' names no node (use ${scheme}HOST:PORT[,HOST:PORT])`);
  }
  return { seeds, auth, safe: `${scheme}${safeAuth}${rest}` };
}

/** The cluster slot of a key: CRC16 (XMODEM) of the key, or of its {hash tag}, mod 16384. */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number' || !(v > 0)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `redis+cluster hub: option ${name} must be a number > 0 (got ${String(v)})`);
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
