/** connect(url): the client side. The same Connection as on a server, with role 'client'. */
import { parseAddress } from '../address.js';
import { SwitchboardError, transportError } from '../errors.js';
import { connectStream, type TlsClientOptions, type TransportSocket } from '../transport/index.js';
import { connectUdp, MAX_UDP_PAYLOAD } from '../transport/udp.js';
import { Connection, type ConnectionLimits, type ConnectionOwner } from './connection.js';
import { DEFAULT_LIMITS } from './server.js';
import { Sweeper } from './sweeper.js';
import { listenerContext } from './listener.js';
import type { WebSocketClientOptions } from './protocols/websocket.js';

export interface ConnectOptions extends Partial<ConnectionLimits> {
  /** Milliseconds to wait for the connection, TLS and protocol handshake included (default 10000). */
  connectTimeout?: number;
  /** TLS options (ca, servername, rejectUnauthorized, ...) for tls:// and wss://. */
  tls?: TlsClientOptions;
  /** WebSocket options (protocols, headers, perMessageDeflate, ...). */
  websocket?: Readonly<WebSocketClientOptions>;
  signal?: AbortSignal;
}

/** All client connections share one sweeper (ticks of 100 ms are fine for client timeouts). */
const clientSweeper = new Sweeper(100);

const ignore = (): void => {};

class ClientOwner implements ConnectionOwner {
  readonly sweeper = clientSweeper;
  /** How connect() settles; set once the socket is connected (the owner is made before, with the listener context). */
  onOpen: (c: Connection) => void = ignore;
  onClosed: (c: Connection) => void = ignore;
  connectionOpened(conn: Connection): void {
    this.onOpen(conn);
  }
  connectionClosed(conn: Connection): void {
    this.onClosed(conn);
  }
}

/**
 * Connects to a URL ('text://127.0.0.1:5353', 'ws://host/path', 'unix:///tmp/s.sock', ...); resolves
 * once open. Rejects with a SwitchboardError: a failure of the socket keeps Node's code (ECONNREFUSED,
 * ENOTFOUND, ...) and message, with Node's error as `cause`. `Data` types `conn.data`.
 */
export async function connect<Data extends object = Record<string, unknown>>(url: string, options: ConnectOptions = {}): Promise<Connection<Data>> {
  const address = parseAddress(url);
  const timeout = options.connectTimeout ?? 10_000;
  const started = Date.now();
  const limits: ConnectionLimits = { ...DEFAULT_LIMITS, heartbeatInterval: 0 };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ConnectionLimits)[]) {
    const v = options[key];
    if (v !== undefined) (limits as unknown as Record<string, unknown>)[key] = v;
  }
  const owner = new ClientOwner();
  // This call's context, once: bad options fail here, before a socket is opened.
  const listener = listenerContext(owner, address, 'client', limits, options.websocket ?? {});
  let socket: TransportSocket;
  try {
    socket = address.transport === 'udp'
      ? (await connectUdp(address, Math.min(options.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize, MAX_UDP_PAYLOAD)))
      : await connectStream(address, { timeout, tls: options.tls, signal: options.signal });
  } catch (err) {
    throw asSwitchboardError(err);
  }
  // What is left of the connect timeout bounds the protocol handshake.
  limits.handshakeTimeout = Math.max(1, timeout - (Date.now() - started));
  return new Promise<Connection<Data>>((resolve, reject) => {
    let opened = false;
    owner.onOpen = (c) => { opened = true; resolve(c as Connection<Data>); };
    owner.onClosed = (c) => {
      if (opened) return;
      const info = c.closeInfo ?? { code: 1006, reason: 'closed' };
      reject(info.error ?? new SwitchboardError('ERR_HANDSHAKE', `${url}: connection closed before it opened (${info.code} ${info.reason})`));
    };
    new Connection(socket, listener).start();
  });
}

/** Node's errors (ECONNREFUSED, a TLS certificate error, ...) become SwitchboardErrors with the same code and message. */
function asSwitchboardError(err: unknown): SwitchboardError {
  return transportError(err, 'ERR_CONNECT');
}
