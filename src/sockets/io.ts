/**
 * Reading and writing: socket_read, socket_recv, socket_recvfrom, socket_write, socket_send,
 * socket_sendto. All return Promises (PHP blocks in them); `await` them.
 *
 * Bytes and strings: reads return JS strings decoded with the socket's encoding, 'utf8' by
 * default (socket_set_encoding() switches to 'latin1', where one char is one byte and any bytes
 * round-trip). In 'utf8' a read never cuts a character in two: it may return up to 3 bytes fewer
 * than it could, leaving the rest of the character buffered for the next read. Lengths and the
 * counts returned are in bytes, as in PHP. Writes take a string (encoded with the socket's
 * encoding) or bytes (Buffer / Uint8Array).
 */
import { Buffer } from 'node:buffer';
import { MSG_DONTWAIT, MSG_OOB, MSG_PEEK, MSG_WAITALL, PHP_BINARY_READ, PHP_NORMAL_READ } from './constants.js';
import { errnoOf, strerror } from './errors.js';
import { utf8Boundary } from './buffer.js';
import { assertSocket, resolveFor } from './resolve.js';
import { ensureUdp } from './lifecycle.js';
import { sockAddon } from './native.js';
import { watchDatagrams } from './unix.js';
import { Socket, nextTurn, waitUntil, type Datagram } from './socket.js';
import type { AddressRef } from './lifecycle.js';

const LF = 10;
const CR = 13;

/** Out parameter of socket_recv() / socket_recvfrom() (PHP's &$data): null at EOF or on error. */
export interface DataRef {
  data: string | null;
}

export function decode(socket: Socket, bytes: Buffer): string {
  return bytes.toString(socket.encoding);
}

/** Bytes a string or byte array stands for on this socket. */
export function encode(socket: Socket, data: string | Uint8Array, length?: number | null): Buffer {
  let b = typeof data === 'string' ? Buffer.from(data, socket.encoding) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (length !== undefined && length !== null && length >= 0 && length < b.length) b = b.subarray(0, length);
  return b;
}

/** How many of the buffered bytes (at most n) a read may take now; 0 means "wait for more". */
function cut(socket: Socket, n: number, atEnd: boolean, asked: number): number {
  const take = Math.min(n, socket.rx.length);
  if (take === 0 || socket.encoding !== 'utf8') return take;
  const look = socket.rx.peek(Math.min(take + 3, socket.rx.length));
  const k = utf8Boundary(look, take);
  if (k > 0) return k;
  // Only part of one character is here: wait for the rest, unless it can never come or does not fit.
  return atEnd || take >= asked ? take : 0;
}

export function atEnd(socket: Socket): boolean {
  return socket.eof || socket.readShut;
}

/** Lets the receive buffer grow to n bytes for a read that needs them, and wakes a paused socket. */
export function want(socket: Socket, n: number): void {
  socket.wantBytes = n;
  const s = socket.stream;
  if (s && s.isPaused() && !s.destroyed && socket.rx.length < Math.max(n, socket.options.rcvbuf)) s.resume();
}

/** Reports a pending asynchronous error once (as Linux does), then reads see EOF. */
export function takeError(socket: Socket, fn: string): false {
  const errno = socket.pendingErrno;
  socket.pendingErrno = 0;
  socket.eof = true;
  return socket.fail(errno, `${fn}(): unable to read from socket [${errno}]: ${strerror(errno)}`);
}

export function notConnected(socket: Socket, fn: string): false {
  return socket.fail(107, `${fn}(): unable to read from socket [107]: ${strerror(107)}`);
}

/** Waits for a change, honouring non-blocking mode and SO_RCVTIMEO; false (EAGAIN recorded) if it may not. */
export async function waitForData(socket: Socket, fn: string, nonblock: boolean, deadline: number): Promise<boolean> {
  if (nonblock) {
    await nextTurn();
    return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)}`);
  }
  const before = socket.rx.length;
  const left = deadline > 0 ? deadline - Date.now() : 0;
  if (deadline > 0 && left <= 0) return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)} (SO_RCVTIMEO)`);
  const ok = await waitUntil([socket], () => socket.rx.length !== before || socket.eof || socket.pendingErrno !== 0 || socket.state !== 'connected', left);
  if (!ok) return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)} (SO_RCVTIMEO)`);
  return true;
}

export function deadlineOf(socket: Socket): number {
  return socket.options.rcvtimeo > 0 ? Date.now() + socket.options.rcvtimeo : 0;
}

export async function nextDatagram(socket: Socket, fn: string, nonblock: boolean, peek: boolean): Promise<Datagram | false> {
  const deadline = deadlineOf(socket);
  for (;;) {
    if (socket.state === 'closed') return socket.fail(9);
    const d = peek ? socket.datagrams[0] : socket.shiftDatagram();
    if (d) return d;
    if (socket.pendingErrno) return takeError(socket, fn);
    if (!socket.udp && !socket.fdWatch) return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)} (the socket is not bound)`);
    if (nonblock) {
      await nextTurn();
      if (socket.datagrams.length > 0) continue;
      return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)}`);
    }
    const left = deadline > 0 ? deadline - Date.now() : 0;
    if (deadline > 0 && left <= 0) return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)} (SO_RCVTIMEO)`);
    const ok = await waitUntil([socket], () => socket.datagrams.length > 0 || socket.pendingErrno !== 0 || socket.state === 'closed', left);
    if (!ok) return socket.fail(11, `${fn}(): unable to read from socket [11]: ${strerror(11)} (SO_RCVTIMEO)`);
  }
}

/**
 * socket_read(socket, length, mode): up to `length` bytes (await it).
 * PHP_BINARY_READ (default) returns what is buffered, waiting only if nothing is;
 * PHP_NORMAL_READ stops after the first "\n" or "\r" (included), across chunk boundaries.
 * Returns '' at end of stream, false on error (11 EAGAIN when non-blocking and nothing is there).
 */
export async function socket_read(socket: Socket | false, length: number, mode: number = PHP_BINARY_READ): Promise<string | false> {
  assertSocket('socket_read', socket);
  const fn = 'socket_read';
  if (!(length > 0)) return socket.fail(22, `${fn}(): Argument #2 ($length) must be greater than 0`);
  if (mode !== PHP_BINARY_READ && mode !== PHP_NORMAL_READ) return socket.fail(22, `${fn}(): Argument #3 ($mode) must be PHP_BINARY_READ or PHP_NORMAL_READ`);
  if (socket.isDgram) {
    const d = await nextDatagram(socket, fn, socket.nonblock, false);
    return d === false ? false : decode(socket, d.data.subarray(0, length));
  }
  const deadline = deadlineOf(socket);
  try {
    for (;;) {
      if (socket.state === 'closed') return socket.fail(9);
      if (socket.state !== 'connected') return notConnected(socket, fn);
      const end = atEnd(socket);
      if (socket.rx.length > 0) {
        let k = 0;
        if (mode === PHP_NORMAL_READ) {
          const i = socket.rx.indexOfAny([LF, CR], Math.min(length, socket.rx.length));
          if (i >= 0) k = i + 1;
          else if (socket.rx.length >= length || end) k = cut(socket, length, end, length);
        } else {
          k = cut(socket, length, end, length);
        }
        if (k > 0) {
          const out = decode(socket, socket.rx.take(k));
          socket.consumed();
          return out;
        }
        want(socket, Math.min(length, socket.rx.length + 4));
      }
      if (socket.pendingErrno) return takeError(socket, fn);
      if (end && socket.rx.length === 0) return '';
      if (mode === PHP_NORMAL_READ) want(socket, length);
      if (!(await waitForData(socket, fn, socket.nonblock, deadline))) return false;
    }
  } finally {
    socket.wantBytes = 0;
  }
}

/**
 * socket_recv(socket, ref, length, flags): receives into ref.data (await it); resolves with the
 * number of bytes, 0 at end of stream (ref.data = null), false on error.
 * MSG_WAITALL waits for `length` bytes (or EOF), MSG_PEEK leaves the data buffered,
 * MSG_DONTWAIT does not wait (11 EAGAIN). MSG_OOB: no urgent data is ever there (22).
 */
export async function socket_recv(socket: Socket | false, ref: DataRef, length: number, flags = 0): Promise<number | false> {
  assertSocket('socket_recv', socket);
  return recv(socket, 'socket_recv', ref, length, flags, undefined);
}

/**
 * socket_recvfrom(socket, ref, length, flags, from): like socket_recv, and fills from.address /
 * from.port with the sender (a datagram's source; the peer on a stream socket).
 */
export async function socket_recvfrom(socket: Socket | false, ref: DataRef, length: number, flags: number, from: AddressRef): Promise<number | false> {
  assertSocket('socket_recvfrom', socket);
  return recv(socket, 'socket_recvfrom', ref, length, flags, from);
}

async function recv(socket: Socket, fn: string, ref: DataRef, length: number, flags: number, from: AddressRef | undefined): Promise<number | false> {
  ref.data = null;
  if (!(length >= 1)) return socket.fail(22, `${fn}(): Argument #3 ($length) must be greater than 0`);
  if (flags & MSG_OOB) return socket.fail(22, `${fn}(): unable to read from socket [22]: ${strerror(22)} (no out-of-band data: Node.js offers no MSG_OOB)`);
  const nonblock = socket.nonblock || (flags & MSG_DONTWAIT) !== 0;
  const peek = (flags & MSG_PEEK) !== 0;
  if (socket.isDgram) {
    const d = await nextDatagram(socket, fn, nonblock, peek);
    if (d === false) return false;
    const bytes = d.data.subarray(0, length);
    ref.data = decode(socket, bytes);
    if (from) {
      from.address = d.address;
      from.port = d.port;
    }
    return bytes.length;
  }
  const waitAll = (flags & MSG_WAITALL) !== 0;
  const deadline = deadlineOf(socket);
  try {
    for (;;) {
      if (socket.state === 'closed') return socket.fail(9);
      if (socket.state !== 'connected') return notConnected(socket, fn);
      const end = atEnd(socket);
      const enough = waitAll ? socket.rx.length >= length || end : socket.rx.length > 0;
      if (enough && socket.rx.length > 0) {
        const k = cut(socket, length, end, length);
        if (k > 0) {
          const bytes = peek ? socket.rx.peek(k) : socket.rx.take(k);
          if (!peek) socket.consumed();
          ref.data = decode(socket, bytes);
          if (from) fillPeer(socket, from);
          return k;
        }
      }
      if (socket.pendingErrno && socket.rx.length === 0) return takeError(socket, fn);
      if (end && socket.rx.length === 0) return 0;
      want(socket, waitAll ? length : Math.min(length, socket.rx.length + 4));
      if (!(await waitForData(socket, fn, nonblock, deadline))) {
        // MSG_WAITALL interrupted by SO_RCVTIMEO returns what it has, as Linux does.
        if (waitAll && !nonblock && socket.rx.length > 0 && socket.error.errno === 11) {
          const k = cut(socket, length, true, length);
          const bytes = peek ? socket.rx.peek(k) : socket.rx.take(k);
          if (!peek) socket.consumed();
          ref.data = decode(socket, bytes);
          return k;
        }
        return false;
      }
    }
  } finally {
    socket.wantBytes = 0;
  }
}

function fillPeer(socket: Socket, from: AddressRef): void {
  const s = socket.stream;
  from.address = s?.remoteAddress ?? '';
  if (s?.remotePort !== undefined) from.port = s.remotePort;
}

/**
 * socket_write(socket, data, length?): writes (await it) and resolves with the number of bytes
 * taken, once there is room for them under the write high-water mark (SO_SNDBUF); false on error
 * (32 EPIPE after shutdown or when the peer is gone, 11 EAGAIN when non-blocking and full).
 */
export async function socket_write(socket: Socket | false, data: string | Uint8Array, length?: number | null): Promise<number | false> {
  assertSocket('socket_write', socket);
  return send(socket, 'socket_write', encode(socket, data, length), socket.nonblock);
}

/** socket_send(socket, data, length, flags): as socket_write; MSG_DONTWAIT does not wait for room. */
export async function socket_send(socket: Socket | false, data: string | Uint8Array, length: number, flags = 0): Promise<number | false> {
  assertSocket('socket_send', socket);
  if (flags & MSG_OOB) return socket.fail(95, `socket_send(): unable to write to socket [95]: ${strerror(95)} (Node.js offers no MSG_OOB)`);
  return send(socket, 'socket_send', encode(socket, data, length), socket.nonblock || (flags & MSG_DONTWAIT) !== 0);
}

export function udpSend(socket: Socket, fn: string, bytes: Buffer, port?: number, address?: string): Promise<number | false> {
  if (socket.fd >= 0) return Promise.resolve(unixDgramSend(socket, fn, bytes, address ?? '', [], false));
  const u = ensureUdp(socket);
  return new Promise((resolve) => {
    const cb = (err: Error | null): void => {
      resolve(err ? socket.fail(errnoOf(err), `${fn}(): unable to write to socket [${errnoOf(err)}]: ${strerror(errnoOf(err))}`) : bytes.length);
    };
    try {
      if (address === undefined) u.send(bytes, cb);
      else u.send(bytes, port, address, cb);
    } catch (err) {
      resolve(socket.failWith(err, `${fn}(): unable to write to socket`));
    }
  });
}

export async function send(socket: Socket, fn: string, bytes: Buffer, nonblock: boolean): Promise<number | false> {
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.isDgram) {
    if (!socket.peer) return socket.fail(89, `${fn}(): unable to write to socket [89]: ${strerror(89)}`);
    return udpSend(socket, fn, bytes);
  }
  if (socket.state === 'connecting' && !nonblock) {
    await waitUntil([socket], () => socket.state !== 'connecting', socket.options.sndtimeo);
  }
  if (socket.state === 'connecting') return socket.fail(11, `${fn}(): unable to write to socket [11]: ${strerror(11)}`);
  const s = socket.stream;
  if (socket.state !== 'connected' || !s) {
    if (socket.pendingErrno) return takeError(socket, fn);
    return socket.fail(32, `${fn}(): unable to write to socket [32]: ${strerror(32)} (not connected)`);
  }
  if (socket.pendingErrno) {
    const errno = socket.pendingErrno;
    socket.pendingErrno = 0;
    return socket.fail(errno, `${fn}(): unable to write to socket [${errno}]: ${strerror(errno)}`);
  }
  if (socket.writeShut || s.destroyed || s.writableEnded) return socket.fail(32, `${fn}(): unable to write to socket [32]: ${strerror(32)}`);
  if (bytes.length === 0) return 0;
  if (s.writableLength >= socket.options.sndbuf) {
    if (nonblock) {
      await nextTurn();
      return socket.fail(11, `${fn}(): unable to write to socket [11]: ${strerror(11)}`);
    }
    const ok = await waitUntil([socket], () => socket.writable, socket.options.sndtimeo);
    if (!ok) return socket.fail(11, `${fn}(): unable to write to socket [11]: ${strerror(11)} (SO_SNDTIMEO)`);
    return send(socket, fn, bytes, nonblock);
  }
  s.write(bytes);
  return bytes.length;
}

/**
 * socket_sendto(socket, data, length, flags, address, port): sends one datagram to address:port
 * (await it). On a stream socket the address is ignored and this is socket_send().
 */
export async function socket_sendto(socket: Socket | false, data: string | Uint8Array, length: number, flags: number, address: string, port = 0): Promise<number | false> {
  assertSocket('socket_sendto', socket);
  const fn = 'socket_sendto';
  const bytes = encode(socket, data, length);
  if (!socket.isDgram) return send(socket, fn, bytes, socket.nonblock || (flags & MSG_DONTWAIT) !== 0);
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.peer) return socket.fail(106, `${fn}(): unable to write to socket [106]: ${strerror(106)} (Node.js cannot send elsewhere from a connected datagram socket)`);
  const host = await resolveFor(socket, fn, address);
  if (host === false) return false;
  return udpSend(socket, fn, bytes, port, host);
}

/** Copies `bytes` into the vectors in order, the first completely before the second. */
function scatter(bytes: Buffer, vectors: Buffer[]): void {
  let off = 0;
  for (const v of vectors) {
    if (off >= bytes.length) break;
    off += bytes.copy(v, 0, off, Math.min(bytes.length, off + v.length));
  }
}

/**
 * readv(2) for socket_readv(): fills `vectors` in order and resolves with the byte count (0 at
 * end of stream, with no error recorded), or false. Blocking: waits until they are all full (or
 * end of stream, an error, SO_RCVTIMEO: then what there is). A datagram is scattered whole
 * (what does not fit is discarded). Bytes, not characters: no UTF-8 boundary is kept.
 */
export async function socket_read_vectors(socket: Socket, fn: string, vectors: Buffer[]): Promise<number | false> {
  const total = vectors.reduce((n, v) => n + v.length, 0);
  if (socket.isDgram) {
    const d = await nextDatagram(socket, fn, socket.nonblock, false);
    if (d === false) return false;
    scatter(d.data, vectors);
    return Math.min(d.data.length, total);
  }
  if (total === 0) return 0;
  const deadline = deadlineOf(socket);
  try {
    for (;;) {
      if (socket.state === 'closed') return socket.fail(9);
      if (socket.state !== 'connected') return notConnected(socket, fn);
      const end = atEnd(socket);
      const have = socket.rx.length;
      if (have >= total || (have > 0 && (end || socket.nonblock))) {
        const bytes = socket.rx.take(Math.min(total, have));
        socket.consumed();
        scatter(bytes, vectors);
        return bytes.length;
      }
      if (socket.pendingErrno && have === 0) return takeError(socket, fn);
      if (end && have === 0) return 0;
      want(socket, total);
      if (!(await waitForData(socket, fn, socket.nonblock, deadline))) {
        if (!socket.nonblock && socket.rx.length > 0 && socket.error.errno === 11) {
          const bytes = socket.rx.take(Math.min(total, socket.rx.length)); // SO_RCVTIMEO: what there is
          socket.consumed();
          scatter(bytes, vectors);
          return bytes.length;
        }
        return false;
      }
    }
  } finally {
    socket.wantBytes = 0;
  }
}

/** writev(2) for socket_writev(): all vectors, in order, as one write (one datagram on UDP). */
export function socket_write_gathered(socket: Socket, fn: string, vectors: readonly Buffer[]): Promise<number | false> {
  return send(socket, fn, Buffer.concat(vectors), socket.nonblock);
}

/** One Unix datagram through the addon (to `path`, or the connected peer when ''), with control messages. */
export function unixDgramSend(socket: Socket, fn: string, bytes: Buffer, path: string, fds: number[], creds: boolean): number | false {
  const a = sockAddon()!;
  const n = a.sendmsg(socket.fd, bytes, fds, creds, 0, path);
  if (n < 0) return socket.fail(-n, `${fn}(): unable to write to socket [${-n}]: ${strerror(-n)}`);
  watchDatagrams(socket); // an unbound sender is autobound by Linux and can get answers
  return n;
}
