/**
 * Presence and claims on Redis, without asking other processes anything.
 *
 * Members: one sorted set per topic, `<prefix>presence:<topic>`; a member is "<id>\n<meta JSON>"
 * scored by the time (Redis's clock, so machines' clocks do not matter) at which it expires.
 * Each process refreshes the scores of its own members every `interval` and keeps nothing else
 * there: a process that crashes stops refreshing, and its members drop out of every listing
 * within `ttl` (they are also removed then by whoever refreshes next). A listing is one script
 * call: the count of live members and at most `limit` of them.
 *
 * Claims: `<prefix>claim:<key>` holds the holder's id, set only if absent (SET NX PX in a
 * script), so of two processes claiming at once exactly one wins. The holder refreshes its TTL
 * with its members; a crashed holder's claim lapses within `ttl`. A holder cut off from Redis
 * for longer than that may find its claim taken by another when it is back: it is told (onClaimLost).
 *
 * Everything goes on the publisher connection, so a process's own commands run in the order it
 * sent them (a leave never overtakes the join before it). Nothing is queued while Redis is down
 * or not answering: joins and claims wait in this process and are written by the refresh that
 * follows the reconnect; listings and new claims are refused (ERR_HUB).
 */
import type { Redis as RedisClient } from 'ioredis';
import { SwitchboardError } from '../errors.js';
import type { HubPresence, PresenceEntry, PresenceListing } from './types.js';

/** Redis's clock in ms, in scripts. */
const NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS[1] set; ARGV[1] ttl; ARGV[2] member; ARGV[3] member it replaces (or ''). */
const JOIN = `${NOW}
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[1], ARGV[3]) end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return 1`;

/** KEYS[1] set; ARGV[1] ttl; ARGV[2..] this process's members: scores pushed on, the lapsed removed. */
const REFRESH = `${NOW}
local exp = now + tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local args = {}
for i = 2, #ARGV do args[2 * i - 3] = exp args[2 * i - 2] = ARGV[i] end
if #args > 0 then redis.call('ZADD', KEYS[1], unpack(args)) end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1])) end
return 1`;

/** KEYS[1] set; ARGV[1] limit: {live count, members}. */
const LIST = `${NOW}
local live = '(' .. now
return {redis.call('ZCOUNT', KEYS[1], live, '+inf'), redis.call('ZRANGEBYSCORE', KEYS[1], live, '+inf', 'LIMIT', 0, tonumber(ARGV[1]))}`;

/** KEYS claim keys; ARGV[1] ttl; ARGV[1 + i] the holder of KEYS[i]: 1 held (taken or kept), 0 held by another. */
const CLAIM = `local out = {}
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur == false then redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[1]) out[i] = 1
  elseif cur == ARGV[i + 1] then redis.call('PEXPIRE', KEYS[i], ARGV[1]) out[i] = 1
  else out[i] = 0 end
end
return out`;

/** KEYS[1] claim key; ARGV[1] holder. */
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** Members or claims per refresh call (one script call each), so that no call holds Redis long. */
const CHUNK = 500;
/** Listings and claims waiting for Redis at once; beyond, they are refused rather than queued. */
const MAX_IN_FLIGHT = 1000;

type Scripted = RedisClient & {
  sbPresenceJoin(key: string, ttl: number, member: string, old: string): Promise<unknown>;
  sbPresenceRefresh(key: string, ttl: number, ...members: string[]): Promise<unknown>;
  sbPresenceList(key: string, limit: number): Promise<[number, string[]]>;
  sbClaim(...args: Array<string | number>): Promise<number[]>;
  sbRelease(key: string, holder: string): Promise<number>;
};

export interface RedisPresenceHost {
  /** The publisher connection when it is connected and answering; null otherwise. */
  usable(): RedisClient | null;
  readonly prefix: string;
  readonly origin: string;
  readonly ttl: number;
  readonly interval: number;
  readonly answerTimeout: number;
  log(message: string): void;
}

export class RedisPresence implements HubPresence {
  readonly origin: string;
  /** This process's members by topic: id -> the member string stored in Redis. */
  private readonly mine = new Map<string, Map<string, string>>();
  /** This process's claims: key -> holder. */
  private readonly claims = new Map<string, string>();
  private readonly defined = new WeakSet<RedisClient>();
  private lostListener: ((key: string, holder: string) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing = false;
  private inFlight = 0;
  private errorLogged = false;
  private closed = false;

  constructor(private readonly host: RedisPresenceHost) {
    this.origin = host.origin;
  }

  /** Starts the refresh timer (idempotent) and rewrites everything now: Redis may have restarted empty. */
  connected(): void {
    if (this.closed) return;
    if (this.timer === null) {
      this.timer = setInterval(() => this.refresh(), this.host.interval);
      this.timer.unref();
    }
    this.refresh();
  }

  private conn(): Scripted | null {
    const c = this.host.usable();
    if (c === null) return null;
    if (!this.defined.has(c)) {
      c.defineCommand('sbPresenceJoin', { numberOfKeys: 1, lua: JOIN });
      c.defineCommand('sbPresenceRefresh', { numberOfKeys: 1, lua: REFRESH });
      c.defineCommand('sbPresenceList', { numberOfKeys: 1, lua: LIST });
      c.defineCommand('sbClaim', { lua: CLAIM });
      c.defineCommand('sbRelease', { numberOfKeys: 1, lua: RELEASE });
      this.defined.add(c);
    }
    return c as Scripted;
  }

  private setKey(topic: string): string {
    return `${this.host.prefix}presence:${topic}`;
  }

  private claimKey(key: string): string {
    return `${this.host.prefix}claim:${key}`;
  }

  join(topic: string, id: string, meta: string): void {
    if (this.closed) return;
    let members = this.mine.get(topic);
    if (members === undefined) this.mine.set(topic, (members = new Map()));
    const member = `${id}\n${meta}`;
    const old = members.get(id);
    if (old === member) return;
    members.set(id, member);
    this.conn()?.sbPresenceJoin(this.setKey(topic), this.host.ttl, member, old ?? '').catch((err: unknown) => this.failed('join', err));
  }

  leave(topic: string, id: string): void {
    const members = this.mine.get(topic);
    const member = members?.get(id);
    if (members === undefined || member === undefined) return;
    members.delete(id);
    if (members.size === 0) this.mine.delete(topic);
    // While Redis is away the entry lapses by itself within the TTL.
    this.conn()?.zrem(this.setKey(topic), member).catch((err: unknown) => this.failed('leave', err));
  }

  list(topic: string, limit: number): Promise<PresenceListing> {
    return this.ask('list who is here', (c) => c.sbPresenceList(this.setKey(topic), limit)).then(([total, members]) => {
      const entries: PresenceEntry[] = [];
      for (const m of members) {
        const nl = m.indexOf('\n');
        if (nl > 0) entries.push({ id: m.slice(0, nl), meta: m.slice(nl + 1) });
      }
      return { entries, total: Number(total) };
    });
  }

  async claim(key: string, holder: string): Promise<boolean> {
    const [ok] = await this.ask('check the name', (c) => c.sbClaim(1, this.claimKey(key), this.host.ttl, holder));
    if (ok !== 1) return false;
    if (this.closed) return false;
    this.claims.set(key, holder);
    return true;
  }

  release(key: string, holder: string): void {
    if (this.claims.get(key) !== holder) return;
    this.claims.delete(key);
    this.sendRelease(key, holder);
  }

  private sendRelease(key: string, holder: string): void {
    // If Redis is away the claim lapses within the TTL.
    this.conn()?.sbRelease(this.claimKey(key), holder).catch((err: unknown) => this.failed('release', err));
  }

  onClaimLost(listener: (key: string, holder: string) => void): void {
    this.lostListener = listener;
  }

  /** One command that the caller waits for: refused at once when Redis is away, bounded in number and time. */
  private ask<T>(what: string, send: (c: Scripted) => Promise<T>): Promise<T> {
    const c = this.closed ? null : this.conn();
    if (c === null) return Promise.reject(new SwitchboardError('ERR_HUB', `redis hub: cannot ${what}: redis is not reachable`));
    if (this.inFlight >= MAX_IN_FLIGHT) {
      return Promise.reject(new SwitchboardError('ERR_HUB', `redis hub: cannot ${what}: ${this.inFlight} requests already wait for redis`));
    }
    this.inFlight++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SwitchboardError('ERR_HUB', `redis hub: cannot ${what}: no answer within ${this.host.answerTimeout} ms`)),
        this.host.answerTimeout);
    });
    return Promise.race([send(c), timeout]).catch((err: unknown) => {
      throw err instanceof SwitchboardError ? err : new SwitchboardError('ERR_HUB', `redis hub: cannot ${what}: ${String(err)}`, { cause: err });
    }).finally(() => {
      this.inFlight--;
      clearTimeout(timer);
    });
  }

  /** Pushes this process's members and claims on by another TTL; one refresh at a time. */
  private refresh(): void {
    if (this.refreshing || this.closed) return;
    const c = this.conn();
    if (c === null) return;
    const ttl = this.host.ttl;
    const calls: Promise<unknown>[] = [];
    for (const [topic, members] of this.mine) {
      const all = [...members.values()];
      for (let i = 0; i < all.length; i += CHUNK) calls.push(c.sbPresenceRefresh(this.setKey(topic), ttl, ...all.slice(i, i + CHUNK)));
    }
    const held = [...this.claims];
    for (let i = 0; i < held.length; i += CHUNK) {
      const part = held.slice(i, i + CHUNK);
      calls.push(c.sbClaim(part.length, ...part.map(([k]) => this.claimKey(k)), ttl, ...part.map(([, h]) => h)).then((results) => {
        results.forEach((ok, j) => {
          const [key, holder] = part[j]!;
          if (ok === 1 || this.claims.get(key) !== holder) return;
          this.claims.delete(key);
          this.lostListener?.(key, holder);
        });
      }));
    }
    if (calls.length === 0) return;
    this.refreshing = true;
    void Promise.all(calls).then(
      () => { this.errorLogged = false; },
      (err: unknown) => this.failed('refresh', err),
    ).finally(() => { this.refreshing = false; });
  }

  private failed(what: string, err: unknown): void {
    if (this.closed || this.errorLogged || this.host.usable() === null) return; // an outage is logged by the hub
    this.errorLogged = true;
    this.log(`redis hub: presence ${what} failed (${err instanceof Error ? err.message : String(err)}); retried at the next refresh`);
  }

  private log(message: string): void {
    this.host.log(message);
  }

  /** Leaves every topic and gives back every claim (a clean stop), then stops refreshing. */
  close(): void {
    if (this.closed) return;
    const c = this.conn();
    if (c !== null) {
      for (const [topic, members] of this.mine) if (members.size > 0) c.zrem(this.setKey(topic), ...members.values()).catch(() => undefined);
      for (const [key, holder] of this.claims) c.sbRelease(this.claimKey(key), holder).catch(() => undefined);
    }
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.mine.clear();
    this.claims.clear();
  }
}
