/**
 * reconnecting(url): a client that comes back. When the connection drops (or the first connect
 * fails) it waits and connects again, with exponential backoff and jitter, so that a thousand
 * clients of a restarted server do not all return in the same millisecond.
 */
import { EventEmitter } from 'node:events';
import type { CloseInfo, Message } from '../codec/types.js';
import { connect, type ConnectOptions } from './client.js';
import type { Connection } from './connection.js';

export interface ReconnectOptions {
  /** Delay before the first retry, in ms (default 500). */
  initialDelay?: number;
  /** Longest delay, in ms (default 30000). */
  maxDelay?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of each delay that is random, 0..1 (default 0.5: a delay d becomes d/2 + random(d/2)). */
  jitter?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
  /** @internal for tests: the random source. */
  random?: () => number;
}

export interface ReconnectingEvents {
  /** Connected; `reconnected` is false the first time. */
  open: [conn: Connection, info: { reconnected: boolean; attempt: number }];
  message: [data: Message];
  /** The current connection closed (a reconnect follows unless close() was called or attempts ran out). */
  close: [info: CloseInfo];
  /** A retry is scheduled. */
  reconnecting: [info: { attempt: number; delay: number; error?: Error }];
  /** Gave up (maxAttempts) or close() was called; nothing more will happen. */
  end: [info: { reason: 'closed' | 'gave up'; error?: Error }];
}

/** The delay before retry number `attempt` (1-based). */
export function backoffDelay(attempt: number, o: ReconnectOptions = {}): number {
  const initial = o.initialDelay ?? 500;
  const max = o.maxDelay ?? 30_000;
  const factor = o.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, o.jitter ?? 0.5));
  const base = Math.min(max, initial * factor ** (attempt - 1));
  return Math.round(base * (1 - jitter) + base * jitter * (o.random ?? Math.random)());
}

export class ReconnectingClient extends EventEmitter<ReconnectingEvents> {
  private conn: Connection | null = null;
  private attempt = 0;
  private opened = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly url: string, private readonly options: ConnectOptions & { reconnect?: ReconnectOptions } = {}) {
    super();
    queueMicrotask(() => this.dial());
  }

  /** The live connection, or null between connections. */
  get connection(): Connection | null {
    return this.conn;
  }

  /** Sends on the live connection; false when there is none (messages are not queued while down). */
  send(data: Message): boolean {
    return this.conn?.send(data) ?? false;
  }

  /** Closes for good: no more reconnects. */
  close(code = 1000, reason = ''): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.conn?.close(code, reason);
    if (!this.conn) this.emit('end', { reason: 'closed' });
  }

  private async dial(): Promise<void> {
    if (this.stopped) return;
    let conn: Connection;
    try {
      conn = await connect(this.url, this.options);
    } catch (err) {
      this.retry(err as Error);
      return;
    }
    if (this.stopped) {
      conn.close();
      return;
    }
    this.conn = conn;
    const attempt = this.attempt;
    this.attempt = 0;
    conn.on('message', (m) => this.emit('message', m));
    conn.once('close', (info) => {
      this.conn = null;
      this.emit('close', info);
      if (this.stopped) this.emit('end', { reason: 'closed' });
      else this.retry(info.error);
    });
    this.emit('open', conn, { reconnected: this.opened++ > 0, attempt });
  }

  private retry(error?: Error): void {
    if (this.stopped) return;
    this.attempt++;
    const o = this.options.reconnect ?? {};
    if (o.maxAttempts !== undefined && this.attempt > o.maxAttempts) {
      this.stopped = true;
      this.emit('end', { reason: 'gave up', error });
      return;
    }
    const delay = backoffDelay(this.attempt, o);
    this.emit('reconnecting', error ? { attempt: this.attempt, delay, error } : { attempt: this.attempt, delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.dial();
    }, delay);
  }
}

/** Starts a client that reconnects by itself (opt-in counterpart of connect()). */
export function reconnecting(url: string, options: ConnectOptions & { reconnect?: ReconnectOptions } = {}): ReconnectingClient {
  return new ReconnectingClient(url, options);
}
