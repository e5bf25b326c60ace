/**
 * The native TCP transport (native/tcp.c) seen from JavaScript: a listener, and a socket in the
 * shape core uses (TransportSocket, socket.ts), driven by one batch of events per event-loop round.
 *
 * A NativeSocket is a small object (a slot number and a few fields) where a net.Socket is a
 * Duplex stream with its own buffers and state; events go straight to the Connection (its
 * SocketSink) instead of through an EventEmitter. When the addon is not built, or
 * SWITCHBOARD_NATIVE=0 is set, `addon` is null and transport/index.ts uses node:net.
 */
import { lookup } from 'node:dns/promises';
import { getSystemErrorMap } from 'node:util';
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { addon, type Addon } from '../addon.js';
import type { Address } from '../address.js';
import type { SocketSink, StreamSocket } from './socket.js';

// Literals for the dispatch loop; checked against the addon's own `layout` before first use.
const EV_ACCEPT = 1, EV_DATA = 2, EV_EOF = 3, EV_ERROR = 4, EV_DRAIN = 5, EV_CLOSE = 6, RECORD_INTS = 4;
const LAYOUT: Readonly<Record<string, number>> = {
  ACCEPT: EV_ACCEPT, DATA: EV_DATA, EOF: EV_EOF, ERROR: EV_ERROR, DRAIN: EV_DRAIN, CLOSE: EV_CLOSE, RECORD_INTS,
};
/** Reads of one round land here (the addon gives each read at most 64 KiB and dispatches early when full). */
const SLAB_SIZE = 1024 * 1024;
const MAX_EVENTS = 8192;
/** As net.Socket's default: write() says "wait for drain" from this many queued bytes. */
const HIGH_WATER_MARK = 16 * 1024;

/** True when accepted TCP connections use the native transport. */
export const nativeAvailable = addon !== null;

const sockets: (NativeSocket | undefined)[] = [];
const listeners: (NativeListener | undefined)[] = [];
let slab: Buffer;
let events: Int32Array;
let initialized = false;

/**
 * Set while a batch is being handled: afterRound() work then runs at its end (see
 * NativeSocket.afterRound). The dispatch loop's own state: nothing outside this file sets it.
 */
let dispatching = false;
/** What asked to run once the batch being handled is done. */
let afterBatch: (() => void)[] = [];

function ensureInit(a: Addon): void {
  if (initialized) return;
  // A build of another native/tcp.c (a stale build/) is refused here rather than misread.
  const wrong = Object.keys(LAYOUT).filter((k) => a.layout?.[k] !== LAYOUT[k]);
  if (wrong.length > 0) {
    throw new Error(`switchboard: the native addon's record layout differs (${wrong.join(', ')}): rebuild it with \`npm run build:native\``);
  }
  initialized = true;
  slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  events = new Int32Array(MAX_EVENTS * RECORD_INTS);
  a.init(dispatch, slab, events);
}

function dispatch(n: number): void {
  dispatching = true;
  for (let i = 0, p = 0; i < n; i++, p += RECORD_INTS) {
    const type = events[p]!;
    const slot = events[p + 1]!;
    try {
      if (type === EV_DATA) {
        const s = sockets[slot];
        if (s === undefined || s.destroyed) continue;
        const off = events[p + 2]!;
        const len = events[p + 3]!;
        // A copy: the slab is reused next round, and codecs and users may keep what they get.
        const chunk = Buffer.allocUnsafe(len);
        slab.copy(chunk, 0, off, off + len);
        s.sink?.handleData(chunk);
      } else if (type === EV_ACCEPT) {
        const socket = new NativeSocket(slot);
        sockets[slot] = socket;
        const l = listeners[events[p + 2]!];
        if (l === undefined) socket.destroy();
        else l.onSocket(socket);
      } else if (type === EV_CLOSE) {
        const s = sockets[slot];
        sockets[slot] = undefined;
        if (s !== undefined) s.closed();
      } else {
        const s = sockets[slot];
        if (s === undefined) continue;
        if (type === EV_EOF) s.sink?.handleEnd();
        else if (type === EV_DRAIN) s.drained();
        else if (type === EV_ERROR) s.failed(events[p + 2]!, 'read');
      }
    } catch (err) {
      // One handler's throw must not lose the rest of the batch: it surfaces as uncaught, after.
      process.nextTick(rethrow, err);
    }
  }
  dispatching = false;
  if (afterBatch.length > 0) {
    // Swapped first: what these queue runs after the next batch (or the next check phase).
    const after = afterBatch;
    afterBatch = [];
    for (let i = 0; i < after.length; i++) after[i]!();
  }
}

function rethrow(err: unknown): never {
  throw err;
}

let errorMap: Map<number, [string, string]> | undefined;
/** An Error shaped as node:net makes them: "listen EADDRINUSE: address already in use 127.0.0.1:80". */
function uvError(code: number, syscall: string, where?: string): NodeJS.ErrnoException {
  const [name, text] = (errorMap ??= getSystemErrorMap()).get(code) ?? ['UNKNOWN', 'unknown error'];
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${name}: ${text}${where ? ` ${where}` : ''}`);
  err.code = name;
  err.errno = code;
  err.syscall = syscall;
  return err;
}

// NativeSocket flags (one field, not three booleans: this object exists once per connection).
const DESTROYED = 1, PAUSED = 2, ENDED = 4;
/** The last peer address string made: clients from one host share one string, not one each. */
let lastIp = '';

/** The socket shape core uses (TransportSocket), over a native slot. */
export class NativeSocket implements StreamSocket {
  /** Set by bind(); the dispatch loop calls it directly. */
  sink: SocketSink | null = null;
  /** Bytes the addon still holds, as of the last write or drain. */
  writableLength = 0;
  private flags = 0;
  /** The peer's address, read from the addon on first use and kept (it still answers after close). */
  private ip: string | undefined = undefined;
  private port = -1;

  constructor(readonly slot: number) {}

  get destroyed(): boolean {
    return (this.flags & DESTROYED) !== 0;
  }
  get writableHighWaterMark(): number {
    return HIGH_WATER_MARK;
  }
  get writableNeedDrain(): boolean {
    return this.writableLength >= HIGH_WATER_MARK;
  }
  get remoteAddress(): string | undefined {
    if (this.port < 0) this.peer();
    return this.ip;
  }
  get remotePort(): number | undefined {
    if (this.port < 0) this.peer();
    return this.ip === undefined ? undefined : this.port;
  }
  get remoteFamily(): string | undefined {
    const ip = this.remoteAddress;
    return ip === undefined ? undefined : ip.includes(':') ? 'IPv6' : 'IPv4';
  }
  get localAddress(): string | undefined {
    return this.destroyed ? undefined : addon!.address(this.slot, false)?.[0];
  }
  get localPort(): number | undefined {
    return this.destroyed ? undefined : addon!.address(this.slot, false)?.[1];
  }
  private peer(): void {
    const a = this.destroyed ? undefined : addon!.address(this.slot, true);
    this.port = a === undefined ? 0 : a[1];
    if (a !== undefined) this.ip = a[0] === lastIp ? lastIp : (lastIp = a[0]);
  }

  bind(sink: SocketSink): void {
    this.sink = sink; // events come as direct calls
  }
  /** Drains are always reported when owed (see drained): there is no listener to add. */
  watchDrain(): void {}
  /** After the batch being dispatched, so that every read of it is in; or in the next check phase. */
  afterRound(run: () => void): void {
    if (dispatching) afterBatch.push(run);
    else setImmediate(run);
  }

  write(bytes: Buffer): boolean {
    if ((this.flags & (DESTROYED | ENDED)) !== 0) return false;
    return this.wrote(addon!.write(this.slot, bytes));
  }
  writev(chunks: readonly Buffer[]): boolean {
    if ((this.flags & (DESTROYED | ENDED)) !== 0) return false;
    return this.wrote(addon!.writev(this.slot, chunks as Buffer[]));
  }

  private wrote(r: number): boolean {
    if (r < 0) {
      this.failed(r, 'write');
      return false;
    }
    this.writableLength = r;
    return r < HIGH_WATER_MARK;
  }

  /** Half-closes once queued bytes are out. */
  end(): this {
    if ((this.flags & (DESTROYED | ENDED)) === 0) {
      this.flags |= ENDED;
      addon!.end(this.slot);
    }
    return this;
  }

  destroy(): this {
    if (!this.destroyed) {
      this.flags |= DESTROYED;
      addon!.close(this.slot);
    }
    return this;
  }

  pause(): this {
    if ((this.flags & (PAUSED | DESTROYED)) === 0) {
      this.flags |= PAUSED;
      addon!.pause(this.slot);
    }
    return this;
  }
  resume(): this {
    if ((this.flags & (PAUSED | DESTROYED)) === PAUSED) {
      this.flags &= ~PAUSED;
      addon!.resume(this.slot);
    }
    return this;
  }
  isPaused(): boolean {
    return (this.flags & PAUSED) !== 0;
  }
  setKeepAlive(enable = false, initialDelay = 0): this {
    if (!this.destroyed) addon!.keepalive(this.slot, enable, Math.max(1, Math.floor(initialDelay / 1000)));
    return this;
  }

  /** @internal The addon's write queue emptied. */
  drained(): void {
    const owed = this.writableLength >= HIGH_WATER_MARK;
    this.writableLength = 0;
    if (owed) this.sink?.handleDrain();
  }
  /** @internal A read or write failed: the connection is closing. */
  failed(code: number, syscall: string): void {
    this.sink?.handleError(uvError(code, syscall));
    this.destroy();
  }
  /** @internal The handle is closed and its slot free. */
  closed(): void {
    this.flags |= DESTROYED;
    this.sink?.handleClose();
  }
}

/** A listening native socket with the part of net.Server's shape that Server uses. */
export class NativeListener {
  private id = -1;
  private port = 0;
  private host = '';
  private family = 'IPv4';

  constructor(readonly onSocket: (socket: NativeSocket) => void) {}

  async listen(host: string, port: number, backlog = 511): Promise<void> {
    const a = addon!;
    ensureInit(a);
    const ip = (await lookup(host)).address;
    // In a cluster worker every worker listens on the port itself (see useNative).
    const r = a.listen(ip, port, backlog, false, cluster.isWorker);
    const where = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
    if (typeof r === 'number') throw Object.assign(uvError(r, 'listen', where), { address: ip, port });
    [this.id, this.port] = r;
    this.host = ip;
    this.family = ip.includes(':') ? 'IPv6' : 'IPv4';
    listeners[this.id] = this;
  }

  address(): AddressInfo | null {
    return this.id < 0 ? null : { address: this.host, family: this.family, port: this.port };
  }

  /** Stops accepting. Connections already accepted are left to their owner, as net.Server does. */
  close(callback?: () => void): void {
    if (this.id >= 0) {
      // unlisten() takes the connections still queued in the kernel (see native/tcp.c): their
      // accept records come in the next batch, and still reach this listener's owner.
      const id = this.id;
      addon!.unlisten(id);
      this.id = -1;
      setTimeout(() => {
        if (listeners[id] === this) listeners[id] = undefined;
      }, 100).unref();
    }
    if (callback) setImmediate(callback);
  }
}

/**
 * Whether accepted connections on this address should use the native transport: plain TCP
 * (TLS and Unix sockets stay on node:net). In a cluster worker on Linux each worker listens on
 * the port itself with SO_REUSEPORT and the kernel spreads connections among them; elsewhere,
 * and for port 0 (each worker would get a port of its own), the workers share the primary's
 * listening socket through node:net, as cluster does.
 */
export function useNative(address: Address, option: boolean | undefined): boolean {
  if (addon === null || option === false || address.transport !== 'tcp') return false;
  return !cluster.isWorker || (process.platform === 'linux' && address.port !== 0);
}
