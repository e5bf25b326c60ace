/**
 * Per-connection rate limits: a token bucket for messages and one for bytes, refilled by time.
 * A connection holds one small RateBucket only when the server has a rate limit; without one,
 * Connection pays a null check per read and per message. Paused connections are woken by one
 * timer per server (RateLimiter), never by a timer per connection.
 */
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import type { Connection } from './connection.js';

export interface RateLimitOptions {
  /** Messages a connection may have delivered per `per` ms (default: not limited). */
  messages?: number;
  /** Bytes a connection may send per `per` ms, counted as received (default: not limited). */
  bytes?: number;
  /** The window the rates are given for, in ms (default 1000). */
  per?: number;
  /**
   * How much a connection may send at once after a quiet spell: the sizes of the buckets
   * (default: one window's worth, `messages` and `bytes`).
   */
  burst?: { messages?: number; bytes?: number };
  /**
   * 'pause' (default): stop reading from the connection until its buckets have refilled
   * (backpressure: the sender's socket buffers fill and it waits); 'close': close it
   * (ERR_RATE_LIMIT; WebSocket 1008, other protocols get one message saying so). UDP has no
   * backpressure: a datagram over the rate is dropped, whatever the policy.
   */
  policy?: 'pause' | 'close';
}

/** Counters of what the server's limits did (see Server.limitStats). */
export interface LimitStats {
  /** Connections turned away: server full, maxConnectionsPerIp, or the accept hook. */
  refused: number;
  /** Times a connection's reading was paused by the rate limit. */
  rateLimitPauses: number;
  /** Connections closed by the rate limit ('close' policy). */
  rateLimitCloses: number;
  /** UDP datagrams dropped by the rate limit. */
  datagramsDropped: number;
}

export const RATE_LIMIT_REASON = 'rate limit exceeded';

/** The options checked and turned into rates per ms (0: not limited) and bucket sizes. */
interface RateConfig {
  readonly msgRate: number;
  readonly byteRate: number;
  readonly msgCap: number;
  readonly byteCap: number;
  readonly close: boolean;
}

function invalid(what: string, v: unknown): SwitchboardError {
  return new SwitchboardError('ERR_INVALID_OPTION', `option rateLimit.${what} (got ${String(v)})`);
}

function positive(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !(v > 0) || v === Infinity) throw invalid(`${name} must be a number > 0`, v);
  return v;
}

/** Checks the option; throws ERR_INVALID_OPTION with what is wrong. */
export function parseRateLimit(o: RateLimitOptions): RateConfig {
  if (o === null || typeof o !== 'object') throw invalid('must be an object', o);
  const known = new Set(['messages', 'bytes', 'per', 'burst', 'policy']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw invalid(`${k} is not an option (messages, bytes, per, burst, policy)`, k);
  const messages = positive('messages', o.messages);
  const bytes = positive('bytes', o.bytes);
  if (messages === undefined && bytes === undefined) throw invalid('needs messages or bytes (or both)', JSON.stringify(o));
  const per = positive('per', o.per) ?? 1000;
  const policy = o.policy ?? 'pause';
  if (policy !== 'pause' && policy !== 'close') throw invalid("policy must be 'pause' or 'close'", policy);
  const burst = o.burst ?? {};
  if (burst === null || typeof burst !== 'object') throw invalid('burst must be an object { messages?, bytes? }', burst);
  const burstMessages = positive('burst.messages', burst.messages);
  const burstBytes = positive('burst.bytes', burst.bytes);
  if (burstMessages !== undefined && messages === undefined) throw invalid('burst.messages needs messages', burstMessages);
  if (burstBytes !== undefined && bytes === undefined) throw invalid('burst.bytes needs bytes', burstBytes);
  // A bucket smaller than one message could never let a message through.
  if (burstMessages !== undefined && burstMessages < 1) throw invalid('burst.messages must be >= 1', burstMessages);
  return {
    msgRate: messages === undefined ? 0 : messages / per,
    byteRate: bytes === undefined ? 0 : bytes / per,
    // An unlimited dimension is a bucket that never empties: no branch per message for it.
    msgCap: messages === undefined ? Infinity : Math.max(1, burstMessages ?? messages),
    byteCap: bytes === undefined ? Infinity : burstBytes ?? bytes,
    close: policy === 'close',
  };
}

/** Wake-ups are gathered in slots of this many ms: one timer firing serves every connection due in it. */
const SLOT_MS = 10;

/**
 * One server's rate limit: the config, the counters, and the one timer that wakes paused
 * connections. Paused buckets wait in time slots (a small timer wheel), so a firing costs the
 * buckets that are due, not every paused one.
 */
export class RateLimiter {
  private readonly slots = new Map<number, RateBucket[]>();
  /** Buckets waiting (an entry whose bucket moved to another slot, or left, is skipped). */
  private live = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerSlot = Infinity;

  constructor(readonly config: RateConfig, readonly stats: LimitStats) {}

  /** A bucket for a new connection (datagram: UDP, where datagrams over the rate are dropped). */
  bucket(conn: Connection, datagram: boolean): RateBucket {
    return new RateBucket(this, conn, datagram);
  }

  /** @internal Wakes `b` at `at` (ms since the epoch) or up to one slot later. */
  schedule(b: RateBucket, at: number): void {
    const slot = Math.ceil(at / SLOT_MS);
    if (b.slot === slot) return;
    if (b.slot === 0) this.live++;
    b.slot = slot;
    let list = this.slots.get(slot);
    if (list === undefined) this.slots.set(slot, (list = []));
    list.push(b);
    if (slot < this.timerSlot) this.arm(slot);
  }

  /** @internal */
  cancel(b: RateBucket): void {
    if (b.slot === 0) return;
    b.slot = 0;
    if (--this.live > 0) return;
    // Nobody waits: no timer, and no stale entries that would hold the event loop.
    this.slots.clear();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerSlot = Infinity;
  }

  private arm(slot: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerSlot = slot;
    // Not unref'd: a paused socket does not keep the event loop alive, and this timer is what resumes it.
    this.timer = setTimeout(() => this.tick(), Math.max(1, slot * SLOT_MS - Date.now()));
  }

  private tick(): void {
    this.timer = null;
    this.timerSlot = Infinity;
    const now = Date.now();
    const nowSlot = Math.floor(now / SLOT_MS);
    // The due ones first, then woken: a wake that reschedules must not be seen again in this pass.
    const due: RateBucket[] = [];
    let next = Infinity;
    for (const [slot, list] of this.slots) {
      if (slot > nowSlot) {
        if (slot < next) next = slot;
        continue;
      }
      this.slots.delete(slot);
      for (const b of list) {
        if (b.slot !== slot) continue;
        b.slot = 0;
        this.live--;
        due.push(b);
      }
    }
    if (next !== Infinity && this.live > 0) this.arm(next);
    for (const b of due) b.wake(now);
  }
}

/** One connection's buckets, and the messages held back while its reading is paused. */
export class RateBucket {
  private msgs: number;
  private bytes: number;
  private stamp: number;
  /** Messages decoded from bytes already read while over the rate, delivered as the bucket refills. */
  private held: Message[] | null = null;
  private heldHead = 0;
  /** Reading is paused by this bucket. */
  paused = false;
  /** The rate limit closed the connection (or it is gone): nothing more is delivered. */
  private tripped = false;
  /** The peer has finished sending: everything it sent is delivered at once. */
  private ended = false;
  /** @internal The limiter's time slot this bucket waits in (0: not waiting). */
  slot = 0;

  constructor(private readonly limiter: RateLimiter, private readonly conn: Connection, private readonly datagram: boolean) {
    this.msgs = limiter.config.msgCap;
    this.bytes = limiter.config.byteCap;
    this.stamp = Date.now();
  }

  private refill(now: number): void {
    const c = this.limiter.config;
    const dt = now - this.stamp;
    if (dt <= 0) return;
    this.stamp = now;
    this.msgs = Math.min(c.msgCap, this.msgs + dt * c.msgRate);
    this.bytes = Math.min(c.byteCap, this.bytes + dt * c.byteRate);
  }

  /**
   * `n` bytes were read. Returns false when they must not be parsed: a UDP datagram over the
   * rate, or a stream after the rate limit closed it (unless its session reads while closing:
   * WebSocket, for its close handshake).
   */
  received(n: number): boolean {
    if (this.tripped) return this.conn.session.readsWhileClosing && !this.datagram;
    // The clock is read once per read; the messages decoded from it use the same refill.
    this.refill(Date.now());
    if (this.datagram) {
      // A datagram is one message: it passes whole or is dropped.
      if (this.msgs >= 1 && this.bytes >= n) {
        this.msgs -= 1;
        this.bytes -= n;
        return true;
      }
      this.limiter.stats.datagramsDropped++;
      return false;
    }
    this.bytes -= n;
    if (this.bytes < 0) {
      if (this.limiter.config.close) {
        this.trip('bytes');
        return this.conn.session.readsWhileClosing;
      }
      // What was read is parsed; the debt keeps reading paused until it is paid.
      this.pause();
    }
    return true;
  }

  /** A message is ready for delivery. Returns true to deliver it now; false when it is held or dropped. */
  message(data: Message): boolean {
    if (this.tripped) return false;
    if (this.datagram || this.ended) return true; // datagrams: counted in received()
    if (this.held !== null) {
      this.held.push(data);
      return false;
    }
    if (this.msgs >= 1) {
      this.msgs -= 1;
      return true;
    }
    if (this.limiter.config.close) {
      this.trip('messages');
      return false;
    }
    this.held = [data];
    this.heldHead = 0;
    this.pause();
    return false;
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.limiter.stats.rateLimitPauses++;
      this.conn.socket.pause();
    }
    this.limiter.schedule(this, this.readyAt());
  }

  /** When the buckets will allow the next held message and have no byte debt. */
  private readyAt(): number {
    const c = this.limiter.config;
    let wait = 0;
    if (this.held !== null && this.msgs < 1) wait = (1 - this.msgs) / c.msgRate;
    if (this.bytes < 0) wait = Math.max(wait, -this.bytes / c.byteRate);
    return this.stamp + Math.max(1, Math.ceil(wait));
  }

  /** @internal Called by the limiter when the buckets should have refilled. */
  wake(now: number): void {
    if (this.tripped) return;
    this.refill(now);
    // Idle and heartbeat checks must not close a peer whose data we chose not to read yet.
    this.conn.touch();
    const held = this.held;
    if (held !== null) {
      while (this.heldHead < held.length && this.msgs >= 1) {
        this.msgs -= 1;
        const data = held[this.heldHead]!;
        held[this.heldHead++] = undefined as unknown as Message; // let it go
        this.conn.deliverMessage(data);
        if (this.tripped) return; // the connection closed while a message was handled
      }
      if (this.heldHead >= held.length) this.held = null;
    }
    if (this.held !== null || this.bytes < 0) {
      this.limiter.schedule(this, this.readyAt());
      return;
    }
    this.paused = false;
    this.conn.resumeReading();
  }

  /** The peer has finished sending: what it sent is delivered now (nothing more can come to slow down). */
  flush(): void {
    this.ended = true;
    const held = this.held;
    if (held === null || this.tripped) return;
    this.held = null;
    this.limiter.cancel(this);
    for (let i = this.heldHead; i < held.length && !this.tripped; i++) this.conn.deliverMessage(held[i]!);
  }

  /** The connection is gone: forget what is held, and leave the limiter's timer. */
  dispose(): void {
    this.tripped = true;
    this.held = null;
    this.limiter.cancel(this);
  }

  private trip(over: 'messages' | 'bytes'): void {
    this.tripped = true;
    this.held = null;
    this.limiter.cancel(this);
    this.limiter.stats.rateLimitCloses++;
    const c = this.limiter.config;
    const what = over === 'messages' ? `${fmt(c.msgRate * 1000)} messages/s` : `${fmt(c.byteRate * 1000)} bytes/s`;
    this.conn.closeForLimit(new SwitchboardError('ERR_RATE_LIMIT', `${RATE_LIMIT_REASON}: over ${what}`), 1008, RATE_LIMIT_REASON);
  }
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
