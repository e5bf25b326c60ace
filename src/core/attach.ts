/**
 * WebSocket endpoints on somebody else's HTTP server (node:http, node:https, and the frameworks
 * built on them). Node hands an upgrade request over as (req, socket, head) once it has parsed
 * the head; the head is rebuilt from `req` and fed, with `head`, to the same WebSocket session a
 * ws:// listener runs, on the socket Node gave (node:net or TLS, never the native transport).
 *
 * One dispatcher per HTTP server holds every attached path, whichever switchboard Server it
 * belongs to: an upgrade for a path nobody attached is answered 404 only when the dispatcher is
 * the server's only 'upgrade' listener, so that the application's own listeners keep theirs.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { formatHostPort, type Address } from '../address.js';
import { httpResponse } from '../codec/websocket/handshake.js';
import { SwitchboardError } from '../errors.js';
import type { Connection } from './connection.js';
import type { ListenerContext } from './listener.js';
import type { WebSocketServerOptions } from './protocols/websocket.js';

/** `server.attach(httpServer, options)`: the path to serve, and WebSocket options for this endpoint only. */
export interface AttachOptions extends WebSocketServerOptions {
  /** The request path (without query) this endpoint upgrades, e.g. "/chat". Required. */
  path: string;
}

/** What attaching needs of a switchboard Server. */
export interface UpgradeAcceptor {
  /** The listener context of an endpoint (made once per endpoint or local address). */
  upgradeListener(address: Address, options: Readonly<WebSocketServerOptions>): ListenerContext;
  /** A connection of this server on an upgraded socket, or null when it was turned away (and closed). */
  acceptUpgrade(socket: net.Socket, listener: ListenerContext): Connection | null;
}

interface Endpoint {
  readonly owner: UpgradeAcceptor;
  readonly listener: ListenerContext;
}

class Dispatcher {
  readonly endpoints = new Map<string, Endpoint>();
  private readonly listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.upgrade(req, socket, head);

  constructor(private readonly http: HttpServer) {
    http.on('upgrade', this.listener);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = pathOf(req.url);
    const endpoint = this.endpoints.get(path);
    if (endpoint !== undefined) {
      feed(endpoint.owner, endpoint.listener, req, socket, head);
      return;
    }
    // Another listener may own this path (ws's noServer pattern, a proxy): it answers, not us.
    if (this.http.listenerCount('upgrade') > 1) return;
    notFound(socket, path);
  }

  remove(endpoint: Endpoint): void {
    for (const [path, e] of this.endpoints) if (e === endpoint) this.endpoints.delete(path);
    if (this.endpoints.size === 0) {
      this.http.off('upgrade', this.listener);
      dispatchers.delete(this.http);
    }
  }
}

const dispatchers = new WeakMap<HttpServer, Dispatcher>();

/** The endpoints one switchboard Server attached, and the addresses of its handleUpgrade() connections. */
export class Attachments {
  private readonly mine: { dispatcher: Dispatcher; endpoint: Endpoint }[] = [];
  private readonly upgradeListeners = new Map<string, ListenerContext>();

  constructor(private readonly owner: UpgradeAcceptor, private readonly serverOptions: Readonly<WebSocketServerOptions>) {}

  attach(http: HttpServer, options: AttachOptions): void {
    if (http === null || typeof http !== 'object' || typeof (http as Partial<HttpServer>).on !== 'function') {
      throw new SwitchboardError('ERR_INVALID_OPTION', 'attach() needs a node:http or node:https server');
    }
    const path = options?.path;
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('?') || /\s/.test(path)) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `attach() needs options.path, a request path such as "/chat" (got ${String(path)})`);
    }
    let dispatcher = dispatchers.get(http);
    if (dispatcher?.endpoints.has(path) === true) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `a WebSocket endpoint is already attached at ${path} of this HTTP server`);
    }
    const tlsServer = http instanceof HttpsServer || http instanceof tls.Server;
    // One listener context per endpoint: every session of the endpoint shares what derives from its options.
    const merged: WebSocketServerOptions = Object.freeze({ ...this.serverOptions, ...options, path });
    const endpoint: Endpoint = { owner: this.owner, listener: this.owner.upgradeListener(attachedAddress(http, tlsServer, path), merged) };
    if (dispatcher === undefined) dispatchers.set(http, (dispatcher = new Dispatcher(http)));
    dispatcher.endpoints.set(path, endpoint);
    this.mine.push({ dispatcher, endpoint });
  }

  /** An upgrade a framework routed here: served with the Server's own websocket options (a path in them is checked: 404). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!(socket instanceof net.Socket)) {
      socket.destroy();
      throw new SwitchboardError('ERR_INVALID_OPTION', 'handleUpgrade() needs the socket of an HTTP server\'s upgrade event');
    }
    const tlsSocket = socket instanceof tls.TLSSocket;
    const key = `${tlsSocket ? 'wss' : 'ws'} ${socket.localAddress ?? ''} ${socket.localPort ?? 0}`;
    let listener = this.upgradeListeners.get(key);
    if (listener === undefined) {
      const address = fixedAddress(tlsSocket, socket.localAddress ?? '127.0.0.1', socket.localPort ?? 0, this.serverOptions.path ?? '/');
      listener = this.owner.upgradeListener(address, this.serverOptions);
      // A few per server (one per local address); never one per connection.
      if (this.upgradeListeners.size < 16) this.upgradeListeners.set(key, listener);
    }
    feed(this.owner, listener, req, socket, head ?? Buffer.alloc(0));
  }

  /** The server is closing: its paths are given back (the HTTP servers keep running). */
  detach(): void {
    for (const { dispatcher, endpoint } of this.mine.splice(0)) dispatcher.remove(endpoint);
  }
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q === -1 ? u : u.slice(0, q);
}

/** The request head as it came, rebuilt from what Node parsed (raw header names and order kept). */
function headOf(req: IncomingMessage): Buffer {
  let s = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  // Node decoded the header bytes as latin1: encoding them back as latin1 gives the same bytes.
  return Buffer.from(s + '\r\n', 'latin1');
}

function feed(owner: UpgradeAcceptor, listener: ListenerContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (!(socket instanceof net.Socket)) {
    socket.destroy();
    return;
  }
  const conn = owner.acceptUpgrade(socket, listener);
  if (conn === null) return;
  conn.handleData(headOf(req));
  if (head.length > 0 && !socket.destroyed) conn.handleData(head);
}

/** No endpoint at this path: a short 404, and the socket closes once it is written. */
function notFound(socket: Duplex, path: string): void {
  socket.on('error', () => socket.destroy());
  const body = `no WebSocket endpoint at ${path}\n`;
  socket.end(httpResponse(404, {}, body));
  // end() half-closes; a peer that keeps its side open does not keep the socket.
  socket.once('finish', () => socket.destroy());
}

/** The address of an attached endpoint: host and port are the HTTP server's, read when asked. */
function attachedAddress(http: HttpServer, tlsServer: boolean, path: string): Address {
  const scheme = tlsServer ? 'wss' : 'ws';
  const bound = (): net.AddressInfo | null => {
    const a = http.address();
    return a !== null && typeof a === 'object' ? a : null;
  };
  return {
    get url() {
      const a = bound();
      return `${scheme}://${formatHostPort(a?.address ?? 'localhost', a?.port ?? 0)}${path}`;
    },
    scheme,
    transport: tlsServer ? 'tls' : 'tcp',
    protocol: 'ws',
    get host() {
      return bound()?.address ?? 'localhost';
    },
    get port() {
      return bound()?.port ?? 0;
    },
    path,
  };
}

function fixedAddress(tlsSocket: boolean, host: string, port: number, path: string): Address {
  const scheme = tlsSocket ? 'wss' : 'ws';
  return { url: `${scheme}://${formatHostPort(host, port)}${path === '/' ? '' : path}`, scheme, transport: tlsSocket ? 'tls' : 'tcp', protocol: 'ws', host, port, path };
}
