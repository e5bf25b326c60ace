/**
 * AF_UNIX sockets as descriptors of the sockets addon (native/sockets.c), used whenever it is
 * built: stream and datagram sockets, socketpair(), and the descriptors behind socket_sendmsg()
 * / socket_recvmsg() with SCM_RIGHTS and SCM_CREDENTIALS. Node's own Unix sockets (net.Socket,
 * libuv) read with read(), which drops control messages, so they cannot be used for these.
 *
 * Without the addon, AF_UNIX streams are net.Socket as before and what needs the addon fails
 * with 38 "Function not implemented" (the errno of a system without the call).
 */
import * as net from 'node:net';
import { AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_STREAM } from './constants.js';
import { strerror } from './errors.js';
import { FdStream, FdWatch, READABLE, addonProblem, intValue, sockAddon, type SocketsAddon } from './native.js';
import { Socket, closeFds } from './socket.js';

export const ENOSYS = 38;
const SO_DOMAIN = 39;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
export const SO_PASSCRED_OPT = 16;

/** The addon, or null with the reason recorded on the socket (38). */
export function needAddon(socket: Socket | null, fn: string): SocketsAddon | null {
  const a = sockAddon();
  if (a) return a;
  socket?.fail(ENOSYS, `${fn}(): [${ENOSYS}]: ${strerror(ENOSYS)} (${addonProblem})`);
  return null;
}

/** A new AF_UNIX socket on a descriptor, or the errno socket() gave. */
export function createUnix(type: number): Socket | number {
  const a = sockAddon()!;
  const fd = a.socket(AF_UNIX, type, 0);
  if (fd < 0) return -fd;
  const s = new Socket(AF_UNIX, type, 0);
  s.fd = fd;
  return s;
}

function fdFail(socket: Socket, errno: number, what: string): false {
  return socket.fail(errno, `${what} [${errno}]: ${strerror(errno)}`);
}

/** Reads every datagram waiting on a datagram descriptor into the socket's queue. */
function drainDatagrams(a: SocketsAddon, socket: Socket): void {
  for (let i = 0; i < 64 && socket.fd >= 0; i++) {
    const r = a.recvmsg(socket.fd, 65536, 0);
    if (typeof r === 'number') {
      if (r !== -11) {
        socket.pendingErrno = -r;
        socket.changed();
      }
      return;
    }
    const [data, fds, creds, , path] = r;
    const before = socket.datagrams.length;
    socket.queueDatagram({ data, address: path, port: 0, fds, creds });
    if (socket.datagrams.length === before) closeFds(fds); // dropped: queue full
  }
}

/** Starts receiving on a datagram descriptor (once bound, connected or paired). */
export function watchDatagrams(socket: Socket): void {
  const a = sockAddon();
  if (!a || socket.fdWatch || socket.fd < 0) return;
  socket.fdWatch = new FdWatch(a, socket.fd, () => drainDatagrams(a, socket));
  socket.fdWatch.set(READABLE);
}

export function bindUnix(socket: Socket, fn: string, path: string): boolean {
  const a = sockAddon()!;
  const r = a.bind(socket.fd, path);
  if (r < 0) return fdFail(socket, -r, `${fn}(): Unable to bind address`);
  socket.local = { address: path, port: 0 };
  socket.state = 'bound';
  if (socket.isDgram) watchDatagrams(socket);
  return true;
}

const MIN_PENDING = 128;

export function listenUnix(socket: Socket, backlog: number): boolean {
  const a = sockAddon()!;
  const r = a.listen(socket.fd, Math.max(backlog, MIN_PENDING));
  if (r < 0) return fdFail(socket, -r, 'socket_listen(): unable to listen on socket');
  socket.backlog = Math.max(0, Math.min(backlog, 4096));
  socket.accepting = true;
  socket.state = 'listening';
  const accept = (): void => {
    // Take connections only while the program's queue has room: the rest wait in the kernel's.
    while (socket.fd >= 0 && socket.pending.length < Math.max(socket.backlog + 1, MIN_PENDING)) {
      const c = a.accept(socket.fd);
      if (c < 0) return;
      const st = new FdStream(a, c);
      st.on('error', () => {});
      if (socket.passcred) a.setsockopt(c, 1, SO_PASSCRED_OPT, intValue(1));
      socket.pending.push(st);
      socket.changed();
    }
    socket.fdWatch?.set(0); // full: resumed by acceptedOne()
  };
  socket.fdWatch = new FdWatch(a, socket.fd, accept);
  socket.fdWatch.set(READABLE);
  return true;
}

/** After socket_accept() took one: a full queue has room again. */
export function acceptedOne(socket: Socket): void {
  if (socket.fd >= 0 && socket.state === 'listening') socket.fdWatch?.set(READABLE);
}

/** Hands a connected stream descriptor to an FdStream owned by the resource. */
function attachFd(a: SocketsAddon, socket: Socket): void {
  const fd = socket.fd;
  socket.fd = -1;
  socket.attach(new FdStream(a, fd));
}

export async function connectUnix(socket: Socket, fn: string, path: string): Promise<boolean> {
  const a = sockAddon()!;
  if (socket.state === 'connected' && !socket.isDgram) return fdFail(socket, 106, `${fn}(): unable to connect`);
  const r = a.connect(socket.fd, path);
  if (r < 0) return socket.fail(-r, `${fn}(): unable to connect [${-r}]: ${strerror(-r)} (${path})`);
  if (socket.isDgram) {
    socket.peer = { address: path, port: 0 };
    socket.state = 'connected';
    watchDatagrams(socket);
    return true;
  }
  attachFd(a, socket);
  return true;
}

/** Closes what the addon owns for this resource (its descriptor, its readiness watch, unread descriptors). */
export function closeNative(socket: Socket): void {
  socket.fdWatch?.close();
  socket.fdWatch = undefined;
  const a = sockAddon();
  if (a && socket.fd >= 0) a.close(socket.fd);
  socket.fd = -1;
  for (const d of socket.ancillary.splice(0)) closeFds(d.fds);
  for (const d of socket.datagrams) if (d.fds) closeFds(d.fds);
}

/** The descriptor behind a resource: its own, or its stream's. */
export function fdOf(socket: Socket): number {
  if (socket.fd >= 0) return socket.fd;
  const s = socket.stream;
  if (s instanceof FdStream) return s.destroyed ? -1 : s.fd;
  // Node's own handles: the descriptor is in the (undocumented, Unix-only) handle's `fd`.
  const holder = (s ?? socket.server ?? socket.udp) as unknown as { _handle?: { fd?: unknown } } | undefined;
  const fd = holder?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** The Unix path of this end or the peer; '' when unnamed; false with the errno. */
export function unixName(socket: Socket, peer: boolean): string | number {
  const a = sockAddon();
  const fd = fdOf(socket);
  if (!a || fd < 0) return peer ? '' : (socket.local?.address ?? '');
  const r = a.name(fd, peer);
  return typeof r === 'number' ? -r : r;
}

export function pairUnix(type: number, pair: Socket[]): number {
  const a = sockAddon()!;
  const r = a.socketpair(AF_UNIX, type, 0);
  if (typeof r === 'number') return -r;
  const ends = r.map((fd) => {
    const s = new Socket(AF_UNIX, type, 0);
    s.fd = fd;
    if (type === SOCK_DGRAM) {
      s.state = 'connected';
      s.peer = { address: '', port: 0 };
      watchDatagrams(s);
    } else {
      attachFd(a, s);
    }
    return s;
  });
  pair.splice(0, pair.length, ...ends);
  return 0;
}

/**
 * A descriptor received with SCM_RIGHTS as a resource the program can use: a connected TCP or
 * Unix stream, a listening socket, a Unix datagram socket. Anything else (a file, a pipe, an IP
 * datagram socket, which Node's dgram cannot adopt) stays a number, the descriptor, for the
 * program to close.
 */
export function adoptFd(fd: number): Socket | number {
  const a = sockAddon()!;
  const dom = a.getsockopt(fd, 1, SO_DOMAIN, 4);
  const typ = a.getsockopt(fd, 1, SO_TYPE, 4);
  const acc = a.getsockopt(fd, 1, SO_ACCEPTCONN, 4);
  if (typeof dom === 'number' || typeof typ === 'number') return fd;
  const domain = dom.readInt32LE(0);
  const type = typ.readInt32LE(0);
  const listening = typeof acc !== 'number' && acc.readInt32LE(0) !== 0;
  if (domain === AF_UNIX) {
    const s = new Socket(AF_UNIX, type, 0);
    s.fd = fd;
    if (type === SOCK_DGRAM) {
      s.state = 'bound';
      watchDatagrams(s);
      return s;
    }
    if (type !== SOCK_STREAM) return fd;
    if (listening) {
      s.state = 'bound';
      return listenUnix(s, 128) ? s : fd;
    }
    attachFd(a, s);
    return s;
  }
  if ((domain === AF_INET || domain === AF_INET6) && type === SOCK_STREAM) {
    const s = new Socket(domain, SOCK_STREAM, 0);
    if (listening) return fd; // a listening TCP descriptor: see README (not adopted)
    s.attach(new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true }));
    s.shared = true;
    return s;
  }
  return fd;
}

const SO_REUSEADDR_OPT = 2;
const SO_REUSEPORT_OPT = 15;

/**
 * SO_REUSEPORT for an IP socket: Node (20) has no option for it, so the descriptor is made and
 * bound here, with SO_REUSEPORT (and SO_REUSEADDR) set before bind as Linux requires, and handed
 * to Node (dgram's bind({ fd }), net's listen({ fd })). The descriptor, or an errno as a negative.
 */
export function reusePortFd(socket: Socket, host: string, port: number): number {
  const a = sockAddon();
  if (!a) return -ENOSYS;
  const fd = a.socket(socket.domain, socket.type, 0);
  if (fd < 0) return fd;
  const steps = [
    (): number => (socket.options.reuseaddr || !socket.isDgram ? a.setsockopt(fd, 1, SO_REUSEADDR_OPT, intValue(1)) : 0),
    (): number => a.setsockopt(fd, 1, SO_REUSEPORT_OPT, intValue(1)),
    (): number => (socket.ip.v6only ? a.setsockopt(fd, 41, 26, intValue(1)) : 0),
    (): number => a.bindIp(fd, host, port),
  ];
  for (const step of steps) {
    const r = step();
    if (r < 0) {
      a.close(fd);
      return r;
    }
  }
  return fd;
}
