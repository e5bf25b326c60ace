/**
 * Creating, binding, listening, accepting, connecting, shutting down and closing sockets.
 *
 * Node has no bind() without listen() and binds asynchronously, so socket_bind() and
 * socket_listen() return Promises here: a stream socket is bound by listening at once (so that a
 * taken port fails in socket_bind() with 98 as in PHP), and connections only become acceptable
 * after socket_listen(); the ones that arrive before are reset.
 */
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import {
  AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_STREAM, SOL_TCP, SOL_UDP,
} from './constants.js';
import { errnoOf, globalError, strerror } from './errors.js';
import { assertSocket, resolveFor } from './resolve.js';
import { Socket, nextTurn, waitUntil, type StreamLike } from './socket.js';
import { sockAddon, addonProblem } from './native.js';
import { applyIpOptions } from './multicast.js';
import { acceptedOne, bindUnix, closeNative, connectUnix, createUnix, listenUnix, reusePortFd, unixName } from './unix.js';

const TYPE_NAMES: Record<number, string> = {
  [SOCK_RAW]: 'SOCK_RAW', [SOCK_RDM]: 'SOCK_RDM', [SOCK_SEQPACKET]: 'SOCK_SEQPACKET',
};

function globalFail(errno: number, detail: string): false {
  globalError.errno = errno;
  globalError.detail = detail;
  return false;
}

/**
 * socket_create(domain, type, protocol): a Socket, or false. AF_INET/AF_INET6 with SOCK_STREAM
 * (TCP) or SOCK_DGRAM (UDP), and AF_UNIX with SOCK_STREAM. What Node cannot offer (raw sockets,
 * SOCK_SEQPACKET, SOCK_RDM, Unix datagrams) fails with 94 "Socket type not supported", the errno
 * Linux gives for a socket type it has no implementation of.
 */
export function socket_create(domain: number, type: number, protocol = 0): Socket | false {
  if (domain !== AF_INET && domain !== AF_INET6 && domain !== AF_UNIX) {
    return globalFail(97, `socket_create(): Unable to create socket [97]: ${strerror(97)} (domain ${domain}; use AF_INET, AF_INET6 or AF_UNIX)`);
  }
  if (domain === AF_UNIX && (type === SOCK_STREAM || type === SOCK_DGRAM) && sockAddon()) {
    const made = createUnix(type);
    if (typeof made === 'number') return globalFail(made, `socket_create(): Unable to create socket [${made}]: ${strerror(made)}`);
    return made;
  }
  if (type === SOCK_RAW || type === SOCK_RDM || type === SOCK_SEQPACKET || (domain === AF_UNIX && type === SOCK_DGRAM)) {
    const what = domain === AF_UNIX && type === SOCK_DGRAM ? `Unix datagram sockets (they need the sockets addon: ${addonProblem})` : `${TYPE_NAMES[type]} sockets`;
    return globalFail(94, `socket_create(): Unable to create socket [94]: ${strerror(94)} (Node.js offers no ${what})`);
  }
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) {
    return globalFail(22, `socket_create(): Unable to create socket [22]: ${strerror(22)} (type ${type})`);
  }
  const wanted = type === SOCK_STREAM ? SOL_TCP : SOL_UDP;
  if (domain !== AF_UNIX && protocol !== 0 && protocol !== wanted) {
    return globalFail(93, `socket_create(): Unable to create socket [93]: ${strerror(93)} (protocol ${protocol} with ${type === SOCK_STREAM ? 'SOCK_STREAM' : 'SOCK_DGRAM'})`);
  }
  return new Socket(domain, type, protocol);
}

/** Creates the dgram socket of a UDP resource (on first bind, connect or sendto). */
export function ensureUdp(socket: Socket): dgram.Socket {
  if (socket.udp) return socket.udp;
  const u = dgram.createSocket({
    type: socket.domain === AF_INET6 ? 'udp6' : 'udp4', reuseAddr: socket.options.reuseaddr, ipv6Only: socket.ip.v6only,
  });
  u.on('message', (data, rinfo) => socket.queueDatagram({ data, address: rinfo.address, port: rinfo.port }));
  u.on('error', (err) => {
    socket.pendingErrno = errnoOf(err);
    socket.changed();
  });
  u.on('listening', () => applyUdpOptions(socket));
  socket.udp = u;
  return u;
}

export function applyUdpOptions(socket: Socket): void {
  const u = socket.udp;
  if (!u) return;
  try {
    u.setBroadcast(socket.options.broadcast);
    if (socket.rcvbufSet) u.setRecvBufferSize(socket.options.rcvbuf);
    if (socket.sndbufSet) u.setSendBufferSize(socket.options.sndbuf);
  } catch {
    // not bound yet: applied again on 'listening'
  }
  applyIpOptions(socket);
}

function bindUdp(u: dgram.Socket, opts: dgram.BindOptions): Promise<unknown> {
  return new Promise((resolve) => {
    const onError = (err: Error): void => resolve(err);
    u.once('error', onError);
    u.bind(opts, () => {
      u.off('error', onError);
      resolve(null);
    });
  });
}

function listenServer(server: net.Server, opts: net.ListenOptions): Promise<unknown> {
  return new Promise((resolve) => {
    const onError = (err: Error): void => resolve(err);
    server.once('error', onError);
    server.listen(opts, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

/** Most connections kept accepted by Node but not yet by socket_accept(); see socket_listen(). */
const MIN_PENDING = 128;

async function bindStream(socket: Socket, fn: string, host: string, port: number): Promise<boolean> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  server.on('connection', (c: net.Socket) => {
    if (!socket.accepting || socket.pending.length >= Math.max(socket.backlog + 1, MIN_PENDING)) {
      c.on('error', () => {});
      c.resetAndDestroy(); // not listening yet, or the queue is full
      return;
    }
    c.on('error', () => {}); // reported once socket_accept() hands it out
    socket.pending.push(c);
    socket.changed();
  });
  const opts: net.ListenOptions = socket.domain === AF_UNIX ? { path: host } : { host, port, exclusive: true, ipv6Only: socket.ip.v6only };
  let err: unknown;
  if (socket.ip.reuseport && socket.domain !== AF_UNIX) {
    const fd = reusePortFd(socket, host, port);
    err = fd < 0 ? Object.assign(new Error('bind'), { errno: fd }) : await listenServer(server, { fd } as net.ListenOptions);
  } else {
    err = await listenServer(server, opts);
  }
  if (err) {
    server.close();
    return socket.failWith(err, `${fn}(): Unable to bind address [${errnoOf(err)}]`);
  }
  server.on('error', () => {});
  socket.server = server;
  socket.state = 'bound';
  return true;
}

/** socket_bind(socket, address, port): binds now (asynchronously: await it); false on failure. */
export async function socket_bind(socket: Socket | false, address: string, port = 0): Promise<boolean> {
  assertSocket('socket_bind', socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.state !== 'fresh') return socket.fail(22, 'socket_bind(): Unable to bind address [22]: the socket is already bound or connected');
  const host = await resolveFor(socket, 'socket_bind', address);
  if (host === false) return false;
  if (socket.fd >= 0) return bindUnix(socket, 'socket_bind', host);
  socket.local = { address: host, port };
  if (socket.isDgram) {
    const u = ensureUdp(socket);
    let err: unknown;
    if (socket.ip.reuseport) {
      const fd = reusePortFd(socket, host, port);
      err = fd < 0 ? Object.assign(new Error('bind'), { errno: fd }) : await bindUdp(u, { fd, exclusive: true });
    } else {
      err = await bindUdp(u, { address: host, port, exclusive: true });
    }
    if (err) {
      u.close();
      socket.udp = undefined;
      return socket.failWith(err, `socket_bind(): Unable to bind address [${errnoOf(err)}]`);
    }
    socket.state = 'bound';
    applyUdpOptions(socket);
    return true;
  }
  return bindStream(socket, 'socket_bind', host, port);
}

/**
 * socket_listen(socket, backlog): starts accepting (await it). An unbound socket is bound to
 * the any-address on a free port first, as Linux does. The kernel's queue is Node's (511); the
 * backlog bounds switchboard's own queue of connections not yet taken by socket_accept()
 * (at least 128 are kept; beyond that new connections are reset).
 */
export async function socket_listen(socket: Socket | false, backlog = 0): Promise<boolean> {
  assertSocket('socket_listen', socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.isDgram) return socket.fail(95, 'socket_listen(): unable to listen on socket [95]: ' + strerror(95) + ' (a datagram socket does not listen)');
  if (socket.state === 'listening') {
    socket.backlog = backlog;
    return true;
  }
  if (socket.fd >= 0) {
    if (socket.state !== 'bound') return socket.fail(22, 'socket_listen(): unable to listen on socket [22]: bind a Unix socket to a path first');
    return listenUnix(socket, backlog);
  }
  if (socket.state === 'fresh') {
    if (socket.domain === AF_UNIX) return socket.fail(22, 'socket_listen(): unable to listen on socket [22]: bind a Unix socket to a path first');
    const ok = await bindStream(socket, 'socket_listen', socket.domain === AF_INET6 ? '::' : '0.0.0.0', 0);
    if (!ok) return false;
  }
  if (socket.state !== 'bound' || !socket.server) return socket.fail(22, 'socket_listen(): unable to listen on socket [22]: ' + strerror(22));
  socket.backlog = Math.max(0, Math.min(backlog, 4096));
  socket.accepting = true;
  socket.state = 'listening';
  return true;
}

/** socket_create_listen(port, backlog): a stream socket listening on every IPv4 address. */
export async function socket_create_listen(port: number, backlog = 128): Promise<Socket | false> {
  const s = socket_create(AF_INET, SOCK_STREAM, 0);
  if (!s) return false;
  if (!(await socket_bind(s, '0.0.0.0', port)) || !(await socket_listen(s, backlog))) {
    socket_close(s);
    return false;
  }
  return s;
}

/** Wraps a Node socket as a new resource that inherits what Linux lets an accepted socket inherit. */
export function adopt(parent: Socket, c: StreamLike): Socket {
  const child = new Socket(parent.domain, SOCK_STREAM, parent.protocol);
  Object.assign(child.options, parent.options, { linger: { ...parent.options.linger } });
  child.rcvbufSet = parent.rcvbufSet;
  child.sndbufSet = parent.sndbufSet;
  child.encoding = parent.encoding;
  child.passcred = parent.passcred;
  child.attach(c);
  return child;
}

/** socket_accept(socket): the next connection (await it), or false (11 EAGAIN when non-blocking and none is pending). */
export async function socket_accept(socket: Socket | false): Promise<Socket | false> {
  assertSocket('socket_accept', socket);
  for (;;) {
    if (socket.state === 'closed') return socket.fail(9);
    if (socket.state !== 'listening') return socket.fail(22, 'socket_accept(): unable to accept incoming connection [22]: the socket is not listening');
    const c = socket.pending.shift();
    if (c) {
      acceptedOne(socket);
      return adopt(socket, c);
    }
    if (socket.nonblock) {
      await nextTurn();
      if (socket.pending.length > 0) continue;
      return socket.fail(11, 'socket_accept(): unable to accept incoming connection [11]: ' + strerror(11));
    }
    const ok = await waitUntil([socket], () => socket.pending.length > 0 || socket.state === 'closed', socket.options.rcvtimeo);
    if (!ok) return socket.fail(11, 'socket_accept(): unable to accept incoming connection [11]: ' + strerror(11) + ' (SO_RCVTIMEO)');
  }
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Opens the connection of a stream resource with `open` (net.connect or tls.connect). Resolves
 * with 0 once connected (`ready` is emitted), or the errno; the resource is attached on success.
 */
export function connectStream(
  socket: Socket,
  open: () => net.Socket,
  ready: 'connect' | 'secureConnect' = 'connect',
  onFail?: (err: Error) => void,
): Promise<number> {
  return new Promise((resolve) => {
    const s = open();
    s.pause();
    const onError = (err: Error): void => {
      s.off(ready, onConnect);
      onFail?.(err);
      resolve(errnoOf(err));
    };
    const onConnect = (): void => {
      s.off('error', onError);
      socket.attach(s);
      resolve(0);
    };
    s.once('error', onError);
    s.once(ready, onConnect);
  });
}

/**
 * socket_connect(socket, address, port): connects (await it); true, or false with the errno
 * (111 "Connection refused", 110, 113, ...). A non-blocking socket returns false with
 * 115 "Operation now in progress" at once and becomes writable in socket_select() when
 * connected (SO_ERROR then tells whether it failed). On a datagram socket, sets the default peer.
 */
export async function socket_connect(socket: Socket | false, address: string, port = 0): Promise<boolean> {
  assertSocket('socket_connect', socket);
  const fn = 'socket_connect';
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.state === 'connecting') return socket.fail(114, `${fn}(): unable to connect [114]: ${strerror(114)}`);
  const host = await resolveFor(socket, fn, address);
  if (host === false) return false;
  if (socket.fd >= 0) return connectUnix(socket, fn, host);

  if (socket.isDgram) {
    const u = ensureUdp(socket);
    if (socket.peer) u.disconnect();
    const err = await new Promise<unknown>((resolve) => {
      const onError = (e: Error): void => resolve(e);
      u.once('error', onError);
      u.connect(port, host, () => {
        u.off('error', onError);
        resolve(null);
      });
    });
    if (err) return socket.failWith(err, `${fn}(): unable to connect [${errnoOf(err)}]`);
    socket.peer = { address: host, port };
    socket.state = 'connected';
    applyUdpOptions(socket);
    return true;
  }

  if (socket.state === 'connected' || socket.state === 'listening') return socket.fail(106, `${fn}(): unable to connect [106]: ${strerror(106)}`);
  const opts: net.NetConnectOpts = socket.domain === AF_UNIX ? { path: host } : { host, port };
  if (socket.state === 'bound' && socket.server && socket.domain !== AF_UNIX) {
    // Bound first to pick the local address: give the reservation back and connect from it.
    const local = socket.server.address() as net.AddressInfo;
    await closeServer(socket.server);
    socket.server = undefined;
    Object.assign(opts, { localAddress: local.address, localPort: local.port });
  }
  socket.state = 'connecting';
  socket.pendingErrno = 0;
  const done = connectStream(socket, () => net.connect({ ...opts, allowHalfOpen: true } as net.NetConnectOpts)).then((errno) => {
    if (errno !== 0) {
      if (socket.state === 'connecting') socket.state = 'fresh';
      socket.pendingErrno = errno;
    }
    socket.changed();
    return errno;
  });
  if (socket.nonblock) {
    await nextTurn();
    return socket.fail(115, `${fn}(): unable to connect [115]: ${strerror(115)}`);
  }
  const sndtimeo = socket.options.sndtimeo;
  const errno = sndtimeo > 0
    ? await Promise.race([done, new Promise<number>((r) => setTimeout(() => r(-1), sndtimeo).unref())])
    : await done;
  if (errno === -1) return socket.fail(115, `${fn}(): unable to connect [115]: ${strerror(115)} (SO_SNDTIMEO)`);
  if (errno !== 0) {
    socket.pendingErrno = 0; // reported here, not again by SO_ERROR
    const where = socket.domain === AF_UNIX ? address : `${address}:${port}`;
    return socket.fail(errno, `${fn}(): unable to connect [${errno}]: ${strerror(errno)} (${where})`);
  }
  return true;
}

/** socket_shutdown(socket, how): 0 stops reading, 1 sends FIN (the socket still reads), 2 both. */
export function socket_shutdown(socket: Socket | false, how = 2): boolean {
  assertSocket('socket_shutdown', socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (how !== 0 && how !== 1 && how !== 2) return socket.fail(22);
  if (socket.state !== 'connected') return socket.fail(107, `socket_shutdown(): Unable to shutdown socket [107]: ${strerror(107)}`);
  if (how !== 1) {
    socket.readShut = true;
  }
  if (how !== 0 && !socket.writeShut) {
    socket.writeShut = true;
    socket.stream?.end();
  }
  socket.changed();
  return true;
}

/** How long a closed socket may take to flush what it still has to send before it is dropped. */
const CLOSE_FLUSH_MS = 30_000;

/** socket_close(socket): closes at once; data already written is still delivered (then FIN). */
export function socket_close(socket: Socket | false): void {
  assertSocket('socket_close', socket);
  if (socket.state === 'closed') return;
  socket.state = 'closed';
  socket.accepting = false;
  closeNative(socket);
  if (socket.server) socket.server.close();
  for (const c of socket.pending.splice(0)) c.destroy(); // Node's or the addon's listener
  if (socket.udp) {
    try {
      socket.udp.close();
    } catch {
      // already closed
    }
  }
  const s = socket.stream;
  if (s && !s.destroyed) {
    if (socket.passedOn) {
      s.destroy(); // another process has the connection now: close(2) this descriptor, no FIN
    } else if (socket.shared && !(socket.options.linger.l_onoff && socket.options.linger.l_linger === 0)) {
      // A descriptor other processes may hold too (the addon's, or one received with SCM_RIGHTS):
      // close(2) it once what was written is sent, as PHP does; shutdown() would end it for them all.
      if (s.writableLength === 0) s.destroy();
      else {
        const t = setTimeout(() => s.destroy(), CLOSE_FLUSH_MS);
        t.unref();
        s.on('drain', () => {
          if (s.writableLength === 0) {
            clearTimeout(t);
            s.destroy();
          }
        });
      }
    } else if (socket.options.linger.l_onoff && socket.options.linger.l_linger === 0) {
      s.resetAndDestroy(); // SO_LINGER {1, 0}: abortive close, RST
    } else {
      s.end();
      s.resume(); // what the peer still sends is read and dropped, so the FIN can complete
      const t = setTimeout(() => s.destroy(), CLOSE_FLUSH_MS);
      t.unref();
      s.once('finish', () => {
        clearTimeout(t);
        s.destroy();
      });
    }
  }
  socket.rx.clear();
  socket.changed();
}

/** Out parameter of socket_getpeername() / socket_getsockname() (PHP's &$address, &$port). */
export interface AddressRef {
  address: string;
  port?: number;
}

/** socket_getpeername(socket, ref): fills ref.address / ref.port with the peer's address. */
export function socket_getpeername(socket: Socket | false, ref: AddressRef): boolean {
  assertSocket('socket_getpeername', socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.domain === AF_UNIX && sockAddon() && (socket.state === 'connected' || socket.isDgram)) {
    const name = unixName(socket, true);
    if (typeof name === 'number') return socket.fail(name, `socket_getpeername(): unable to retrieve peer name [${name}]: ${strerror(name)}`);
    ref.address = name;
    return true;
  }
  if (socket.isDgram) {
    if (!socket.peer) return socket.fail(107, `socket_getpeername(): unable to retrieve peer name [107]: ${strerror(107)}`);
    ref.address = socket.peer.address;
    ref.port = socket.peer.port;
    return true;
  }
  const s = socket.stream;
  if (socket.state !== 'connected' || !s) return socket.fail(107, `socket_getpeername(): unable to retrieve peer name [107]: ${strerror(107)}`);
  if (socket.domain === AF_UNIX) {
    ref.address = '';
    return true;
  }
  if (s.remoteAddress === undefined) return socket.fail(107, `socket_getpeername(): unable to retrieve peer name [107]: ${strerror(107)}`);
  ref.address = s.remoteAddress;
  ref.port = s.remotePort ?? 0;
  return true;
}

/** socket_getsockname(socket, ref): fills ref.address / ref.port with the local address. */
export function socket_getsockname(socket: Socket | false, ref: AddressRef): boolean {
  assertSocket('socket_getsockname', socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.domain === AF_UNIX && sockAddon()) {
    const name = unixName(socket, false);
    if (typeof name === 'number') return socket.fail(name, `socket_getsockname(): unable to retrieve socket name [${name}]: ${strerror(name)}`);
    ref.address = name;
    return true;
  }
  const anyAddr = socket.domain === AF_INET6 ? '::' : socket.domain === AF_UNIX ? '' : '0.0.0.0';
  let address = anyAddr;
  let port = 0;
  if (socket.server) {
    const a = socket.server.address();
    if (typeof a === 'string') address = a;
    else if (a) ({ address, port } = a);
  } else if (socket.udp) {
    try {
      ({ address, port } = socket.udp.address());
    } catch {
      // not bound yet
    }
  } else if (socket.stream) {
    if (socket.domain === AF_UNIX) address = socket.local?.address ?? '';
    else {
      address = socket.stream.localAddress ?? anyAddr;
      port = socket.stream.localPort ?? 0;
    }
  }
  ref.address = address;
  if (socket.domain !== AF_UNIX) ref.port = port;
  return true;
}

/** socket_set_nonblock(socket): reads, accept and connect no longer wait (11 EAGAIN / 115). */
export function socket_set_nonblock(socket: Socket | false): boolean {
  assertSocket('socket_set_nonblock', socket);
  if (socket.state === 'closed') return socket.fail(9);
  socket.nonblock = true;
  return true;
}

/** socket_set_block(socket): back to waiting reads (the default). */
export function socket_set_block(socket: Socket | false): boolean {
  assertSocket('socket_set_block', socket);
  if (socket.state === 'closed') return socket.fail(9);
  socket.nonblock = false;
  return true;
}
