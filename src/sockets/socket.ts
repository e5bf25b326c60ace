/**
 * The socket resource: what PHP's `Socket` object is, built on node:net and node:dgram.
 *
 * A resource owns its receive buffer (bounded: the Node socket is paused above a high-water
 * mark and resumed below it), its pending-connection queue when listening, its last error and
 * its options. Every change of state wakes the functions waiting on it (reads, accept, select).
 */
import type * as net from 'node:net';
import { FdStream, sockAddon, type Creds, type FdWatch } from './native.js';
import { IpOptions } from './ip-options.js';
import type * as dgram from 'node:dgram';
import { ByteQueue } from './buffer.js';
import { errnoOf, globalError, strerror, type ErrorRecord } from './errors.js';
import { AF_INET6, AF_UNIX, SOCK_DGRAM } from './constants.js';

/** How a read function turns bytes into a string: see the README of this module. */
export type SocketEncoding = 'utf8' | 'latin1';

/** One received datagram. */
export interface Datagram {
  data: Buffer;
  address: string;
  port: number;
  /** Unix datagrams of the addon: descriptors and credentials that came with it. */
  fds?: number[];
  creds?: Creds | null;
}

/** Control messages that came with the stream byte at `at` (ByteQueue positions), for socket_recvmsg(). */
export interface Ancillary {
  at: number;
  fds: number[];
  creds: Creds | null;
}

/**
 * What a stream resource reads and writes through: a net.Socket (TCP, TLS, Unix without the
 * sockets addon) or an FdStream (a Unix socket descriptor of the addon).
 */
export interface StreamLike {
  readonly destroyed: boolean;
  readonly writableLength: number;
  readonly writableEnded: boolean;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close' | 'drain' | 'finish', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'finish' | 'close', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  pause(): this;
  resume(): this;
  isPaused(): boolean;
  write(data: Buffer): boolean;
  end(): this;
  destroy(): this;
  resetAndDestroy(): this;
  setNoDelay(noDelay?: boolean): this;
  setKeepAlive(enable?: boolean): this;
}

export type SocketState = 'fresh' | 'bound' | 'listening' | 'connecting' | 'connected' | 'closed';

/** Default bound of the receive buffer (and of a listening socket's datagram queue), in bytes. */
export const DEFAULT_RCVBUF = 256 * 1024;
/** Default write high-water mark: a blocking write waits for room below it. */
export const DEFAULT_SNDBUF = 256 * 1024;
/** Most datagrams kept unread before new ones are dropped, as a full kernel queue does. */
const MAX_QUEUED_DATAGRAMS = 4096;

let nextId = 1;

export interface SocketOptions {
  reuseaddr: boolean;
  keepalive: boolean;
  nodelay: boolean;
  broadcast: boolean;
  rcvtimeo: number; // milliseconds, 0 = none
  sndtimeo: number;
  rcvbuf: number;
  sndbuf: number;
  linger: { l_onoff: number; l_linger: number };
}

export class Socket {
  /** A small integer naming the resource, as intval($socket) did in PHP 7. */
  readonly id = nextId++;
  state: SocketState = 'fresh';
  nonblock = false;
  encoding: SocketEncoding = 'utf8';
  readonly error: ErrorRecord = { errno: 0, detail: '' };
  readonly options: SocketOptions = {
    reuseaddr: false, keepalive: false, nodelay: false, broadcast: false,
    rcvtimeo: 0, sndtimeo: 0, rcvbuf: DEFAULT_RCVBUF, sndbuf: DEFAULT_SNDBUF,
    linger: { l_onoff: 0, l_linger: 0 },
  };
  /** IP-level options (IPPROTO_IP / IPPROTO_IPV6) and SO_REUSEPORT. */
  readonly ip = new IpOptions();
  /** SO_RCVBUF / SO_SNDBUF were set by the program (applied to the kernel for UDP). */
  rcvbufSet = false;
  sndbufSet = false;

  /**
   * The descriptor of a socket made by the sockets addon (AF_UNIX while it is there), or -1.
   * A connected stream hands it to its FdStream, which then owns it.
   */
  fd = -1;
  /** Readiness of `fd` for a listening or datagram addon socket. */
  fdWatch: FdWatch | undefined;
  /** Control messages received with stream bytes not yet read (addon streams only). */
  readonly ancillary: Ancillary[] = [];
  /** Sent to another process with SCM_RIGHTS: socket_close() then only closes this descriptor. */
  passedOn = false;
  /** A descriptor other processes may hold (the addon's, or received): socket_close() is close(2), not shutdown(). */
  shared = false;
  /** SO_PASSCRED as last set (the kernel holds it; kept for accepted sockets to inherit). */
  passcred = false;

  // Stream sockets.
  stream: StreamLike | undefined;
  readonly rx = new ByteQueue();
  /** The peer closed its side (or we shut down reading): reads drain the buffer, then give ''. */
  eof = false;
  readShut = false;
  writeShut = false;
  /** An asynchronous error waiting to be reported (SO_ERROR), e.g. a refused non-blocking connect. */
  pendingErrno = 0;
  /** Bytes a MSG_WAITALL read needs: the buffer may grow to this even above rcvbuf. */
  wantBytes = 0;

  // Listening sockets.
  server: net.Server | undefined;
  readonly pending: StreamLike[] = [];
  accepting = false;
  backlog = 0;

  // Datagram sockets.
  udp: dgram.Socket | undefined;
  readonly datagrams: Datagram[] = [];
  datagramBytes = 0;
  /** The default peer of a connected datagram socket. */
  peer: { address: string; port: number } | undefined;

  /** The address given to socket_bind(). */
  local: { address: string; port: number } | undefined;

  private waiters = new Set<() => void>();

  constructor(readonly domain: number, readonly type: number, readonly protocol: number) {}

  get isDgram(): boolean {
    return this.type === SOCK_DGRAM;
  }

  /** Node's socket family name for this domain's IP addresses. */
  get family(): 4 | 6 | 0 {
    return this.domain === AF_INET6 ? 6 : this.domain === AF_UNIX ? 0 : 4;
  }

  /** Calls fn at every change of state until it is removed. */
  watch(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  changed(): void {
    for (const fn of [...this.waiters]) fn();
  }

  /** Records an error on this socket and globally; returns false for `return fail(...)`. */
  fail(errno: number, detail?: string): false {
    const text = detail ?? strerror(errno);
    this.error.errno = errno;
    this.error.detail = text;
    globalError.errno = errno;
    globalError.detail = text;
    return false;
  }

  failWith(err: unknown, what: string): false {
    const errno = errnoOf(err);
    return this.fail(errno, `${what}: ${strerror(errno)}`);
  }

  /** Takes a connected Node socket into this resource: its bytes flow into the receive buffer. */
  attach(s: StreamLike): void {
    if (this.state === 'closed') {
      s.destroy(); // closed while the connection was being made (e.g. fsockopen's timeout)
      return;
    }
    this.stream = s;
    this.state = 'connected';
    if (s instanceof FdStream) {
      this.shared = true;
      s.onControl = (fds, creds) => {
        if (this.readShut) closeFds(fds);
        else this.ancillary.push({ at: this.rx.pushedTotal, fds, creds });
      };
    }
    if (s.destroyed) this.eof = true; // reset or closed while it waited in the accept queue
    s.on('data', (chunk: Buffer) => {
      if (this.readShut) return; // SHUT_RD: what arrives afterwards is dropped
      this.rx.push(chunk);
      if (this.rx.length >= Math.max(this.options.rcvbuf, this.wantBytes)) s.pause();
      this.changed();
    });
    s.on('end', () => {
      this.eof = true;
      this.changed();
    });
    s.on('error', (err) => {
      this.pendingErrno = errnoOf(err);
      this.eof = true;
      this.changed();
    });
    s.on('close', () => {
      this.eof = true;
      this.changed();
    });
    s.on('drain', () => this.changed());
    if (this.options.nodelay) s.setNoDelay(true);
    if (this.options.keepalive) s.setKeepAlive(true);
    s.resume();
  }

  /** Called after bytes left the receive buffer: reading from the kernel resumes under the mark. */
  consumed(): void {
    // Control messages of bytes now read by plain reads are gone, as with read(2).
    const anc = this.ancillary;
    while (anc.length > 0 && anc[0]!.at < this.rx.consumedTotal) closeFds(anc.shift()!.fds);
    const s = this.stream;
    if (s && s.isPaused() && !s.destroyed && this.rx.length < this.options.rcvbuf) s.resume();
  }

  queueDatagram(d: Datagram): void {
    if (this.datagrams.length >= MAX_QUEUED_DATAGRAMS || this.datagramBytes + d.data.length > this.options.rcvbuf * 4) {
      return; // a full receive queue drops new datagrams, as the kernel does
    }
    this.datagrams.push(d);
    this.datagramBytes += d.data.length;
    this.changed();
  }

  shiftDatagram(): Datagram | undefined {
    const d = this.datagrams.shift();
    if (d) this.datagramBytes -= d.data.length;
    return d;
  }

  // Readiness as select() and poll() report it.

  get readable(): boolean {
    if (this.state === 'closed') return false;
    if (this.state === 'listening') return this.pending.length > 0;
    if (this.isDgram) return this.datagrams.length > 0 || this.pendingErrno !== 0;
    if (this.state === 'connected') return this.rx.length > 0 || this.eof || this.readShut || this.pendingErrno !== 0;
    return this.pendingErrno !== 0;
  }

  get writable(): boolean {
    if (this.state === 'closed') return false;
    if (this.isDgram) return true;
    if (this.state === 'connected') {
      const s = this.stream!;
      return this.writeShut || this.pendingErrno !== 0 || s.destroyed || s.writableLength < this.options.sndbuf;
    }
    return this.pendingErrno !== 0;
  }
}

/** Closes descriptors received but never handed to the program. */
export function closeFds(fds: readonly number[]): void {
  const a = sockAddon();
  if (a) for (const fd of fds) a.close(fd);
}

export function isSocket(x: unknown): x is Socket {
  return x instanceof Socket;
}

/**
 * Waits until `ready()` holds, a change makes it hold, or `ms` pass (0 = no limit).
 * Resolves true when ready, false on timeout. Checks once at once.
 */
export function waitUntil(sockets: readonly Socket[], ready: () => boolean, ms: number): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const unwatch: Array<() => void> = [];
    let timer: NodeJS.Timeout | undefined;
    const done = (ok: boolean): void => {
      for (const u of unwatch) u();
      if (timer) clearTimeout(timer);
      resolve(ok);
    };
    const check = (): void => {
      if (ready()) done(true);
    };
    for (const s of sockets) unwatch.push(s.watch(check));
    if (ms > 0) timer = setTimeout(() => done(false), ms);
  });
}

/** Lets the event loop run once: results that are ready at once still cost a turn, so that a
 * PHP-style busy loop (select, EAGAIN, retry) cannot starve Node's I/O. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
