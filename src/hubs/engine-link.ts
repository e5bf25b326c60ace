/**
 * The state of a hub's link to an engine (Redis, Redis Cluster, NATS), held once for every such hub.
 *
 * Each engine hub owns one EngineLink and tells it what its client library reports (connected,
 * connection lost, a publish sent or answered, a PING overdue); the link keeps the books and says
 * it to the log in the same words for every engine:
 *   - start-up: until the engine has been up once, failures are one report, from ready() if someone
 *     waits there, else one log line after readyTimeout (never "retrying" and then "cannot reach");
 *   - outages: "lost connection to …" once, then "connection to … is back" with what was dropped;
 *   - not answering: publishes waiting for an answer are bounded (count and bytes), and beyond the
 *     bound, or when a PING goes unanswered, publishes are dropped until the engine answers again;
 *   - ready(): the callers waiting for the link to come up, bounded by readyTimeout.
 * What differs between engines (how "up" is decided, the connections, the framing) stays in the hub.
 */
import { SwitchboardError } from '../errors.js';
import type { HubLog } from './types.js';

/** The options every engine hub takes for its link. */
export interface EngineLinkOptions {
  /** Where outages and recoveries are reported. Default: console.error. */
  log?: HubLog;
  /** How long ready() waits for the engine before it rejects, in ms. Default 5000. */
  readyTimeout?: number;
  /** The longest pause between reconnect attempts, in ms (backoff doubles from 50 ms up to it). Default 2000. */
  maxRetryDelay?: number;
  /** Publishes sent and not yet answered by the engine; beyond, publishes are dropped. Default 50000. */
  maxPendingPublishes?: number;
  /** Bytes of publishes sent and not yet answered; beyond, publishes are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** An engine that leaves a PING unanswered this long (ms) is treated as down. Default 5000. */
  answerTimeout?: number;
}

/** How often the engine is pinged, at most (ms). */
const PING_EVERY = 1000;

export class EngineLink {
  readonly log: HubLog;
  readonly readyTimeout: number;
  readonly maxRetryDelay: number;
  readonly maxPendingPublishes: number;
  readonly maxPendingBytes: number;
  readonly answerTimeout: number;
  /** Publishes dropped because the engine was unreachable or not answering. */
  dropped = 0;
  /** Publishes sent and not answered yet, and their bytes (bounded by the options of the same name). */
  pendingPublishes = 0;
  pendingBytes = 0;
  /** The engine has been up once: from then on failures are outages, not start-up trouble. */
  everUp = false;
  /** Down (lost, or never reached and reported): its end is logged with what was dropped meanwhile. */
  outage = false;
  /** Connected, but the engine does not answer (or not fast enough): publishes are dropped. */
  stalled = false;
  /** `dropped` when the current outage (or the time without answers) began: its own count is logged at the end. */
  droppedAtOutage = 0;
  /** Why the last connection attempt failed, for the start-up report. */
  lastError: string | null = null;
  /** One failed publish is logged per time up, not one per message. */
  publishErrorLogged = false;
  /** Why the client package could not be loaded (or the address not used); ready() rejects with it. */
  loadError: unknown = null;
  closed = false;
  /** The start-up failure was told (by ready() rejecting, or logged when nobody waited in ready()). */
  private startReported = false;
  private startTimer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private waiters: Array<() => void> = [];

  /**
   * `name` starts every line ('redis' gives "redis hub: …"); `hint` ends the start-up rejection
   * ("is redis running there?"). `checkTimes: false` keeps readyTimeout and maxRetryDelay as given:
   * the redis hub has always taken them unchecked.
   */
  constructor(
    readonly name: string,
    readonly safeUrl: string,
    private readonly hint: string,
    options: EngineLinkOptions,
    checkTimes = true,
  ) {
    this.log = options.log ?? ((m) => console.error(m));
    const time = (option: string, v: number): number => (checkTimes ? positive(name, option, v) : v);
    this.readyTimeout = time('readyTimeout', options.readyTimeout ?? 5000);
    this.maxRetryDelay = time('maxRetryDelay', options.maxRetryDelay ?? 2000);
    this.maxPendingPublishes = positive(name, 'maxPendingPublishes', options.maxPendingPublishes ?? 50_000);
    this.maxPendingBytes = positive(name, 'maxPendingBytes', options.maxPendingBytes ?? 16 * 1024 * 1024);
    this.answerTimeout = positive(name, 'answerTimeout', options.answerTimeout ?? 5000);
  }

  /** Starts the start-up clock (separate from the constructor, so a hub whose own options fail leaves no timer). */
  begin(): void {
    this.startTimer = setTimeout(() => this.reportStartTrouble(), this.readyTimeout);
    this.startTimer.unref();
  }

  private reportStartTrouble(): void {
    this.startTimer = null;
    if (this.closed || this.everUp || this.startReported || this.waiters.length > 0) return;
    this.startReported = true;
    this.outage = true;
    this.droppedAtOutage = 0;
    this.log(
      `${this.name} hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'}; retrying; until then only local ` +
        `subscribers get messages and publishes to other processes are dropped`,
    );
  }

  /** The reconnect backoff: doubles from 50 ms up to maxRetryDelay. */
  retryDelay(attempt: number): number {
    return Math.min(50 * 2 ** Math.min(attempt, 16), this.maxRetryDelay);
  }

  /** One connection attempt's bound: within readyTimeout, between 1 and 10 s. */
  get connectTimeout(): number {
    return Math.max(1000, Math.min(this.readyTimeout, 10000));
  }

  /** Calls `ping` at least once a second and at least twice per answerTimeout, until close (idempotent). */
  startPinging(ping: () => void): void {
    if (this.pinger !== null || this.closed) return;
    this.pinger = setInterval(ping, Math.min(PING_EVERY, Math.max(10, Math.floor(this.answerTimeout / 2))));
    this.pinger.unref();
  }

  /** The hub is up (its subscriptions in effect): end the outage, if any, and release ready() callers. */
  markUp(topics: number): void {
    if (this.outage) {
      this.outage = false;
      const dropped = this.dropped - this.droppedAtOutage;
      this.log(
        this.everUp
          ? `${this.name} hub: connection to ${this.safeUrl} is back; ${topics} topic(s) resubscribed, ` +
              `delivery across processes resumes (${dropped} message(s) dropped while it was down)`
          : `${this.name} hub: connected to ${this.safeUrl}; ${topics} topic(s) subscribed, ` +
              `delivery across processes starts (${dropped} message(s) dropped before)`,
      );
    }
    this.everUp = true;
    this.lastError = null;
    this.publishErrorLogged = false;
    this.wakeWaiters();
  }

  /** The connection went away after having been up: an outage, logged once. Start-up trouble is not (see begin()). */
  lost(why: string): void {
    if (this.closed || !this.everUp || this.outage) return;
    this.outage = true;
    this.droppedAtOutage = this.dropped;
    this.log(
      `${this.name} hub: lost connection to ${this.safeUrl} (${why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it is back`,
    );
  }

  /** The engine is connected but does not answer: drop publishes until it does (logged once). */
  stall(why: string): void {
    if (this.stalled || this.closed) return;
    this.stalled = true;
    if (this.outage) return; // already told that publishes to other processes are dropped
    this.droppedAtOutage = this.dropped;
    this.log(
      `${this.name} hub: ${this.safeUrl} is not answering (${why}); local delivery goes on, ` +
        `messages published to other processes are dropped until it answers`,
    );
  }

  /**
   * An answer came: publishing resumes once what waits is down to half the bounds (so it does not
   * flap at the bound). True when it resumed.
   */
  answered(): boolean {
    if (!this.stalled || this.closed) return false;
    if (this.pendingPublishes > this.maxPendingPublishes / 2 || this.pendingBytes > this.maxPendingBytes / 2) return false;
    this.stalled = false;
    if (!this.outage) {
      this.log(
        `${this.name} hub: ${this.safeUrl} answers again; delivery across processes resumes ` +
          `(${this.dropped - this.droppedAtOutage} message(s) dropped while it did not answer)`,
      );
    }
    return true;
  }

  /**
   * Whether a publish of `bytes` fits the pending bounds; when it does not, it is counted as dropped
   * and the engine as not answering.
   */
  admit(bytes: number): boolean {
    if (this.pendingPublishes >= this.maxPendingPublishes || this.pendingBytes + bytes > this.maxPendingBytes) {
      this.stall(`${this.pendingPublishes} publish(es), ${this.pendingBytes} bytes, wait for an answer`);
      this.dropped++;
      return false;
    }
    return true;
  }

  /** A publish of `bytes` was sent and waits for its answer. */
  sent(bytes: number): void {
    this.pendingPublishes++;
    this.pendingBytes += bytes;
  }

  /** `count` publishes of `bytes` in all were answered (or failed). */
  settled(bytes: number, count = 1): void {
    this.pendingPublishes -= count;
    this.pendingBytes -= bytes;
  }

  /** A publish of `bytes` whose `reply` is pending until it settles: then `answered`, or (counted as dropped) `failed`. */
  track(reply: Promise<unknown>, bytes: number, answered: () => void, failed: (err: unknown) => void): void {
    this.sent(bytes);
    reply.then(
      () => {
        this.settled(bytes);
        answered();
      },
      (err: unknown) => {
        this.settled(bytes);
        this.dropped++;
        failed(err);
      },
    );
  }

  /** A publish failed while the link looked fine: log the first only (`line` without the "NAME hub: "). */
  publishFailed(line: string): void {
    if (this.outage || this.stalled || this.publishErrorLogged || this.closed) return;
    this.publishErrorLogged = true;
    this.log(`${this.name} hub: ${line}`);
  }

  /** ready()'s start: the deadline (taken now), once the client package is loaded; rejects if it could not be. */
  async loaded(loading: Promise<void>): Promise<number> {
    const deadline = Date.now() + this.readyTimeout;
    await loading;
    if (this.loadError !== null) {
      throw new SwitchboardError('ERR_HUB', `${this.name} hub: not available (${errorText(this.loadError)})`, { cause: this.loadError });
    }
    return deadline;
  }

  assertOpen(): void {
    if (this.closed) throw new SwitchboardError('ERR_CLOSED', `${this.name} hub: closed`);
  }

  /** Resolves at the next markUp() (or close); rejects at `deadline`. */
  whenUp(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onUp);
        if (this.everUp) {
          // Up once and down again: the outage is logged as such; this caller only learns it timed out.
          reject(new SwitchboardError('ERR_HUB', `${this.name} hub: ${this.safeUrl} is not back within ${this.readyTimeout} ms`));
          return;
        }
        this.startReported = true;
        if (!this.outage) {
          // From now on the hub (if it is kept) is in an outage that ends with "connected to".
          this.outage = true;
          this.droppedAtOutage = 0;
        }
        reject(new SwitchboardError('ERR_HUB',
          `${this.name} hub: cannot reach ${this.safeUrl}: ${this.lastError ?? 'no answer'} (tried for ${this.readyTimeout} ms; ${this.hint})`));
      }, Math.max(0, deadline - Date.now()));
      const onUp = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(onUp);
    });
  }

  /** Marks the link closed and stops its timers; the hub releases ready() callers with wakeWaiters() when it is done. */
  close(): void {
    this.closed = true;
    if (this.pinger !== null) clearInterval(this.pinger);
    if (this.startTimer !== null) clearTimeout(this.startTimer);
    this.pinger = this.startTimer = null;
  }

  /** ready() callers go on (after close they see `closed` and reject). */
  wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** The base of the engine hubs: their link, and what they show of it (status output, /metrics, tests). */
export abstract class EngineHub {
  /** @internal Outages, bounds, start-up report and ready() waiters. */
  protected readonly link: EngineLink;

  /** The link's arguments (see EngineLink); the hub calls link.begin() once its own options are checked. */
  constructor(name: string, safeUrl: string, hint: string, options: EngineLinkOptions, checkTimes = true) {
    this.link = new EngineLink(name, safeUrl, hint, options, checkTimes);
  }

  /** Publishes dropped because the engine was unreachable or not answering. */
  get dropped(): number {
    return this.link.dropped;
  }

  /** Publishes sent and not answered yet, and their bytes (bounded by the options of the same name). */
  get pendingPublishes(): number {
    return this.link.pendingPublishes;
  }

  get pendingBytes(): number {
    return this.link.pendingBytes;
  }

  /** @internal */
  protected get closed(): boolean {
    return this.link.closed;
  }
}

/** `promise`, or after `ms` whatever it has not done: a polite QUIT or close must not hold up shutdown. */
export async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

export function positive(hub: string, name: string, v: number): number {
  if (typeof v !== 'number' || !(v > 0)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `${hub} hub: option ${name} must be a number > 0 (got ${String(v)})`);
  }
  return v;
}

/** An error as one line, with its code (ECONNREFUSED …) when the message does not already carry it. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
