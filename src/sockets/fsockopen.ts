/**
 * fsockopen() and the stream functions used with it: fwrite/fputs, fgets, fread, feof, fclose,
 * stream_set_timeout, stream_set_blocking, stream_get_meta_data.
 *
 *   const fp = await fsockopen('udp://127.0.0.1', 13, err);       // err: { errno, errstr } filled on failure
 *   const fp = await fsockopen('ssl://example.org', 443, err, 30, { ssl: { cafile: 'ca.pem' } });
 *
 * Prefixes: tcp:// (default), udp://, ssl:// and tls:// (TLS; the peer is verified as PHP does
 * by default; the context's `ssl` options verify_peer, verify_peer_name, allow_self_signed,
 * cafile and peer_name are honoured), unix:// (port ignored). The timeout (seconds, default 60 as
 * PHP's default_socket_timeout) bounds the connect; stream_set_timeout() bounds each read, and a
 * read that times out returns ''/false with `timed_out` set, after which feof() is true as in PHP.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_STREAM } from './constants.js';
import { strerror } from './errors.js';
import { connectStream, ensureUdp, socket_close } from './lifecycle.js';
import { encode } from './io.js';
import { utf8Boundary } from './buffer.js';
import { toMillis } from './resolve.js';
import { Socket, waitUntil } from './socket.js';

/** PHP's &$errno and &$errstr. */
export interface FsockopenError {
  errno: number;
  errstr: string;
}

export interface StreamContext {
  ssl?: {
    verify_peer?: boolean;
    verify_peer_name?: boolean;
    allow_self_signed?: boolean;
    cafile?: string;
    peer_name?: string;
  };
}

/** What fsockopen() returns: a stream over a socket resource. */
export class SocketStream {
  timeoutMs = 60_000;
  timedOut = false;
  blocking = true;
  closed = false;
  constructor(readonly socket: Socket, readonly transport: 'tcp' | 'udp' | 'ssl' | 'unix') {}
}

/**
 * The stream functions take what fsockopen() returns, `SocketStream|false`, as PHP's do; given
 * anything else (`false` from a failed fsockopen), PHP 8 throws a TypeError, and so do these.
 */
function assertStream(fn: string, fp: unknown): asserts fp is SocketStream {
  if (!(fp instanceof SocketStream)) {
    const given = fp === null ? 'null' : typeof fp === 'boolean' ? 'bool' : typeof fp;
    throw new TypeError(`${fn}(): Argument #1 ($stream) must be of type resource, ${given} given${fp === false ? ' (false: fsockopen() failed; its error argument says why)' : ''}`);
  }
}

export interface StreamMetaData {
  timed_out: boolean;
  blocked: boolean;
  eof: boolean;
  stream_type: string;
  mode: string;
  unread_bytes: number;
  seekable: boolean;
}

function parseTarget(hostname: string): { scheme: string; host: string } {
  const m = /^([a-z]+):\/\/(.*)$/i.exec(hostname);
  const scheme = m ? m[1]!.toLowerCase() : 'tcp';
  let host = m ? m[2]! : hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { scheme, host };
}

/** fsockopen(hostname, port, error, timeout, context): a stream (await it), or false with error filled. */
export async function fsockopen(
  hostname: string,
  port = -1,
  error?: FsockopenError,
  timeout?: number,
  context?: StreamContext,
): Promise<SocketStream | false> {
  const { scheme, host } = parseTarget(hostname);
  const report = (errno: number, errstr: string): false => {
    if (error) {
      error.errno = errno;
      error.errstr = errstr;
    }
    return false;
  };
  if (!['tcp', 'udp', 'ssl', 'tls', 'unix'].includes(scheme)) {
    return report(0, `Unable to find the socket transport "${scheme}" - did you forget to enable it when you configured PHP?`);
  }
  const connectMs = timeout === undefined || timeout < 0 ? 60_000 : toMillis(Math.floor(timeout), (timeout % 1) * 1e6) || 60_000;

  if (scheme === 'unix') {
    const sock = new Socket(AF_UNIX, SOCK_STREAM, 0);
    const errno = await withTimeout(connectStream(sock, () => net.connect({ path: host, allowHalfOpen: true })), connectMs);
    if (errno !== 0) return giveUp(sock, report, errno);
    return new SocketStream(sock, 'unix');
  }

  let address = host;
  if (isIP(host) === 0) {
    try {
      address = (await lookup(host)).address;
    } catch {
      return report(0, `php_network_getaddresses: getaddrinfo for ${host} failed: Name or service not known`);
    }
  }
  const domain = isIP(address) === 6 ? AF_INET6 : AF_INET;
  if (!(port >= 0 && port <= 65535)) return report(0, 'Failed to parse address "' + hostname + '"');

  if (scheme === 'udp') {
    const sock = new Socket(domain, SOCK_DGRAM, 0);
    const u = ensureUdp(sock);
    const err = await new Promise<number>((resolve) => {
      const onError = (): void => resolve(111);
      u.once('error', onError);
      u.connect(port, address, () => {
        u.off('error', onError);
        resolve(0);
      });
    });
    if (err !== 0) {
      socket_close(sock);
      return report(err, strerror(err));
    }
    sock.peer = { address, port };
    sock.state = 'connected';
    return new SocketStream(sock, 'udp');
  }

  const sock = new Socket(domain, SOCK_STREAM, 0);
  if (scheme === 'tcp') {
    const errno = await withTimeout(connectStream(sock, () => net.connect({ host: address, port, allowHalfOpen: true })), connectMs);
    if (errno !== 0) return giveUp(sock, report, errno);
    return new SocketStream(sock, 'tcp');
  }

  const ssl = context?.ssl ?? {};
  const verify = ssl.verify_peer !== false && ssl.allow_self_signed !== true;
  const servername = ssl.peer_name ?? (isIP(host) === 0 ? host : undefined);
  let tlsError = '';
  const options: tls.ConnectionOptions = { host: address, port, rejectUnauthorized: verify };
  if (servername !== undefined) options.servername = servername;
  if (ssl.cafile) options.ca = readFileSync(ssl.cafile);
  if (ssl.verify_peer_name === false) options.checkServerIdentity = () => undefined;
  const errno = await withTimeout(connectStream(sock, () => tls.connect(options), 'secureConnect', (err) => {
    tlsError = err.message;
  }), connectMs);
  if (errno !== 0) {
    socket_close(sock);
    if (errno === 5 && tlsError) return report(0, `Unable to connect to ${scheme}://${host}:${port} (Failed to enable crypto): ${tlsError}`);
    return report(errno, strerror(errno));
  }
  return new SocketStream(sock, 'ssl');
}

/** A failed or timed-out connect: the resource is closed, so a late connection is dropped. */
function giveUp(sock: Socket, report: (errno: number, errstr: string) => false, errno: number): false {
  socket_close(sock);
  return report(errno, strerror(errno));
}

function withTimeout(p: Promise<number>, ms: number): Promise<number> {
  return Promise.race([p, new Promise<number>((r) => setTimeout(() => r(110), ms).unref())]);
}

/** fwrite(fp, data, length?): bytes written (await it), or false. */
export async function fwrite(fp: SocketStream | false, data: string | Uint8Array, length?: number | null): Promise<number | false> {
  assertStream('fwrite', fp);
  const sock = fp.socket;
  if (fp.closed) return false;
  const bytes = encode(sock, data, length);
  if (sock.state === 'closed') return false;
  if (fp.transport === 'udp') {
    const u = sock.udp;
    if (!u) return false;
    return new Promise((resolve) => u.send(bytes, (err) => resolve(err ? false : bytes.length)));
  }
  const s = sock.stream;
  if (!s || s.destroyed || s.writableEnded) return false;
  if (bytes.length === 0) return 0;
  if (s.write(bytes)) return bytes.length;
  const ok = await waitUntil([sock], () => sock.writable, fp.timeoutMs);
  return ok ? bytes.length : false;
}

export const fputs = fwrite;

/** Waits for data per the stream's timeout; false when it ran out (timed_out is then set). */
async function waitRead(fp: SocketStream, before: number): Promise<boolean> {
  const sock = fp.socket;
  if (!fp.blocking) return false;
  const ok = await waitUntil([sock], () => sock.rx.length !== before || sock.datagrams.length > 0 || sock.eof || sock.state === 'closed', fp.timeoutMs);
  if (!ok) fp.timedOut = true;
  return ok;
}

/** fread(fp, length): up to `length` bytes that are there (waiting for some); one datagram on udp://. '' at EOF or timeout. */
export async function fread(fp: SocketStream | false, length: number): Promise<string | false> {
  assertStream('fread', fp);
  const sock = fp.socket;
  if (fp.closed || !(length > 0)) return false;
  fp.timedOut = false;
  for (;;) {
    if (sock.state === 'closed') return false; // closed through its socket (socket_import_stream)
    if (fp.transport === 'udp') {
      const d = sock.shiftDatagram();
      if (d) return d.data.subarray(0, length).toString(sock.encoding);
    } else if (sock.rx.length > 0) {
      let k = Math.min(length, sock.rx.length);
      if (sock.encoding === 'utf8' && !sock.eof) k = utf8Boundary(sock.rx.peek(Math.min(k + 3, sock.rx.length)), k) || k;
      const out = sock.rx.take(k).toString(sock.encoding);
      sock.consumed();
      return out;
    } else if (sock.eof) {
      return '';
    }
    if (!(await waitRead(fp, sock.rx.length))) return '';
  }
}

/** fgets(fp, length?): one line with its "\n" (at most length - 1 bytes); false at EOF or timeout. */
export async function fgets(fp: SocketStream | false, length?: number): Promise<string | false> {
  assertStream('fgets', fp);
  const sock = fp.socket;
  if (fp.closed) return false;
  fp.timedOut = false;
  const max = length === undefined ? Infinity : length - 1;
  if (!(max > 0)) return false;
  for (;;) {
    if (sock.state === 'closed') return false; // closed through its socket (socket_import_stream)
    if (fp.transport === 'udp') {
      const d = sock.shiftDatagram();
      if (d) return d.data.subarray(0, Number.isFinite(max) ? max : undefined).toString(sock.encoding);
    } else {
      const limit = Math.min(max, sock.rx.length);
      const i = sock.rx.indexOfAny([10], limit);
      let k = 0;
      if (i >= 0) k = i + 1;
      else if (sock.rx.length >= max) k = sock.encoding === 'utf8' ? utf8Boundary(sock.rx.peek(Math.min(max + 3, sock.rx.length)), max) || max : max;
      else if (sock.eof && sock.rx.length > 0) k = sock.rx.length;
      if (k > 0) {
        const out = sock.rx.take(k).toString(sock.encoding);
        sock.consumed();
        return out;
      }
      if (sock.eof) return false;
      sock.wantBytes = Number.isFinite(max) ? max : sock.options.rcvbuf * 4;
    }
    const ok = await waitRead(fp, sock.rx.length);
    sock.wantBytes = 0;
    if (!ok) return false;
  }
}

/** feof(fp): true at end of stream, after a read timed out, or once closed. */
export function feof(fp: SocketStream | false): boolean {
  assertStream('feof', fp);
  const sock = fp.socket;
  if (fp.closed || fp.timedOut || sock.state === 'closed') return true;
  if (fp.transport === 'udp') return false;
  return sock.eof && sock.rx.length === 0;
}

export function fclose(fp: SocketStream | false): boolean {
  assertStream('fclose', fp);
  if (fp.closed) return false;
  fp.closed = true;
  socket_close(fp.socket);
  return true;
}

/** stream_set_timeout(fp, seconds, microseconds): the limit of each read. */
export function stream_set_timeout(fp: SocketStream | false, seconds: number, microseconds = 0): boolean {
  assertStream('stream_set_timeout', fp);
  if (fp.closed) return false;
  fp.timeoutMs = toMillis(seconds, microseconds) || 1;
  return true;
}

/** stream_set_blocking(fp, false): reads return at once with what is there. */
export function stream_set_blocking(fp: SocketStream | false, enable: boolean): boolean {
  assertStream('stream_set_blocking', fp);
  if (fp.closed) return false;
  fp.blocking = enable;
  return true;
}

export function stream_get_meta_data(fp: SocketStream | false): StreamMetaData {
  assertStream('stream_get_meta_data', fp);
  return {
    timed_out: fp.timedOut,
    blocked: fp.blocking,
    eof: feof(fp),
    stream_type: fp.transport === 'ssl' ? 'tcp_socket/ssl' : fp.transport === 'udp' ? 'udp_socket' : fp.transport === 'unix' ? 'unix_socket' : 'tcp_socket',
    mode: 'r+',
    unread_bytes: fp.socket.rx.length,
    seekable: false,
  };
}
