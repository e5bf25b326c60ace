/**
 * Transports: Node's net and tls sockets, and the native TCP transport (transport/native.ts)
 * for plain TCP listeners, behind two functions. They know addresses and sockets, nothing about
 * messages. (UDP lives in transport/udp.ts: datagrams have no stream.)
 */
import net from 'node:net';
import tls from 'node:tls';
import { existsSync, unlinkSync } from 'node:fs';
import type { Address } from '../address.js';
import { SwitchboardError } from '../errors.js';
import { NativeListener, useNative } from './native.js';
import { NetSocket } from './net-socket.js';
import type { StreamSocket } from './socket.js';

export type { SocketSink, StreamSocket, TransportSocket } from './socket.js';
export { NetSocket } from './net-socket.js';

export type TlsServerOptions = tls.TlsOptions;
export type TlsClientOptions = tls.ConnectionOptions;

export interface ListenOptions {
  tls?: TlsServerOptions;
  backlog?: number;
  /** false: accept plain TCP with node:net even where the native transport is built. */
  native?: boolean;
}

/** A listening socket: node:net's, or the native transport's for plain TCP. */
export type StreamListener = net.Server | NativeListener;

/** What a TLS listener reports before its handshake is done (plain listeners report only sockets). */
export interface TlsHandshakeEvents {
  /** A TCP connection was accepted; its TLS handshake starts unless this returns false (and destroys it). */
  accepted(tcp: net.Socket): boolean;
  /** Its handshake failed: a TLS error, or the peer left (the socket is destroyed). */
  failed(err: Error, tcp: net.Socket): void;
}

/**
 * Creates a stream server for a tcp/tls/unix address; `onSocket` gets each accepted socket (a
 * NativeSocket when the native transport serves, else a node:net socket in a NetSocket).
 * TLS: `onSocket` gets the socket once its handshake is done, with the TCP socket it runs on (the
 * one `handshake.accepted` was given).
 */
export function createStreamServer(address: Address, options: ListenOptions, onSocket: (socket: StreamSocket, tcp?: net.Socket) => void,
  handshake?: TlsHandshakeEvents): StreamListener {
  if (address.transport === 'tls') {
    if (!options.tls || (!options.tls.cert && !options.tls.pfx && !options.tls.SNICallback)) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `${address.url}: a TLS listener needs a certificate (options.tls.cert and .key, or .pfx)`);
    }
    return createTlsListener(options.tls, onSocket, handshake);
  }
  if (useNative(address, options.native)) return new NativeListener(onSocket);
  // allowHalfOpen: a peer that half-closes (shutdown(SHUT_WR)) can still be answered.
  return net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => onSocket(new NetSocket(socket)));
}

/**
 * node:net accepts and a tls.Server that never listens does the handshakes (Node's server side of
 * TLS: client certificates, SNI, ALPN, sessions). So the owner sees each TCP connection at its
 * accept, before any TLS work: it can count it, give it a deadline, or refuse it for the price of a
 * close.
 */
function createTlsListener(tlsOptions: TlsServerOptions, onSocket: (socket: StreamSocket, tcp?: net.Socket) => void,
  handshake: TlsHandshakeEvents | undefined): net.Server {
  // Node arms a timer per handshake for any handshakeTimeout > 0 and turns 0 into 120 s; a negative
  // value arms none. An owner that watches handshakes bounds them with its own deadline, from the
  // TCP accept; without one, Node's default stays.
  const engine = tls.createServer(handshake ? { ...tlsOptions, handshakeTimeout: -1 } : tlsOptions);
  engine.on('secureConnection', (socket: tls.TLSSocket) => {
    // From here on a peer that half-closes can still be answered, as on plain TCP.
    socket.allowHalfOpen = true;
    onSocket(new NetSocket(socket), tcpOf(socket));
  });
  // Every failed handshake, once: TLS errors, and a peer that left (ECONNRESET) or was destroyed.
  engine.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
    socket.destroy();
    handshake?.failed(err, tcpOf(socket));
  });
  // allowHalfOpen false until the handshake is done: a peer that sends FIN before it is closed at
  // once (it gets no answer; leaving it half open kept the socket in CLOSE-WAIT).
  return net.createServer({ allowHalfOpen: false, noDelay: true }, (tcp) => {
    if (handshake && !handshake.accepted(tcp)) return;
    // The documented way to hand a tls.Server a connection it did not accept itself.
    engine.emit('connection', tcp);
  });
}

/**
 * The TCP socket under a server-side TLS socket. `_parent` is not documented, but every Node
 * version (and Bun, Deno) sets it to the socket the TLSSocket was made on; tests cover it.
 */
function tcpOf(socket: tls.TLSSocket): net.Socket {
  return (socket as tls.TLSSocket & { _parent: net.Socket })._parent;
}

/** Listens; resolves once bound. A stale Unix socket file (nobody listening) is removed first. */
export async function listenStream(server: StreamListener, address: Address, options: ListenOptions): Promise<void> {
  if (server instanceof NativeListener) return server.listen(address.host, address.port, options.backlog);
  if (address.transport === 'unix') {
    const path = address.socketPath!;
    if (existsSync(path) && !(await isSocketLive(path))) unlinkSync(path);
    return listenOnce(server, { path, backlog: options.backlog });
  }
  return listenOnce(server, { host: address.host, port: address.port, backlog: options.backlog, ipv6Only: false });
}

function listenOnce(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(opts, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function isSocketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export interface ConnectOptions {
  tls?: TlsClientOptions;
  /** Milliseconds to wait for the TCP (and TLS) connection. */
  timeout: number;
  signal?: AbortSignal;
}

/** Opens a stream to a tcp/tls/unix address; resolves once connected (TLS: once the TLS handshake is done). */
export function connectStream(address: Address, options: ConnectOptions): Promise<StreamSocket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const base = { allowHalfOpen: true, noDelay: true };
    if (address.transport === 'unix') {
      socket = net.connect({ ...base, path: address.socketPath! });
    } else if (address.transport === 'tls') {
      const servername = net.isIP(address.host) ? undefined : address.host;
      socket = tls.connect({ servername, ...options.tls, ...base, host: address.host, port: address.port });
    } else {
      socket = net.connect({ ...base, host: address.host, port: address.port });
    }
    const readyEvent = address.transport === 'tls' ? 'secureConnect' : 'connect';
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('error', done);
      socket.off(readyEvent, onReady);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(new NetSocket(socket));
    };
    const onReady = (): void => done();
    const onAbort = (): void => done(new SwitchboardError('ABORT_ERR', `connect to ${address.url} aborted`));
    const timer = setTimeout(() => {
      done(new SwitchboardError('ERR_CONNECT_TIMEOUT', `could not connect to ${address.url} within ${options.timeout} ms`));
    }, options.timeout);
    socket.once('error', done);
    socket.once(readyEvent, onReady);
    if (options.signal) {
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}
