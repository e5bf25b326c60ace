/** Argument checks and host-name resolution shared by the socket functions. */
import { lookup } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { AF_INET6, AF_UNIX } from './constants.js';
import { HOST_NOT_FOUND, globalError, strerror } from './errors.js';
import { Socket } from './socket.js';

/**
 * PHP's socket functions take what socket_create() and socket_accept() return, `Socket|false`,
 * and the types here do too, so that a port reads line by line; given `false` (the call that
 * should have made the socket failed), PHP 8 throws a TypeError, and so does this port: PHP's
 * message, and what that failed call recorded, so the first failure is the one reported.
 */
export function assertSocket(fn: string, socket: unknown, arg = 1): asserts socket is Socket {
  if (!(socket instanceof Socket)) {
    const given = socket === null ? 'null' : typeof socket === 'boolean' ? 'bool' : typeof socket;
    throw new TypeError(`${fn}(): Argument #${arg} ($socket) must be of type Socket, ${given} given${whyFalse(socket)}`);
  }
}

/** For `false`: the last socket error, which is most likely why there is no socket. */
export function whyFalse(value: unknown): string {
  if (value !== false) return '';
  return globalError.errno !== 0 ? ` (false: the call that should have made it failed: ${globalError.detail || strerror(globalError.errno)})` : ' (false: the call that should have made it failed)';
}

/**
 * The IP literal to use for `host` on a socket of this domain, or false (with the error recorded
 * as PHP records it: a failed lookup is -10001, "Unknown host").
 */
export async function resolveFor(socket: Socket, fn: string, host: string): Promise<string | false> {
  if (socket.domain === AF_UNIX) return host;
  const v6 = socket.domain === AF_INET6;
  if (v6 ? isIPv6(host) : isIPv4(host)) return host;
  if (v6 && isIPv4(host)) return '::ffff:' + host; // PHP asks for v4-mapped addresses on AF_INET6
  if (!v6 && isIPv6(host)) {
    return socket.fail(HOST_NOT_FOUND, `${fn}(): Host lookup failed [${HOST_NOT_FOUND}]: "${host}" is an IPv6 address on an AF_INET socket`);
  }
  try {
    const r = await lookup(host, { family: v6 ? 6 : 4 });
    return r.address;
  } catch {
    return socket.fail(HOST_NOT_FOUND, `${fn}(): Host lookup failed [${HOST_NOT_FOUND}]: Unknown host "${host}"`);
  }
}

/** A seconds/microseconds pair in milliseconds (at least 1 ms when not zero). */
export function toMillis(sec: number, usec: number): number {
  const ms = sec * 1000 + usec / 1000;
  return ms > 0 ? Math.max(1, Math.ceil(ms)) : 0;
}
