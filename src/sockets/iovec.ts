/**
 * PHP 4's scatter/gather API: socket_iovec_alloc / add / set / fetch / delete / free, and
 * socket_readv / socket_writev over them.
 *
 * An iovec is an array of byte vectors, each of a fixed length (as `struct iovec[]` with
 * buffers PHP allocated). socket_writev() sends all vectors, in order, as one write;
 * socket_readv() fills them in order, the first completely before the second, as readv(2) does.
 *
 * Where PHP 4's own code is wrong, this does what readv(2)/writev(2) mean: PHP 4 tested
 * `readv(...) != 0` (and writev) as failure, so every successful read or write of at least one
 * byte returned false. Here success is true. A blocking readv waits until every vector is full
 * (or end of stream, an error, SO_RCVTIMEO), since the program cannot learn from PHP's boolean
 * how much arrived; that is readv(2) on a socket with MSG_WAITALL, the one reading a program
 * written for fixed-size vectors depends on.
 */
import { Buffer } from 'node:buffer';
import { globalError, strerror } from './errors.js';
import { socket_read_vectors, socket_write_gathered } from './io.js';
import { assertSocket } from './resolve.js';
import type { Socket, SocketEncoding } from './socket.js';

/** Most vectors in one iovec: Linux's IOV_MAX (a larger readv(2)/writev(2) fails with 22). */
export const IOV_MAX = 1024;
/** Largest single vector accepted by socket_iovec_alloc / add (bytes). */
export const IOVEC_MAX_LEN = 16 * 1024 * 1024;

/** What socket_iovec_alloc() returns: PHP's "IO vector table" resource. */
export class Iovec {
  vectors: Buffer[];
  freed = false;
  /** How fetch() turns bytes into a string: the encoding of the socket that last filled it. */
  encoding: SocketEncoding = 'utf8';
  constructor(lengths: number[]) {
    this.vectors = lengths.map((n) => Buffer.alloc(n));
  }
}

function fail(errno: number, detail: string): false {
  globalError.errno = errno;
  globalError.detail = detail;
  return false;
}

function assertIovec(fn: string, iovec: unknown, arg: number): asserts iovec is Iovec {
  if (!(iovec instanceof Iovec)) {
    const given = iovec === null ? 'null' : typeof iovec === 'boolean' ? 'bool' : typeof iovec;
    throw new TypeError(`${fn}(): Argument #${arg} ($iovec) must be of type resource, ${given} given`);
  }
}

function validLength(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= IOVEC_MAX_LEN;
}

/** socket_iovec_alloc(num_vectors, len1, len2, ...): an iovec of num_vectors zeroed vectors. */
export function socket_iovec_alloc(numVectors: number, ...lengths: number[]): Iovec | false {
  const fn = 'socket_iovec_alloc';
  if (!Number.isInteger(numVectors) || numVectors < 0 || numVectors > IOV_MAX) {
    return fail(22, `${fn}(): ${strerror(22)} (num_vectors ${numVectors}; at most ${IOV_MAX})`);
  }
  if (lengths.length !== numVectors) return fail(22, `${fn}(): ${numVectors} vectors need ${numVectors} lengths, ${lengths.length} given`);
  const bad = lengths.find((n) => !validLength(n));
  if (bad !== undefined) return fail(22, `${fn}(): ${strerror(22)} (vector length ${bad}; 0 to ${IOVEC_MAX_LEN} bytes)`);
  return new Iovec(lengths);
}

function live(fn: string, iovec: Iovec): boolean {
  if (iovec.freed) return fail(9, `${fn}(): supplied resource is not a valid IO vector table resource (freed)`);
  return true;
}

/** socket_iovec_add(iovec, iov_len): appends a zeroed vector of iov_len bytes. */
export function socket_iovec_add(iovec: Iovec, iovLen: number): boolean {
  const fn = 'socket_iovec_add';
  assertIovec(fn, iovec, 1);
  if (!live(fn, iovec)) return false;
  if (!validLength(iovLen)) return fail(22, `${fn}(): ${strerror(22)} (vector length ${iovLen}; 0 to ${IOVEC_MAX_LEN} bytes)`);
  if (iovec.vectors.length >= IOV_MAX) return fail(22, `${fn}(): ${strerror(22)} (at most ${IOV_MAX} vectors)`);
  iovec.vectors.push(Buffer.alloc(iovLen));
  return true;
}

function position(fn: string, iovec: Iovec, pos: number, what: string): boolean {
  if (!Number.isInteger(pos) || pos < 0 || pos >= iovec.vectors.length) {
    return fail(22, `${fn}(): can't ${what} a vector position past the amount of vectors set in the array (${pos} of ${iovec.vectors.length})`);
  }
  return true;
}

/**
 * socket_iovec_set(iovec, position, new_val): the vector now holds new_val. Its length becomes
 * new_val's byte length (PHP 4 copied into the old buffer and could write past it; a vector
 * that must keep its length for readv is refilled by readv, not by set).
 */
export function socket_iovec_set(iovec: Iovec, pos: number, newVal: string | Uint8Array): boolean {
  const fn = 'socket_iovec_set';
  assertIovec(fn, iovec, 1);
  if (!live(fn, iovec) || !position(fn, iovec, pos, 'set')) return false;
  const bytes = typeof newVal === 'string' ? Buffer.from(newVal, iovec.encoding) : Buffer.from(newVal);
  if (bytes.length > IOVEC_MAX_LEN) return fail(22, `${fn}(): ${strerror(22)} (more than ${IOVEC_MAX_LEN} bytes)`);
  iovec.vectors[pos] = bytes;
  return true;
}

/** socket_iovec_fetch(iovec, position): the vector's bytes (all iov_len of them) as a string; '' past the end. */
export function socket_iovec_fetch(iovec: Iovec, pos: number): string {
  const fn = 'socket_iovec_fetch';
  assertIovec(fn, iovec, 1);
  if (!live(fn, iovec) || !position(fn, iovec, pos, 'access')) return '';
  return iovec.vectors[pos]!.toString(iovec.encoding);
}

/** socket_iovec_delete(iovec, position): removes one vector; the later ones move down. */
export function socket_iovec_delete(iovec: Iovec, pos: number): boolean {
  const fn = 'socket_iovec_delete';
  assertIovec(fn, iovec, 1);
  if (!live(fn, iovec) || !position(fn, iovec, pos, 'delete')) return false;
  iovec.vectors.splice(pos, 1);
  return true;
}

/** socket_iovec_free(iovec): releases the vectors; the resource is no longer valid. */
export function socket_iovec_free(iovec: Iovec): boolean {
  const fn = 'socket_iovec_free';
  assertIovec(fn, iovec, 1);
  if (!live(fn, iovec)) return false;
  iovec.freed = true;
  iovec.vectors = [];
  return true;
}

/**
 * socket_writev(socket, iovec): sends every vector, in order, as one write (await it); true,
 * or false with the errno (32 after shutdown, 11 when non-blocking and the send buffer is full).
 */
export async function socket_writev(socket: Socket | false, iovec: Iovec): Promise<boolean> {
  const fn = 'socket_writev';
  assertSocket(fn, socket);
  assertIovec(fn, iovec, 2);
  if (!live(fn, iovec)) return socket.fail(9, globalError.detail);
  const n = await socket_write_gathered(socket, fn, iovec.vectors);
  return n !== false;
}

/**
 * socket_readv(socket, iovec): fills the vectors in order (await it). Blocking: waits until all
 * are full; at end of stream, true if some bytes came (the vectors not reached keep their
 * bytes), false with no error recorded (errno 0) when none did. Non-blocking: what is there
 * (false, 11, when nothing is). Each vector then holds its bytes; socket_iovec_fetch() reads them.
 */
export async function socket_readv(socket: Socket | false, iovec: Iovec): Promise<boolean> {
  const fn = 'socket_readv';
  assertSocket(fn, socket);
  assertIovec(fn, iovec, 2);
  if (!live(fn, iovec)) return socket.fail(9, globalError.detail);
  iovec.encoding = socket.encoding;
  const n = await socket_read_vectors(socket, fn, iovec.vectors);
  return n !== false && n > 0;
}
