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
import { bounded, EngineHub, errorText, type EngineLinkOptions } from './engine-link.js';
import { decodePayload, encodePayload } from './redis.js';
import type { Hub, HubListener } from './types.js';

/** answerTimeout applies to each master: one that leaves a PING unanswered this long is treated as down. */
export interface RedisClusterHubOptions extends EngineLinkOptions {
  /** Prepended to every topic to make the sharded channel name. Default 'switchboard:'. */
  prefix?: string;
}

export class RedisClusterHub extends EngineHub implements Hub {
  readonly kind = 'redis+cluster';
  readonly origin: Buffer = randomBytes(8);
  readonly prefix: string;

  private readonly seeds: Array<{ host: string; port: number }>;
  private readonly auth: { username?: string; password?: string };
  private readonly topicSet = new Set<string>();
  /** Topics whose SSUBSCRIBE is not acknowledged yet (sent, or waiting for the cluster). */
  private readonly unsynced = new Set<string>();
  /** Topics given up while the cluster was unreachable: SUNSUBSCRIBE them when it is back. */
  private readonly unsubscribeLater = new Set<string>();
  private listener: HubListener | null = null;
  private cluster: Cluster | null = null;
  private readonly loading: Promise<void>;
  /** Masters (host:port) that failed or did not answer their last PING, with why. */
  private readonly downNodes = new Map<string, string>();
  /** Per master: when its outstanding PING was sent. */
  private readonly pingSentAt = new Map<string, number>();
  private refreshing = false;

  constructor(url: string, options: RedisClusterHubOptions = {}) {
    const parsed = parseClusterUrl(url);
    super('redis+cluster', parsed.safe, 'is the cluster running there?', options);
    this.seeds = parsed.seeds;
    this.auth = parsed.auth;
    this.prefix = options.prefix ?? 'switchboard:';
    this.link.begin();
    this.loading = this.load();
  }

  private async load(): Promise<void> {
    const link = this.link;
    let ClusterClass: typeof import('ioredis').Cluster;
    try {
      ({ Cluster: ClusterClass } = await import('ioredis'));
    } catch (err) {
      link.loadError = err;
      link.log(`redis+cluster hub: cannot load the 'ioredis' package (${errorText(err)}); install it to use this hub`);
      return;
    }
    if (link.closed) return;
    const options: ClusterOptions = {
      shardedSubscribers: true,
      // Commands while the cluster is not ready fail at once: at-most-once, nothing grows.
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => link.retryDelay(times),
      redisOptions: {
        ...this.auth,
        connectionName: 'switchboard-cluster',
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        connectTimeout: link.connectTimeout,
      },
    };
    const cluster = (this.cluster = new ClusterClass(this.seeds, options));
    cluster.on('error', (err: Error) => {
      link.lastError = errorText(err);
    });
    cluster.on('ready', () => this.onReady());
    cluster.on('close', () => this.noteDown('connection closed'));
    // A node whose connection ended leaves the pool, and nothing refreshes the slot map for a
    // process that only publishes: mark it down here; ping() refreshes until it is back.
    cluster.on('-node', (node: { options: { host?: string; port?: number } }) => {
      if (cluster.status === 'ready') this.nodeDown(`${node.options.host ?? '?'}:${node.options.port ?? '?'}`, 'connection closed');
    });
    cluster.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    link.startPinging(() => this.ping());
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
        this.link.lastError = errorText(err);
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
        if (now - sentAt >= this.link.answerTimeout) this.nodeDown(key, `no answer for ${now - sentAt} ms`);
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
    const link = this.link;
    if (link.closed || this.downNodes.has(key)) return;
    this.downNodes.set(key, why);
    if (this.downNodes.size === 1 && link.everUp && !link.outage) {
      link.droppedAtOutage = link.dropped;
      link.log(
        `redis+cluster hub: master ${key} of ${link.safeUrl} is not answering (${why}); local delivery goes on, ` +
          `messages published to other processes on its slots are dropped until it answers`,
      );
    }
  }

  private nodeUp(key: string): void {
    const link = this.link;
    if (!this.downNodes.delete(key) || link.closed) return;
    if (this.downNodes.size > 0) return;
    for (const topic of [...this.unsynced]) this.sendSubscribe(topic);
    if (!link.outage && link.everUp) {
      link.log(
        `redis+cluster hub: every master of ${link.safeUrl} answers again; delivery across processes resumes ` +
          `(${link.dropped - link.droppedAtOutage} message(s) dropped meanwhile)`,
      );
    }
    this.checkUp();
  }

  get up(): boolean {
    const cluster = this.cluster;
    return cluster !== null && cluster.status === 'ready' && this.unsynced.size === 0 && this.downNodes.size === 0 && !this.link.stalled &&
      cluster.nodes('master').every((n) => n.status === 'ready');
  }

  private checkUp(): void {
    if (this.closed || !this.up) return;
    this.link.markUp(this.topicSet.size);
  }

  private noteDown(why: string): void {
    if (this.closed) return;
    this.pingSentAt.clear();
    this.link.lost(this.link.lastError ?? why);
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
    const link = this.link;
    if (link.closed) return;
    if (cluster === null || cluster.status !== 'ready' || link.stalled) {
      link.dropped++;
      return;
    }
    const channel = this.prefix + topic;
    if (!this.shardReady(cluster, channel)) {
      link.dropped++;
      return;
    }
    const payload = encodePayload(this.origin, data);
    const size = payload.length;
    if (!link.admit(size)) return;
    link.track(cluster.spublish(channel, payload), size, () => this.answered(), (err) => {
      this.answered();
      // A master that is down is logged as such; its publishes failing is no news.
      if (this.downNodes.size > 0) return;
      link.publishFailed(`publish on ${this.prefix + topic} failed (${errorText(err)}); that message is lost for other processes`);
    });
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

  private answered(): void {
    if (this.link.answered()) this.checkUp();
  }

  async ready(): Promise<void> {
    const deadline = await this.link.loaded(this.loading);
    this.link.assertOpen();
    if (!this.up) await this.link.whenUp(deadline);
    this.link.assertOpen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.link.close();
    this.topicSet.clear();
    this.listener = null;
    await this.loading;
    this.link.wakeWaiters();
    const cluster = this.cluster;
    if (cluster === null) return;
    if (cluster.status === 'ready') await bounded(cluster.quit(), 1000);
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
