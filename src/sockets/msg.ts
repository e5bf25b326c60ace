/**
 * socket_sendmsg / socket_recvmsg with PHP's message array shape, and socket_cmsg_space.
 *
 *   await socket_sendmsg(unix, { iov: ['take this'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [conn] }] }, 0);
 *   const msg: MessageHeader = { name: {}, buffer_size: 2000, controllen: socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 1) };
 *   const n = await socket_recvmsg(unix, msg, 0);   // msg.iov[0], msg.control[0].data[0] is a Socket
 *
 * Control messages need the sockets addon (native/sockets.c): Node reads its own sockets with
 * read(), which drops them. Over AF_UNIX: SCM_RIGHTS (sockets, fsockopen streams or descriptor
 * numbers) and SCM_CREDENTIALS ({pid, uid, gid}; the receiver sets SO_PASSCRED). On IP sockets
 * the messages carry data only (as Linux, a control message there is 22).
 */
import { Buffer } from 'node:buffer';
import { AF_UNIX, MSG_CTRUNC, MSG_DONTWAIT, MSG_OOB, MSG_PEEK, MSG_TRUNC, SCM_CREDENTIALS, SCM_RIGHTS, SOL_SOCKET } from './constants.js';
import { strerror } from './errors.js';
import { SocketStream } from './fsockopen.js';
import {
  atEnd, decode, deadlineOf, encode, nextDatagram, notConnected, send, takeError, udpSend, unixDgramSend, waitForData,
} from './io.js';
import { FdStream } from './native.js';
import { assertSocket, resolveFor } from './resolve.js';
import { Socket, closeFds } from './socket.js';
import { adoptFd, fdOf, needAddon } from './unix.js';

export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

/** One control message (PHP: ['level' => ..., 'type' => ..., 'data' => ...]). */
export interface ControlMessage {
  level: number;
  type: number;
  /** SCM_RIGHTS: sockets, streams or descriptor numbers (received: Socket, or the number of what is not a socket). SCM_CREDENTIALS: the credentials. */
  data: Array<Socket | SocketStream | number> | Credentials;
}

/** The sender or destination (PHP's 'name'): a Unix path, or an IP address and port. */
export interface MessageName {
  family?: number;
  path?: string;
  addr?: string;
  port?: number;
}

/** PHP's message array: given to socket_sendmsg, filled by socket_recvmsg. */
export interface MessageHeader {
  name?: MessageName;
  iov?: Array<string | Uint8Array>;
  control?: ControlMessage[];
  flags?: number;
  /** socket_recvmsg: how many bytes to receive at most (required, as in PHP). */
  buffer_size?: number;
  /** socket_recvmsg: room for control messages, from socket_cmsg_space() (0 or absent: as much as needed). */
  controllen?: number;
}

const align = (n: number): number => (n + 7) & ~7;
const CMSG_HDR = 16;

/** socket_cmsg_space(level, type, n): bytes a control message of n items needs (CMSG_SPACE). */
export function socket_cmsg_space(level: number, type: number, n = 0): number | null {
  if (level !== SOL_SOCKET) return null;
  if (type === SCM_RIGHTS) return CMSG_HDR + align(4 * Math.max(0, n));
  if (type === SCM_CREDENTIALS) return CMSG_HDR + align(12);
  return null;
}

function isCreds(v: unknown): v is Credentials {
  const c = v as Credentials;
  return typeof c === 'object' && c !== null && typeof c.pid === 'number' && typeof c.uid === 'number' && typeof c.gid === 'number';
}

/** Descriptors and credentials of a message's control part, or an errno. */
function controlOf(socket: Socket, fn: string, control: ControlMessage[]): { fds: number[]; creds: boolean; passed: Socket[] } | false {
  const fds: number[] = [];
  const passed: Socket[] = [];
  let creds = false;
  for (const c of control) {
    if (c.level !== SOL_SOCKET || (c.type !== SCM_RIGHTS && c.type !== SCM_CREDENTIALS)) {
      return socket.fail(22, `${fn}(): ${strerror(22)} (control message level ${c.level}, type ${c.type}: only SOL_SOCKET SCM_RIGHTS and SCM_CREDENTIALS)`);
    }
    if (c.type === SCM_CREDENTIALS) {
      if (!isCreds(c.data)) return socket.fail(22, `${fn}(): SCM_CREDENTIALS data must have keys "pid", "uid" and "gid"`);
      // Linux lets an unprivileged process send only its own credentials.
      if (c.data.pid !== process.pid || c.data.uid !== process.getuid!() || c.data.gid !== process.getgid!()) {
        return socket.fail(1, `${fn}(): unable to send message [1]: ${strerror(1)} (SCM_CREDENTIALS other than this process's)`);
      }
      creds = true;
      continue;
    }
    if (!Array.isArray(c.data)) return socket.fail(22, `${fn}(): SCM_RIGHTS data must be an array of sockets, streams or descriptors`);
    for (const item of c.data) {
      const s = item instanceof SocketStream ? item.socket : item;
      const fd = typeof s === 'number' ? s : s instanceof Socket ? fdOf(s) : -1;
      if (!(Number.isInteger(fd) && fd >= 0)) return socket.fail(9, `${fn}(): unable to send message [9]: ${strerror(9)} (SCM_RIGHTS: not an open socket or descriptor)`);
      if (s instanceof Socket) passed.push(s);
      fds.push(fd);
    }
  }
  if (fds.length > 64) return socket.fail(22, `${fn}(): ${strerror(22)} (at most 64 descriptors per message)`);
  return { fds, creds, passed };
}

/**
 * socket_sendmsg(socket, message, flags): sends message.iov as one message, with its control
 * messages (await it); the byte count, or false. A socket passed with SCM_RIGHTS stops reading
 * here (what it sends next is the receiver's), and socket_close() on it then only closes this
 * process's descriptor, as close(2) does, without ending the connection for the receiver.
 */
export async function socket_sendmsg(socket: Socket | false, message: MessageHeader, flags = 0): Promise<number | false> {
  const fn = 'socket_sendmsg';
  assertSocket(fn, socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (flags & MSG_OOB) return socket.fail(95, `${fn}(): unable to send message [95]: ${strerror(95)}`);
  const iov = message.iov ?? [];
  if (!Array.isArray(iov)) return socket.fail(22, `${fn}(): "iov" must be an array`);
  const bytes = Buffer.concat(iov.map((v) => encode(socket, v)));
  const control = message.control ?? [];
  const nonblock = socket.nonblock || (flags & MSG_DONTWAIT) !== 0;
  if (control.length > 0) {
    if (socket.domain !== AF_UNIX) return socket.fail(22, `${fn}(): unable to send message [22]: ${strerror(22)} (control messages travel over AF_UNIX sockets only)`);
    if (!needAddon(socket, fn)) return false;
  }
  const ctl = controlOf(socket, fn, control);
  if (ctl === false) return false;
  let result: number | false;
  if (socket.fd >= 0 && socket.isDgram) {
    const path = message.name?.path ?? '';
    if (path === '' && !socket.peer) return socket.fail(89, `${fn}(): unable to send message [89]: ${strerror(89)}`);
    result = unixDgramSend(socket, fn, bytes, path, ctl.fds, ctl.creds);
  } else if (socket.stream instanceof FdStream) {
    if (bytes.length === 0) return socket.fail(22, `${fn}(): ${strerror(22)} (a stream message needs at least one byte to carry its control messages)`);
    if (socket.writeShut) return socket.fail(32, `${fn}(): unable to send message [32]: ${strerror(32)}`);
    const errno = socket.stream.sendmsg(bytes, ctl.fds, ctl.creds);
    result = errno === 0 ? bytes.length : socket.fail(errno, `${fn}(): unable to send message [${errno}]: ${strerror(errno)}`);
  } else if (ctl.fds.length > 0 || ctl.creds) {
    return socket.fail(38, `${fn}(): [38]: ${strerror(38)} (this socket has no descriptor of the sockets addon)`);
  } else if (socket.isDgram && message.name?.addr !== undefined && !socket.peer) {
    const host = await resolveFor(socket, fn, message.name.addr);
    if (host === false) return false;
    result = await udpSend(socket, fn, bytes, message.name.port ?? 0, host);
  } else {
    result = await send(socket, fn, bytes, nonblock);
  }
  if (result !== false) {
    for (const p of ctl.passed) {
      p.passedOn = true;
      p.stream?.pause();
    }
  }
  return result;
}

function credsOf(c: [number, number, number]): Credentials {
  return { pid: c[0], uid: c[1], gid: c[2] };
}

/** Control messages as the program sees them, within `room` bytes (MSG_CTRUNC when they do not fit). */
function deliver(fds: number[], creds: [number, number, number] | null, room: number): { control: ControlMessage[]; truncated: boolean } {
  const control: ControlMessage[] = [];
  let truncated = false;
  let left = room > 0 ? room : Infinity;
  if (fds.length > 0) {
    const fit = Math.max(0, Math.min(fds.length, Math.floor((left - CMSG_HDR) / 4)));
    if (fit < fds.length) {
      truncated = true;
      closeFds(fds.slice(fit)); // what does not fit is closed, as the kernel does
    }
    if (fit > 0) {
      control.push({ level: SOL_SOCKET, type: SCM_RIGHTS, data: fds.slice(0, fit).map(adoptFd) });
      left -= socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, fit)!;
    }
  }
  if (creds) {
    if (left >= CMSG_HDR + 12) control.push({ level: SOL_SOCKET, type: SCM_CREDENTIALS, data: credsOf(creds) });
    else truncated = true;
  }
  return { control, truncated };
}

/**
 * socket_recvmsg(socket, message, flags): receives one message into message.iov[0] (at most
 * message.buffer_size bytes), its control messages into message.control, the sender into
 * message.name and msg_flags into message.flags (await it); the byte count (0 at end of
 * stream), or false. On a stream, a message never runs past the bytes its control messages
 * came with, as the kernel keeps them apart. Received descriptors become sockets (see README).
 */
export async function socket_recvmsg(socket: Socket | false, message: MessageHeader, flags = 0): Promise<number | false> {
  const fn = 'socket_recvmsg';
  assertSocket(fn, socket);
  const size = message.buffer_size;
  if (typeof size !== 'number' || !(size >= 1)) return socket.fail(22, `${fn}(): the message must have a "buffer_size" of at least 1`);
  if (flags & MSG_OOB) return socket.fail(22, `${fn}(): unable to receive message [22]: ${strerror(22)}`);
  const nonblock = socket.nonblock || (flags & MSG_DONTWAIT) !== 0;
  const peek = (flags & MSG_PEEK) !== 0;
  const room = message.controllen ?? 0;
  if (socket.isDgram) {
    const d = await nextDatagram(socket, fn, nonblock, peek);
    if (d === false) return false;
    const bytes = d.data.subarray(0, size);
    const { control, truncated } = peek ? { control: [], truncated: false } : deliver(d.fds ?? [], d.creds ?? null, room);
    message.iov = [decode(socket, bytes)];
    message.control = control;
    message.flags = (d.data.length > size ? MSG_TRUNC : 0) | (truncated ? MSG_CTRUNC : 0);
    message.name = socket.domain === AF_UNIX ? { family: AF_UNIX, path: d.address } : { family: socket.domain, addr: d.address, port: d.port };
    return bytes.length;
  }
  const deadline = deadlineOf(socket);
  for (;;) {
    if (socket.state === 'closed') return socket.fail(9);
    if (socket.state !== 'connected') return notConnected(socket, fn);
    const have = socket.rx.length;
    if (have > 0) {
      const start = socket.rx.consumedTotal;
      const anc = socket.ancillary;
      // Control messages whose bytes plain reads already took are gone, as with read(2).
      while (anc.length > 0 && anc[0]!.at < start) closeFds(anc.shift()!.fds);
      const mine = anc.length > 0 && anc[0]!.at === start ? anc[0]! : undefined;
      const next = anc.find((x) => x.at > start);
      const n = Math.min(size, have, next ? next.at - start : Infinity);
      const bytes = peek ? socket.rx.peek(n) : socket.rx.take(n);
      let control: ControlMessage[] = [];
      let truncated = false;
      if (mine && !peek) {
        anc.shift();
        ({ control, truncated } = deliver(mine.fds, mine.creds, room));
      }
      if (!peek) socket.consumed();
      message.iov = [decode(socket, bytes)];
      message.control = control;
      message.flags = truncated ? MSG_CTRUNC : 0;
      if (message.name) message.name = socket.domain === AF_UNIX ? { family: AF_UNIX, path: '' } : { family: socket.domain, addr: socket.stream?.remoteAddress ?? '', port: socket.stream?.remotePort ?? 0 };
      return n;
    }
    if (socket.pendingErrno) return takeError(socket, fn);
    if (atEnd(socket)) {
      message.iov = [''];
      message.control = [];
      message.flags = 0;
      return 0;
    }
    if (!(await waitForData(socket, fn, nonblock, deadline))) return false;
  }
}
