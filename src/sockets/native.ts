/**
 * The system calls Node.js lacks, from native/sockets.c (build/switchboard_sockets.node), loaded
 * lazily and only by switchboard/sockets; null where it was not built, off Linux, or with
 * SWITCHBOARD_SOCKETS_NATIVE=0 (the functions that need it then fail with 38 ENOSYS).
 * SWITCHBOARD_SOCKETS_NATIVE_PATH names another build to load (the sanitizer's).
 *
 * FdStream is a connected stream descriptor (a Unix socket) with the few members of net.Socket
 * that the socket resource uses, read with recvmsg() so that control messages (SCM_RIGHTS,
 * SCM_CREDENTIALS) reach socket_recvmsg() instead of being dropped by a plain read().
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export type Creds = [pid: number, uid: number, gid: number];
/** recvmsg's result: data, descriptors received, credentials, msg_flags, the sender's path. */
export type Received = [Buffer, number[], Creds | null, number, string];
export type PollHandle = object & { readonly __poll: unique symbol };

export interface SocketsAddon {
  socket(domain: number, type: number, protocol: number): number;
  socketpair(domain: number, type: number, protocol: number): [number, number] | number;
  bind(fd: number, path: string): number;
  connect(fd: number, path: string): number;
  bindIp(fd: number, ip: string, port: number): number;
  listen(fd: number, backlog: number): number;
  accept(fd: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  dup(fd: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer): number;
  getsockopt(fd: number, level: number, name: number, maxlen: number): Buffer | number;
  name(fd: number, peer: boolean): string | number;
  sendmsg(fd: number, data: Buffer, fds: number[], creds: boolean, flags: number, path: string): number;
  recvmsg(fd: number, maxlen: number, flags: number): Received | number;
  poll(fd: number, callback: (status: number, events: number) => void): PollHandle | number;
  pollSet(handle: PollHandle, events: number): number;
  pollClose(handle: PollHandle): void;
  pollRef(handle: PollHandle, ref: boolean): void;
}

let loaded: SocketsAddon | null | undefined;
export let addonProblem = '';

/** The addon, loaded on first use; null when it is not there (addonProblem says why). */
export function sockAddon(): SocketsAddon | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') {
    addonProblem = 'the sockets addon is built for Linux only';
  } else if (process.env.SWITCHBOARD_SOCKETS_NATIVE === '0') {
    addonProblem = 'SWITCHBOARD_SOCKETS_NATIVE=0 is set';
  } else if (process.env.SWITCHBOARD_SOCKETS_NATIVE_PATH) {
    // Another build (the sanitizer's, in `npm run test:sanitize`): one that does not load is an error.
    loaded = createRequire(import.meta.url)(resolve(process.env.SWITCHBOARD_SOCKETS_NATIVE_PATH)) as SocketsAddon;
  } else {
    addonProblem = 'build/switchboard_sockets.node is not built (no C compiler at npm install?): run `npm run build:native`';
    for (const rel of ['../../build/switchboard_sockets.node', '../../../build/switchboard_sockets.node']) {
      const file = fileURLToPath(new URL(rel, import.meta.url));
      if (!existsSync(file)) continue;
      try {
        loaded = createRequire(import.meta.url)(file) as SocketsAddon;
      } catch (err) {
        addonProblem = `build/switchboard_sockets.node does not load: ${(err as Error).message}`;
      }
      break;
    }
  }
  return loaded;
}

export const READABLE = 1;
export const WRITABLE = 2;
const HIGH_WATER_MARK = 16 * 1024;
const READ_SIZE = 64 * 1024;
/** Reads per readiness event, so one busy descriptor cannot hold the event loop. */
const READS_PER_EVENT = 16;

/** An Error as Node raises them for a system call (errno negative, code the name). */
export function sysError(errno: number, call: string): Error {
  const err = new Error(`${call} failed: errno ${errno}`) as Error & { errno: number; syscall: string };
  err.errno = -errno;
  err.syscall = call;
  return err;
}

interface Outgoing {
  data: Buffer;
  fds: number[];
  creds: boolean;
}

/** What a chunk carried beside its bytes. */
export type OnControl = (fds: number[], creds: Creds | null) => void;

export class FdStream extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  readonly remoteAddress: string | undefined = undefined;
  readonly remotePort: number | undefined = undefined;
  readonly localAddress: string | undefined = undefined;
  readonly localPort: number | undefined = undefined;
  /** Called before 'data' with a chunk's descriptors and credentials; without it, received descriptors are closed. */
  onControl: OnControl | undefined;
  private paused = true;
  private readEnded = false;
  private shutSent = false;
  private readonly queue: Outgoing[] = [];
  private readonly poller: PollHandle;

  constructor(private readonly a: SocketsAddon, readonly fd: number) {
    super();
    const p = a.poll(fd, (status, events) => this.ready(status, events));
    if (typeof p === 'number') throw sysError(-p, 'uv_poll_init');
    this.poller = p;
  }

  private update(): void {
    if (this.destroyed) return;
    const events = (!this.paused && !this.readEnded ? READABLE : 0) | (this.queue.length > 0 ? WRITABLE : 0);
    this.a.pollSet(this.poller, events);
  }

  private ready(status: number, events: number): void {
    if (this.destroyed) return;
    if (status < 0) {
      this.fail(-status, 'poll');
      return;
    }
    if (events & WRITABLE) this.flush();
    if (events & READABLE) this.readSome();
  }

  private readSome(): void {
    for (let i = 0; i < READS_PER_EVENT && !this.paused && !this.destroyed && !this.readEnded; i++) {
      const r = this.a.recvmsg(this.fd, READ_SIZE, 0);
      if (typeof r === 'number') {
        if (r === -11) return;
        this.fail(-r, 'recvmsg');
        return;
      }
      const [data, fds, creds] = r;
      if (fds.length > 0 || creds) {
        if (this.onControl) this.onControl(fds, creds);
        else for (const fd of fds) this.a.close(fd);
      }
      if (data.length === 0) {
        this.readEnded = true;
        this.update();
        this.emit('end');
        return;
      }
      this.emit('data', data);
    }
  }

  private fail(errno: number, call: string): void {
    this.emit('error', sysError(errno, call));
    this.destroy();
  }

  /** Sends what is queued, in order; descriptors and credentials go with the first byte of their message. */
  private flush(): void {
    let sent = false;
    while (this.queue.length > 0 && !this.destroyed) {
      const item = this.queue[0]!;
      const n = this.a.sendmsg(this.fd, item.data, item.fds, item.creds, 0, '');
      if (n === -11) break;
      if (n < 0) {
        this.fail(-n, 'sendmsg');
        return;
      }
      sent = true;
      item.fds = [];
      item.creds = false;
      this.writableLength -= n;
      if (n < item.data.length) {
        item.data = item.data.subarray(n);
        break;
      }
      this.queue.shift();
    }
    if (this.destroyed) return;
    if (this.queue.length === 0) {
      if (this.writableEnded && !this.shutSent) this.finish();
      if (sent) this.emit('drain');
    }
    this.update();
  }

  private finish(): void {
    this.shutSent = true;
    this.a.shutdown(this.fd, 1);
    setImmediate(() => this.emit('finish'));
  }

  /**
   * Queues bytes with descriptors and credentials and sends at once what the kernel takes.
   * Resolves to 0, or the errno when the message could not even start (EBADF for a descriptor
   * that is not open, EPERM, ...); later failures are reported as 'error'.
   */
  sendmsg(data: Buffer, fds: number[], creds: boolean): number {
    if (this.destroyed || this.writableEnded) return 32;
    if (this.queue.length === 0) {
      const n = this.a.sendmsg(this.fd, data, fds, creds, 0, '');
      if (n < 0 && n !== -11) return -n;
      if (n >= data.length) return 0;
      const rest = n > 0 ? data.subarray(n) : data;
      this.queue.push({ data: rest, fds: n > 0 ? [] : fds, creds: n > 0 ? false : creds });
      this.writableLength += rest.length;
      this.update();
      return 0;
    }
    this.queue.push({ data, fds, creds });
    this.writableLength += data.length;
    return 0;
  }

  write(data: Buffer | Uint8Array | string): boolean {
    const b = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (b.length > 0) {
      const errno = this.sendmsg(b, [], false);
      if (errno !== 0) setImmediate(() => this.fail(errno, 'sendmsg'));
    }
    return this.writableLength < HIGH_WATER_MARK;
  }

  end(): this {
    if (this.writableEnded || this.destroyed) return this;
    this.writableEnded = true;
    if (this.queue.length === 0) this.finish();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.a.pollClose(this.poller);
    this.a.close(this.fd);
    this.queue.length = 0;
    this.writableLength = 0;
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** SO_LINGER {1, 0}, then close: the peer gets a reset. */
  resetAndDestroy(): this {
    if (!this.destroyed) this.a.setsockopt(this.fd, 1, 13, lingerZero());
    return this.destroy();
  }

  pause(): this {
    this.paused = true;
    this.update();
    return this;
  }

  resume(): this {
    this.paused = false;
    this.update();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }
}

function lingerZero(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32LE(1, 0);
  return b;
}

/** An int option value as setsockopt() takes it. */
export function intValue(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v | 0, 0);
  return b;
}

/** Watches a descriptor for readability (a listening socket, a datagram socket). */
export class FdWatch {
  private readonly poller: PollHandle;
  closed = false;
  constructor(private readonly a: SocketsAddon, fd: number, onReadable: (status: number) => void) {
    const p = a.poll(fd, (status) => onReadable(status));
    if (typeof p === 'number') throw sysError(-p, 'uv_poll_init');
    this.poller = p;
  }

  set(events: number): void {
    if (!this.closed) this.a.pollSet(this.poller, events);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.a.pollClose(this.poller);
  }
}
