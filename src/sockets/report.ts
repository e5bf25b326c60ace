/** socket_last_error, socket_strerror, socket_clear_error, and what this port adds to them. */
import { globalError, strerror } from './errors.js';
import { assertSocket } from './resolve.js';
import type { Socket, SocketEncoding } from './socket.js';

/** The errno of the last failure of `socket`, or of any socket function when none is given. */
export function socket_last_error(socket?: Socket | false | null): number {
  if (socket === undefined || socket === null) return globalError.errno;
  assertSocket('socket_last_error', socket);
  return socket.error.errno;
}

/** glibc's message for an errno ("Connection refused" for 111). */
export function socket_strerror(errno: number): string {
  return strerror(errno);
}

/** Forgets the last error of `socket`, or the global one. */
export function socket_clear_error(socket?: Socket | false | null): void {
  if (socket === undefined || socket === null) {
    globalError.errno = 0;
    globalError.detail = '';
    return;
  }
  assertSocket('socket_clear_error', socket);
  socket.error.errno = 0;
  socket.error.detail = '';
}

/**
 * Not in PHP: the sentence PHP would have printed as a warning for the last failure, e.g.
 * `socket_connect(): unable to connect [111]: Connection refused (127.0.0.1:9)` or why Node.js
 * cannot offer a socket type. '' when there was none.
 */
export function socket_last_error_detail(socket?: Socket | false | null): string {
  if (socket === undefined || socket === null) return globalError.detail;
  assertSocket('socket_last_error_detail', socket);
  return socket.error.detail;
}

/**
 * Not in PHP: how read functions turn bytes into strings on this socket and how strings are
 * written. 'utf8' (the default) suits text and never cuts a character between reads; 'latin1'
 * maps every byte to one char (binary-safe; strings written must hold chars <= 0xFF).
 * Sockets accepted from a listening socket inherit its encoding.
 */
export function socket_set_encoding(socket: Socket | false, encoding: SocketEncoding): boolean {
  assertSocket('socket_set_encoding', socket);
  if (encoding !== 'utf8' && encoding !== 'latin1') return socket.fail(22, `socket_set_encoding(): unknown encoding "${String(encoding)}"`);
  socket.encoding = encoding;
  return true;
}
