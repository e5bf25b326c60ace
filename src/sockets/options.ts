/**
 * socket_set_option / socket_get_option.
 *
 * What each option does here (Node has no setsockopt()):
 *   SO_REUSEADDR   UDP: passed to the kernel at bind. TCP: Node always sets it on listening
 *                  sockets, so it is recorded and reported but changes nothing.
 *   SO_KEEPALIVE, TCP_NODELAY   applied to the connection (setKeepAlive / setNoDelay).
 *   SO_RCVTIMEO, SO_SNDTIMEO    {sec, usec}; reads/accept (writes/connect) that wait longer fail
 *                  with 11 EAGAIN (115 for connect), as on Linux.
 *   SO_BROADCAST   UDP: setBroadcast (sending to a broadcast address without it fails with 13).
 *   SO_RCVBUF, SO_SNDBUF   UDP: the kernel buffers (get reports what the kernel says, which Linux
 *                  doubles). TCP: the bounds of switchboard's own receive buffer (above it the
 *                  socket stops reading from the kernel) and of queued writes (above it writes wait).
 *   SO_LINGER      {l_onoff, l_linger}; only {1, 0} has an effect: socket_close() resets (RST).
 *   SO_TYPE, SO_ERROR   read only; SO_ERROR reports (and clears) the error of a non-blocking connect.
 */
import {
  SOL_SOCKET, SOL_TCP, SO_BROADCAST, SO_ERROR, SO_KEEPALIVE, SO_LINGER, SO_RCVBUF, SO_RCVTIMEO, SO_REUSEADDR,
  SO_SNDBUF, SO_SNDTIMEO, SO_TYPE, TCP_NODELAY, SO_PASSCRED, AF_UNIX, IPPROTO_IP, IPPROTO_IPV6, SO_REUSEPORT,
} from './constants.js';
import { intValue, sockAddon } from './native.js';
import { fdOf } from './unix.js';
import { getIpOption, setIpOption, type MulticastRequest } from './multicast.js';
import { strerror } from './errors.js';
import { applyUdpOptions } from './lifecycle.js';
import { assertSocket, toMillis } from './resolve.js';
import type { Socket } from './socket.js';

export interface TimevalOption {
  sec: number;
  usec: number;
}

export interface LingerOption {
  l_onoff: number;
  l_linger: number;
}

export type SocketOptionValue = number | boolean | string | TimevalOption | LingerOption | MulticastRequest;

function noOption(socket: Socket, fn: string, level: number, name: number): false {
  return socket.fail(92, `${fn}(): Unable to ${fn === 'socket_set_option' ? 'set' : 'retrieve'} socket option [92]: ${strerror(92)} (level ${level}, option ${name})`);
}

function isTimeval(v: unknown): v is TimevalOption {
  return typeof v === 'object' && v !== null && typeof (v as TimevalOption).sec === 'number' && typeof (v as TimevalOption).usec === 'number';
}

function isLinger(v: unknown): v is LingerOption {
  return typeof v === 'object' && v !== null && typeof (v as LingerOption).l_onoff === 'number' && typeof (v as LingerOption).l_linger === 'number';
}

export function socket_set_option(socket: Socket | false, level: number, option: number, value: SocketOptionValue): boolean {
  assertSocket('socket_set_option', socket);
  const fn = 'socket_set_option';
  if (socket.state === 'closed') return socket.fail(9);
  const o = socket.options;
  const flag = typeof value === 'boolean' ? value : typeof value === 'number' ? value !== 0 : null;
  const num = typeof value === 'number' ? value : typeof value === 'boolean' ? Number(value) : null;
  if (level === IPPROTO_IP || level === IPPROTO_IPV6) {
    if (isTimeval(value) || isLinger(value)) return socket.fail(22);
    return setIpOption(socket, fn, level, option, value);
  }
  if (level === SOL_TCP) {
    if (option !== TCP_NODELAY || socket.isDgram) return noOption(socket, fn, level, option);
    if (flag === null) return socket.fail(22);
    o.nodelay = flag;
    socket.stream?.setNoDelay(flag);
    return true;
  }
  if (level !== SOL_SOCKET) return noOption(socket, fn, level, option);
  switch (option) {
    case SO_REUSEADDR:
      if (flag === null) return socket.fail(22);
      o.reuseaddr = flag;
      return true;
    case SO_KEEPALIVE:
      if (flag === null) return socket.fail(22);
      o.keepalive = flag;
      socket.stream?.setKeepAlive(flag);
      return true;
    case SO_BROADCAST:
      if (flag === null) return socket.fail(22);
      o.broadcast = flag;
      applyUdpOptions(socket);
      return true;
    case SO_RCVBUF:
    case SO_SNDBUF: {
      if (num === null || num <= 0) return socket.fail(22);
      const size = Math.max(1024, Math.floor(num));
      if (option === SO_RCVBUF) {
        o.rcvbuf = size;
        socket.rcvbufSet = true;
        socket.consumed();
      } else {
        o.sndbuf = size;
        socket.sndbufSet = true;
      }
      applyUdpOptions(socket);
      return true;
    }
    case SO_RCVTIMEO:
    case SO_SNDTIMEO:
      if (!isTimeval(value)) return socket.fail(22, `${fn}(): Argument #4 ($value) must have keys "sec" and "usec"`);
      if (value.sec < 0 || value.usec < 0) return socket.fail(33, `${fn}(): Unable to set socket option [33]: ${strerror(33)}`);
      if (option === SO_RCVTIMEO) o.rcvtimeo = toMillis(value.sec, value.usec);
      else o.sndtimeo = toMillis(value.sec, value.usec);
      return true;
    case SO_LINGER:
      if (!isLinger(value)) return socket.fail(22, `${fn}(): Argument #4 ($value) must have keys "l_onoff" and "l_linger"`);
      o.linger = { l_onoff: value.l_onoff, l_linger: value.l_linger };
      return true;
    case SO_REUSEPORT:
      if (flag === null) return socket.fail(22);
      if (socket.domain === AF_UNIX) return noOption(socket, fn, level, option);
      if (!sockAddon()) return socket.fail(92, `${fn}(): Unable to set socket option [92]: ${strerror(92)} (Node.js has no SO_REUSEPORT; the sockets addon sets it, and it is not built)`);
      socket.ip.reuseport = flag; // used at bind, where Linux takes it
      return true;
    case SO_PASSCRED: {
      if (flag === null) return socket.fail(22);
      const a = sockAddon();
      const fd = fdOf(socket);
      if (socket.domain !== AF_UNIX || !a || fd < 0) return noOption(socket, fn, level, option);
      const r = a.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, intValue(flag ? 1 : 0));
      if (r < 0) return socket.fail(-r, `${fn}(): Unable to set socket option [${-r}]: ${strerror(-r)}`);
      socket.passcred = flag;
      return true;
    }
    case SO_TYPE:
    case SO_ERROR:
      return noOption(socket, fn, level, option);
    default:
      return noOption(socket, fn, level, option);
  }
}

function timeval(ms: number): TimevalOption {
  return { sec: Math.floor(ms / 1000), usec: (ms % 1000) * 1000 };
}

export function socket_get_option(socket: Socket | false, level: number, option: number): number | TimevalOption | LingerOption | false {
  assertSocket('socket_get_option', socket);
  const fn = 'socket_get_option';
  if (socket.state === 'closed') return socket.fail(9);
  const o = socket.options;
  if (level === IPPROTO_IP || level === IPPROTO_IPV6) return getIpOption(socket, fn, level, option);
  if (level === SOL_TCP) {
    if (option !== TCP_NODELAY || socket.isDgram) return noOption(socket, fn, level, option);
    return o.nodelay ? 1 : 0;
  }
  if (level !== SOL_SOCKET) return noOption(socket, fn, level, option);
  switch (option) {
    case SO_REUSEADDR: return o.reuseaddr ? 1 : 0;
    case SO_KEEPALIVE: return o.keepalive ? 1 : 0;
    case SO_BROADCAST: return o.broadcast ? 1 : 0;
    case SO_RCVBUF:
    case SO_SNDBUF: {
      const u = socket.udp;
      if (u) {
        try {
          return option === SO_RCVBUF ? u.getRecvBufferSize() : u.getSendBufferSize();
        } catch {
          // not bound yet: report the value kept for it
        }
      }
      return option === SO_RCVBUF ? o.rcvbuf : o.sndbuf;
    }
    case SO_RCVTIMEO: return timeval(o.rcvtimeo);
    case SO_SNDTIMEO: return timeval(o.sndtimeo);
    case SO_LINGER: return { ...o.linger };
    case SO_TYPE: return socket.type;
    case SO_REUSEPORT:
      if (socket.domain === AF_UNIX) return noOption(socket, fn, level, option);
      return socket.ip.reuseport ? 1 : 0;
    case SO_PASSCRED:
      if (socket.domain !== AF_UNIX || fdOf(socket) < 0) return noOption(socket, fn, level, option);
      return socket.passcred ? 1 : 0;
    case SO_ERROR: {
      const e = socket.pendingErrno;
      socket.pendingErrno = 0;
      return e;
    }
    default:
      return noOption(socket, fn, level, option);
  }
}

/** PHP's aliases. */
export const socket_setopt = socket_set_option;
export const socket_getopt = socket_get_option;
