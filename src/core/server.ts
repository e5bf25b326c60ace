/**
 * Server: listens on one or more addresses (any mix of protocols), turns accepted sockets into
 * Connections, enforces the limits, and owns topics (publish/subscribe) and the hub that carries
 * them to other processes.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { formatHostPort, parseAddress, type Address } from '../address.js';
import { wireBytes, type Message, type Wire } from '../codec/types.js';
import { SwitchboardError, transportError } from '../errors.js';
import { compareOffsets, parseOffset, type HistoryResult, type Hub } from '../hubs/types.js';
import { createHub, inSwitchboardWorker } from '../hubs/index.js';
import type { HistoryOptions } from '../hubs/history.js';
import { createStreamServer, listenStream, NetSocket, type StreamListener, type StreamSocket, type TlsHandshakeEvents, type TlsServerOptions } from '../transport/index.js';
import { bindUdp, MAX_UDP_PAYLOAD, type PeerSocket } from '../transport/udp.js';
import { Connection, type ConnectionLimits, type ConnectionOwner, type ReplayInfo, type SubscribeOptions, type TopicOwner, type WireOwner } from './connection.js';
import { listenerContext, type ListenerContext } from './listener.js';
import { resolutionFor, Sweeper } from './sweeper.js';
import { parseRateLimit, RateLimiter, type LimitStats, type RateLimitOptions } from './rate-limit.js';
import { formatRemote, parseMaxPerIp, PerIpCount, type AcceptHook } from './admission.js';
import { TlsHandshake, type HandshakeOwner } from './tls-handshake.js';
import { snapshotOf, type Snapshot } from './metrics.js';
import { startAdmin, watchWorkerServer, type AdminHandle, type AdminOption } from './admin.js';
import { staggeredClose } from './drain.js';
import { Attachments, type AttachOptions } from './attach.js';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServerOptions } from './protocols/websocket.js';
import { PresenceTracker, type Presence, type PresenceMeta, type PresenceOptions } from './presence.js';
import { TopicsWire, type WireOptions } from './topics-wire.js';

export interface ServerOptions extends Partial<ConnectionLimits> {
  /**
   * One URL or several: 'text://127.0.0.1:5353', ['ws://0.0.0.0:8080/chat', 'text://[::1]:9999'].
   * May be left out by a server whose endpoints are all attach()ed to HTTP servers of the application.
   */
  listen?: string | readonly string[];
  /** Connections held at once; the next one is told why and closed (default 10000). */
  maxConnections?: number;
  /** Stop listening after this many accepted connections; the server closes when they are done (default: no limit). */
  maxAccepts?: number;
  /** Certificate and key for tls:// and wss:// listeners (Node's tls.createServer options). */
  tls?: TlsServerOptions;
  /** WebSocket options (path, subprotocols, origins, verifyClient, perMessageDeflate, httpHandler, ...). */
  websocket?: Readonly<WebSocketServerOptions>;
  /**
   * Carries publishes to other processes: a Hub, or 'memory' | 'cluster' | 'redis://host:port'
   * (see createHub). Default: none outside workers, 'cluster' inside runWorkers() workers.
   */
  hub?: Hub | string;
  /**
   * The history kept by a hub named by `hub` (memory, cluster: in-process, default 100 messages per
   * topic and 4 MiB in all; redis+streams: MAXLEN ~, default 1000 per topic). false: none.
   */
  history?: HistoryOptions | false;
  /**
   * Live messages held for one connection while its replay (subscribe with since/last) is read;
   * past it the rest are not held and the replay reports gap 'overflow' (default 10000).
   */
  maxReplayBuffer?: number;
  /** TCP keep-alive probe delay in ms, to notice peers that vanished (default 60000; 0: off). */
  keepAlive?: number;
  /**
   * Connections the kernel may hold accepted before the server takes them (default 4096, capped by
   * the kernel's somaxconn). Node's 511 makes a burst of a thousand connects wait a second for SYN retries.
   */
  backlog?: number;
  /**
   * Plain tcp:// listeners (text, frame, ws) use switchboard's native transport when it is built
   * (less memory per connection, reads batched per event-loop round); false: always node:net.
   * SWITCHBOARD_NATIVE=0 in the environment turns it off for the whole process.
   */
  native?: boolean;
  /** udp://: forget a remote endpoint after this many quiet ms when idleTimeout is off (default 60000). */
  udpPeerTimeout?: number;
  /**
   * Per-connection rate limit (token buckets for messages and bytes): over it, reading pauses
   * ('pause', the default) or the connection is closed ('close', ERR_RATE_LIMIT). Default: none.
   */
  rateLimit?: RateLimitOptions | false;
  /**
   * Connections held at once from one client IP (IPv4-mapped IPv6 counts as IPv4; unix:// is
   * exempt); the next one is told why and closed, as maxConnections does. Default: no cap (0).
   */
  maxConnectionsPerIp?: number;
  /**
   * Called before a connection is accepted (UDP: a new remote endpoint), before anything is read:
   * false destroys it at once and the server emits 'refused'. Synchronous. (WebSocket's
   * verifyClient comes later, with the HTTP request.)
   */
  accept?: AcceptHook;
  /**
   * An HTTP endpoint for operators: GET /metrics (Prometheus text), /healthz, /status (JSON).
   * 'http://127.0.0.1:9100', or { url, token } to require 'Authorization: Bearer TOKEN'.
   * Only loopback without a token. Default: none.
   */
  admin?: AdminOption;
  /** Bounds of presence (see Server.presence): bytes per member's metadata and claim key, members per listing. */
  presence?: PresenceOptions;
  /**
   * The wire protocol (topics-wire.ts, switchboard/client): clients subscribe, publish and make
   * requests with acknowledgements in messages that start with U+001E, beside plain messages.
   * true, or options with `authorize` and the limits. Default: off (such messages are plain).
   */
  wire?: boolean | WireOptions;
}

export interface CloseOptions {
  /** Destroy connections still open this many ms after they were asked to close (default: closeTimeout). */
  timeout?: number;
  /** Spread the closes evenly over this many ms instead of closing every connection at once (default 0). */
  drain?: number;
  /** The WebSocket close code the clients get (default 1001; 1012 says "restarting, come back"). */
  code?: number;
  /** The close reason (default 'server shutting down', or 'service restart' with 1012). */
  reason?: string;
}

/** What a Server emits; `Data` is its connections' `conn.data` type. */
export interface ServerEvents<Data extends object = Record<string, unknown>> {
  listening: [];
  connection: [conn: Connection<Data>];
  /** A client was turned away (server full, maxConnectionsPerIp, the accept hook) and closed. */
  refused: [info: { remote: string; reason: string }];
  /**
   * A TLS handshake failed: the peer left or reset before it was done (ECONNRESET), sent what is not
   * TLS (ERR_SSL_...), or did not finish within handshakeTimeout (ERR_HANDSHAKE_TIMEOUT). Its socket
   * is already closed; this is for counting and logging (port scanners cause many).
   */
  tlsClientError: [err: SwitchboardError, info: { remote: string }];
  /** maxAccepts reached: no more connections will be accepted. */
  exhausted: [];
  error: [err: Error];
  close: [];
  /**
   * A claim (Server.claim) this connection held was taken by another process: this one was cut
   * off from the hub for longer than its TTL, and the claim lapsed meanwhile.
   */
  claimLost: [key: string, conn: Connection<Data>];
}

/** The listen backlog when none is given (see ServerOptions.backlog). */
const DEFAULT_BACKLOG = 4096;

export const DEFAULT_LIMITS: ConnectionLimits = {
  idleTimeout: 0,
  handshakeTimeout: 10_000,
  heartbeatInterval: 30_000,
  closeTimeout: 5_000,
  // A whole message within a minute: a 1 MiB message needs only 17 KiB/s, a person typing one line
  // in character-mode telnet has a minute, and a stalled or trickling peer frees what it holds.
  messageTimeout: 60_000,
  maxMessageSize: 1024 * 1024,
  maxBufferedAmount: 4 * 1024 * 1024,
  bufferPolicy: 'close',
  drainTimeout: 10_000,
};

/** `Data` types every connection's `conn.data`: `new Server<{ name: string }>({ ... })`. */
export class Server<Data extends object = Record<string, unknown>> extends EventEmitter<ServerEvents<Data>> implements ConnectionOwner, TopicOwner, HandshakeOwner, WireOwner {
  /** Open connections (protocol handshake done). */
  readonly connections = new Set<Connection<Data>>();
  /**
   * @internal Every accepted socket's connection, open or not, and every TLS handshake under way
   * (for limits and shutdown), and their deadlines.
   */
  readonly sweeper: Sweeper<Connection | TlsHandshake>;
  readonly options: Readonly<ServerOptions>;
  private readonly listenAddresses: Address[];
  private readonly limits: ConnectionLimits;
  /** UDP peers have no close: they are forgotten after udpPeerTimeout of quiet when idleTimeout is off. */
  private readonly udpLimits: ConnectionLimits;
  /** Handed to every connection's protocol session: one object, so sessions can share what derives from it. */
  private readonly protocolOptions: Readonly<WebSocketServerOptions>;
  private readonly maxConnections: number;
  private readonly maxAccepts: number;
  /** What the limits did: refusals, rate-limit pauses, closes and dropped datagrams. */
  readonly limitStats: LimitStats = { refused: 0, rateLimitPauses: 0, rateLimitCloses: 0, datagramsDropped: 0 };
  /** Null unless the options set each: the hot paths test one field. */
  private readonly rateLimiter: RateLimiter | null;
  private readonly perIp: PerIpCount | null;
  private readonly acceptHook: AcceptHook | null;
  /** Connections turned away (server full) that are still closing: they do not count against the limit. */
  private readonly refusing = new Set<Connection>();
  private readonly netServers: StreamListener[] = [];
  private readonly udpClosers: (() => Promise<void>)[] = [];
  private readonly bound: string[] = [];
  private readonly topicMap = new Map<string, Set<Connection>>();
  /** Connections whose replay is being read, per topic: live messages wait in their buffer meanwhile. */
  private readonly replays = new Map<string, Map<Connection, Replay>>();
  /** What the last deliverLocal() wrote to (a hub with history delivers our publishes at once). */
  private lastDelivered = -1;
  private readonly maxReplayBuffer: number;
  private hub: Hub | null = null;
  private accepted = 0;
  private accepting = false;
  private closing: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;
  private closedDone = false;
  private stopDrain: (() => void) | null = null;
  /** How close() closes (code, reason), for connections accepted after it; null before close(). */
  private closeHow: { code: number; reason: string } | null = null;
  private readonly late = new WeakSet<Connection>();
  private admin: AdminHandle | null = null;
  private readonly startedAt = Date.now();
  /** Refusals by kind (server_full, max_per_ip, accept_hook), for the admin endpoint. */
  private readonly refusedBy = new Map<string, number>();
  private attachments: Attachments | null = null;
  private readonly presenceTracker: PresenceTracker;
  /** The wire protocol's server side (ServerOptions.wire): `server.wire?.handle(topic, fn)` answers requests. */
  readonly wire: TopicsWire | null;

  constructor(options: ServerOptions) {
    super();
    this.options = options;
    const urls = options.listen === undefined ? [] : typeof options.listen === 'string' ? [options.listen] : [...options.listen];
    if (urls.length === 0 && options.listen !== undefined) throw new SwitchboardError('ERR_INVALID_OPTION', 'options.listen needs at least one address');
    // Every URL is checked before any socket is opened.
    this.listenAddresses = urls.map(parseAddress);
    this.limits = { ...DEFAULT_LIMITS };
    for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ConnectionLimits)[]) {
      const v = options[key];
      if (v !== undefined) (this.limits as unknown as Record<string, unknown>)[key] = v;
    }
    // The WebSocket option of the same name is honoured when the general one is not given.
    const wsHandshake = (options.websocket as { handshakeTimeout?: number } | undefined)?.handshakeTimeout;
    if (options.handshakeTimeout === undefined && wsHandshake !== undefined) this.limits.handshakeTimeout = wsHandshake;
    for (const key of ['idleTimeout', 'handshakeTimeout', 'heartbeatInterval', 'closeTimeout', 'messageTimeout', 'maxMessageSize', 'maxBufferedAmount', 'drainTimeout'] as const) {
      checkNonNegative(key, this.limits[key]);
    }
    this.wire = options.wire === undefined || options.wire === false ? null : new TopicsWire(this, options.wire === true ? {} : options.wire);
    this.maxConnections = options.maxConnections ?? 10_000;
    this.maxAccepts = options.maxAccepts ?? Infinity;
    this.maxReplayBuffer = options.maxReplayBuffer ?? REPLAY_BUFFER_MAX;
    checkNonNegative('maxReplayBuffer', this.maxReplayBuffer);
    checkNonNegative('maxConnections', this.maxConnections);
    checkNonNegative('maxAccepts', this.maxAccepts);
    this.rateLimiter = options.rateLimit === undefined || options.rateLimit === false ? null : new RateLimiter(parseRateLimit(options.rateLimit), this.limitStats);
    const perIp = parseMaxPerIp(options.maxConnectionsPerIp);
    this.perIp = perIp === Infinity ? null : new PerIpCount(perIp);
    if (options.accept !== undefined && typeof options.accept !== 'function') {
      throw new SwitchboardError('ERR_INVALID_OPTION', 'option accept must be a function (remote, address) => boolean');
    }
    this.acceptHook = options.accept ?? null;
    this.udpLimits = this.limits.idleTimeout > 0 ? this.limits : { ...this.limits, idleTimeout: options.udpPeerTimeout ?? 60_000 };
    this.protocolOptions = options.websocket ?? NO_OPTIONS;
    const l = this.limits;
    this.sweeper = new Sweeper(resolutionFor(l.idleTimeout, l.handshakeTimeout, l.heartbeatInterval, l.closeTimeout, l.messageTimeout, l.drainTimeout));
    this.presenceTracker = new PresenceTracker(options.presence ?? {}, (key, conn) => this.emit('claimLost', key, conn as Connection<Data>));
    if (options.hub !== undefined || inSwitchboardWorker()) {
      this.useHub(createHub(options.hub, options.history !== undefined ? { history: options.history } : {}));
    }
  }

  /** The addresses actually bound, as URLs (a port 0 is replaced by the port the system chose). */
  get addresses(): readonly string[] {
    return this.bound;
  }

  /** The admin endpoint's URL once listening (see ServerOptions.admin); null without one. */
  get adminUrl(): string | null {
    return this.admin?.url ?? null;
  }

  /** Binds every address. Rejects (and unbinds what was bound) if any fails. */
  async listen(): Promise<this> {
    if (this.netServers.length > 0) throw new SwitchboardError('ERR_INVALID_OPTION', 'listen() was called twice');
    // Each listener's context, once (bad protocol options fail here, before anything is bound).
    const contexts = new Map<Address, ListenerContext>();
    for (const address of this.listenAddresses) {
      if (address.transport !== 'udp') contexts.set(address, listenerContext(this, address, 'server', this.limits, this.protocolOptions));
    }
    let current: Address | undefined;
    try {
      // Subscriptions across processes work before the first client arrives (or we fail to start).
      if (this.hub) await this.hub.ready();
      for (const address of this.listenAddresses) {
        current = address;
        if (address.transport === 'udp') {
          const ctx = listenerContext(this, address, 'server', this.udpLimits);
          const udp = await bindUdp(address, { maxDatagram: Math.min(this.limits.maxMessageSize, MAX_UDP_PAYLOAD), maxPeers: this.maxConnections },
            (peer, firstDatagram) => this.acceptPeer(peer, ctx, firstDatagram));
          this.udpClosers.push(udp.close);
          const a = udp.socket.address();
          this.bound.push(`udp://${formatHostPort(address.host, a.port)}`);
          continue;
        }
        const ctx = contexts.get(address)!;
        const srv = createStreamServer(address, { tls: this.options.tls, backlog: this.options.backlog, native: this.options.native },
          (socket, tcp) => this.accept(socket, ctx, tcp), this.handshakeEventsFor(address));
        this.netServers.push(srv);
        await listenStream(srv, address, { backlog: this.options.backlog ?? DEFAULT_BACKLOG });
        // Only now: a failure to listen is the rejection below, not also an 'error' event.
        if (srv instanceof net.Server) srv.on('error', (err) => this.emitError(err));
        this.bound.push(boundUrl(address, srv));
      }
      current = undefined;
    } catch (err) {
      await this.closeListeners();
      await this.hub?.close();
      this.bound.length = 0;
      throw current ? listenFailed(current, err) : err;
    }
    if (this.options.admin !== undefined) {
      try {
        this.admin = await startAdmin(this.options.admin, () => ({ role: 'server', snapshots: [this.snapshot()] }));
      } catch (err) {
        await this.closeListeners();
        await this.hub?.close();
        this.bound.length = 0;
        throw err;
      }
    }
    if (inSwitchboardWorker()) watchWorkerServer(this);
    this.accepting = true;
    this.emit('listening');
    return this;
  }

  /** TLS listeners report each TCP connection before its handshake (one object per listener). */
  private handshakeEventsFor(address: Address): TlsHandshakeEvents {
    return {
      accepted: (tcp: net.Socket): boolean => this.acceptTcp(tcp, address),
      failed: (err: Error, tcp: net.Socket): void => TlsHandshake.of(tcp)?.failed(err),
    };
  }

  /**
   * Serves WebSocket upgrades for `options.path` on an HTTP server of the application (node:http,
   * node:https, Express, Fastify, Koa): its other requests stay the application's. Several paths
   * (of this server or others) may share one HTTP server; close() gives the paths back and leaves
   * the HTTP server running. See src/core/attach.ts.
   */
  attach(httpServer: HttpServer, options: AttachOptions): this {
    if (this.closing !== null) throw new SwitchboardError('ERR_CLOSED', 'attach() after close()');
    (this.attachments ??= new Attachments(this, this.protocolOptions)).attach(httpServer, options);
    return this;
  }

  /** Takes one upgrade that the application routed here itself (the arguments of an HTTP server's 'upgrade' event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    (this.attachments ??= new Attachments(this, this.protocolOptions)).handleUpgrade(req, socket, head);
  }

  /** @internal An upgraded socket from attach() or handleUpgrade(): admitted like an accepted one. */
  acceptUpgrade(socket: net.Socket, listener: ListenerContext): Connection | null {
    if (this.closing !== null || (this.acceptHook !== null && !this.askAcceptHook(socket, listener.address))) {
      socket.destroy();
      return null;
    }
    const conn = new Connection(new NetSocket(socket), listener);
    return this.admit(conn) ? conn : null;
  }

  /** `tcp`: the TCP socket of a TLS connection whose handshake is done (it was held as a TlsHandshake). */
  /** @internal The context of an attached endpoint or a handleUpgrade() address (see attach.ts). */
  upgradeListener(address: Address, options: Readonly<WebSocketServerOptions>): ListenerContext {
    return listenerContext(this, address, 'server', this.limits, options);
  }

  private accept(socket: StreamSocket, listener: ListenerContext, tcp?: net.Socket): void {
    const address = listener.address;
    let acceptedAt: number | undefined;
    if (tcp) {
      const h = TlsHandshake.of(tcp);
      if (!h?.finish()) {
        socket.destroy();
        return;
      }
      acceptedAt = h.acceptedAt;
    }
    if (!this.accepting) {
      if (this.closeHow !== null && this.closeResolve !== null) return this.acceptLate(socket, listener);
      socket.destroy();
      return;
    }
    // A TLS connection met the accept hook before its handshake (acceptTcp).
    if (!tcp && this.acceptHook !== null && !this.askAcceptHook(socket, address)) {
      socket.destroy();
      return;
    }
    if (!tcp) this.keepAlive(socket);
    this.admit(new Connection(socket, listener, acceptedAt));
  }

  /**
   * A TCP connection to a TLS listener, before any TLS work: refused by the accept hook or a full
   * server for the price of a close, or held (it counts against maxConnections and has the
   * handshake deadline from now).
   */
  private acceptTcp(tcp: net.Socket, address: Address): boolean {
    if (!this.accepting) {
      tcp.destroy();
      return false;
    }
    if (this.acceptHook !== null && !this.askAcceptHook(tcp, address)) {
      tcp.destroy();
      return false;
    }
    if (this.isFull(0)) {
      const remote = formatHostPort(tcp.remoteAddress ?? '', tcp.remotePort ?? 0);
      tcp.destroy();
      this.countRefused('server_full');
      this.emit('refused', { remote, reason: this.fullReason() });
      return false;
    }
    this.keepAlive(tcp);
    new TlsHandshake(tcp, this, this.limits.handshakeTimeout);
    return true;
  }

  private keepAlive(socket: { setKeepAlive(enable: boolean, initialDelay: number): unknown }): void {
    const keepAlive = this.options.keepAlive ?? 60_000;
    if (keepAlive > 0) socket.setKeepAlive(true, keepAlive);
  }

  /** Whether maxConnections are held, `counted` of them being the one being admitted (refusals still closing do not count). */
  private isFull(counted: 0 | 1): boolean {
    return this.sweeper.size - counted - this.refusing.size >= this.maxConnections;
  }

  private fullReason(): string {
    return `server full: ${this.maxConnections} connections already, try again later`;
  }

  /**
   * A connection the kernel had completed when the listener closed (the native transport takes
   * its listen queue then, rather than have it reset): it is served only to be told to come back
   * (the close code of close()), after its handshake, so that a client is never refused at a
   * restart. It does not count against the limits and the application never sees it.
   */
  private acceptLate(socket: StreamSocket, listener: ListenerContext): void {
    const conn = new Connection(socket, listener);
    this.late.add(conn);
    this.refusing.add(conn); // not counted per IP
    conn.start();
  }

  /**
   * A datagram from a new remote endpoint: it becomes a connection, forgotten after udpPeerTimeout
   * of quiet (or evicted by the listener when its table is full). Its source address is unverified,
   * so a refusal may not answer with more bytes than the datagram had: no reflection amplification.
   */
  private acceptPeer(peer: PeerSocket, listener: ListenerContext, firstDatagram: number): boolean {
    const address = listener.address;
    if (!this.accepting) {
      peer.destroy();
      return false;
    }
    if (this.acceptHook !== null && !this.askAcceptHook(peer, address)) {
      peer.destroy();
      return false;
    }
    return this.admit(new Connection(peer, listener), firstDatagram);
  }

  /** The accept hook's answer; a hook that throws refuses, and the error is emitted. */
  private askAcceptHook(socket: { remoteAddress?: string; remotePort?: number; remoteFamily?: string }, address: Address): boolean {
    const unix = address.transport === 'unix';
    const remote = {
      address: socket.remoteAddress ?? (unix ? address.socketPath! : ''),
      port: socket.remotePort ?? 0,
      family: socket.remoteFamily ?? (unix ? 'unix' : ''),
    };
    let ok: boolean;
    try {
      ok = this.acceptHook!(remote, this.bound[this.listenAddresses.indexOf(address)] ?? address.url) === true;
    } catch (err) {
      this.emitError(err instanceof Error ? err : new Error(String(err)));
      ok = false;
    }
    if (!ok) {
      this.countRefused('accept_hook');
      this.emit('refused', { remote: formatRemote(remote), reason: 'refused by the accept hook' });
    }
    return ok;
  }

  /** `replyBudget`: the most bytes a refusal may send (UDP: the size of what the peer sent). */
  private admit(conn: Connection, replyBudget = Infinity): boolean {
    // The sweeper holds every connection, this new one included.
    if (this.isFull(1)) return this.refuse(conn, 'server_full', this.fullReason(), replyBudget);
    if (this.perIp !== null && conn.address.transport !== 'unix' && !this.perIp.add(conn.remoteAddress)) {
      return this.refuse(conn, 'max_per_ip', `too many connections from ${conn.remoteAddress}: ${this.perIp.max} already, try again later`, replyBudget);
    }
    if (this.rateLimiter !== null) conn.rate = this.rateLimiter.bucket(conn, conn.address.transport === 'udp');
    this.accepted++;
    conn.stats.accepted++;
    if (this.accepted >= this.maxAccepts) {
      this.accepting = false;
      void this.closeListeners();
      // No more will be accepted: TLS handshakes under way would only be refused when done.
      this.endHandshakes();
      this.emit('exhausted');
      this.closing = new Promise((resolve) => { this.closeResolve = resolve; });
    }
    conn.start();
    return true;
  }

  /**
   * Tells the client why (one line, an HTTP 503, a WebSocket 1013) and closes it. A UDP source
   * is unverified: the refusal goes out only if it is no longer than what the peer sent
   * (`replyBudget`), so nobody can aim amplified datagrams at a third party.
   */
  private refuse(conn: Connection, kind: 'server_full' | 'max_per_ip', reason: string, replyBudget: number): false {
    this.refusing.add(conn);
    this.countRefused(kind);
    const refusal = conn.session.refuse(reason);
    if (refusal.length <= replyBudget) conn.onWrite(refusal);
    conn.close(1013, reason);
    this.emit('refused', { remote: conn.remote, reason });
    return false;
  }

  private countRefused(kind: 'server_full' | 'max_per_ip' | 'accept_hook'): void {
    this.limitStats.refused++;
    this.refusedBy.set(kind, (this.refusedBy.get(kind) ?? 0) + 1);
  }

  /** 'starting' until listen() is done, 'draining' from close() (or maxAccepts) until closed. */
  get state(): Snapshot['state'] {
    if (this.closedDone) return 'closed';
    if (this.closing !== null) return 'draining';
    return this.accepting ? 'serving' : 'starting';
  }

  /** What this server did and holds now: counters per listener, limits, topics, hub, event-loop delay. */
  snapshot(): Snapshot {
    return snapshotOf({
      addresses: this.listenAddresses, bound: this.bound, connections: this.connections, state: this.state,
      startedAt: this.startedAt, limitStats: this.limitStats, refusedBy: this.refusedBy, topics: this.topicMap, hub: this.hub,
    });
  }

  // ---- ConnectionOwner ----

  /** @internal */
  connectionOpened(conn: Connection): void {
    if (this.late.has(conn)) {
      conn.close(this.closeHow!.code, this.closeHow!.reason);
      return;
    }
    this.connections.add(conn as Connection<Data>);
    this.emit('connection', conn as Connection<Data>);
  }

  /** @internal */
  connectionClosed(conn: Connection): void {
    this.connections.delete(conn as Connection<Data>);
    // Refused connections were not counted per IP.
    if (!this.refusing.delete(conn) && this.perIp !== null && conn.address.transport !== 'unix') this.perIp.remove(conn.remoteAddress);
    conn.rate?.dispose();
    this.presenceTracker.closed(conn);
    if (this.sweeper.size === 0 && this.closeResolve) this.finishClose();
  }

  // ---- HandshakeOwner ----

  /** @internal */
  handshakeEnded(): void {
    if (this.sweeper.size === 0 && this.closeResolve) this.finishClose();
  }

  /** @internal */
  handshakeFailed(h: TlsHandshake, err: SwitchboardError): void {
    this.emit('tlsClientError', err, { remote: h.remote });
  }

  private endHandshakes(): void {
    for (const item of this.sweeper.list()) if (item instanceof TlsHandshake) item.destroy();
  }

  // ---- topics ----

  /** @internal */
  addSubscriber(topic: string, conn: Connection, options?: SubscribeOptions): void {
    let set = this.topicMap.get(topic);
    if (!set) {
      this.topicMap.set(topic, (set = new Set()));
      this.hub?.subscribe(topic);
    }
    if (options === undefined || (options.since === undefined && !(options.last! > 0))) {
      set.add(conn);
      this.presenceTracker.subscribed(topic, conn);
      return;
    }
    // Not in the set until the replay is sent: live messages meanwhile wait in its buffer, and
    // those the replay also holds are skipped by offset, so the switch to live is exact.
    const replay: Replay = { buffer: [], overflow: false };
    let waiting = this.replays.get(topic);
    if (!waiting) this.replays.set(topic, (waiting = new Map()));
    waiting.set(conn, replay);
    const query = options.since !== undefined ? { since: options.since } : { last: options.last! };
    const read: Promise<HistoryResult> = this.hub?.history?.(topic, query) ?? Promise.resolve({ entries: [], gap: 'no-history' });
    read.then(
      (result) => this.finishReplay(topic, conn, query, replay, result),
      () => this.finishReplay(topic, conn, query, replay, { entries: [], gap: 'unavailable' }),
    );
  }

  private finishReplay(topic: string, conn: Connection, query: SubscribeOptions, replay: Replay, result: HistoryResult): void {
    const waiting = this.replays.get(topic);
    if (waiting?.get(conn) !== replay) return; // unsubscribed or closed meanwhile
    waiting.delete(conn);
    if (waiting.size === 0) this.replays.delete(topic);
    // A malformed or foreign `since` is no position: every buffered live message is new to it.
    let last = query.since !== undefined && result.gap !== 'unknown-offset' && parseOffset(query.since) !== null ? query.since : undefined;
    const one = [conn];
    for (const e of result.entries) {
      deliver(one, e.data, undefined, topic, e.offset, this.wire);
      last = e.offset;
    }
    for (const b of replay.buffer) {
      if (b.offset !== undefined && last !== undefined && parseOffset(b.offset) !== null && compareOffsets(b.offset, last) <= 0) continue;
      deliver(one, b.data, b.except, topic, b.offset, this.wire);
      if (b.offset !== undefined) last = b.offset;
    }
    const set = this.topicMap.get(topic);
    if (set !== undefined) {
      set.add(conn);
      this.presenceTracker.subscribed(topic, conn);
    }
    const info: ReplayInfo = { topic, ...query, replayed: result.entries.length, complete: result.gap === undefined && !replay.overflow };
    if (last !== undefined) info.offset = last;
    if (replay.overflow) info.gap = 'overflow';
    else if (result.gap !== undefined) info.gap = result.gap;
    // After the replayed messages are queued and before any later live one.
    conn.emit('replay', info);
  }

  /** @internal */
  removeSubscriber(topic: string, conn: Connection): void {
    const set = this.topicMap.get(topic);
    if (!set) return;
    const waiting = this.replays.get(topic);
    const wasReplaying = waiting?.delete(conn) === true;
    if (wasReplaying && waiting!.size === 0) this.replays.delete(topic);
    const was = set.delete(conn);
    if (!was && !wasReplaying) return;
    if (was) this.presenceTracker.unsubscribed(topic, conn);
    if (set.size === 0 && !this.replays.has(topic)) {
      this.topicMap.delete(topic);
      this.hub?.unsubscribe(topic);
    }
  }

  /** Connections subscribed to `topic` in this process. */
  subscribers(topic: string): ReadonlySet<Connection<Data>> {
    return (this.topicMap.get(topic) ?? EMPTY) as ReadonlySet<Connection<Data>>;
  }

  /** Topics with at least one subscriber in this process. */
  topics(): string[] {
    return [...this.topicMap.keys()];
  }

  /**
   * Sends `data` to every subscriber of `topic`, here and (through the hub) in other processes.
   * The message is encoded once per wire format; every receiver gets the same bytes.
   * Returns the number of local connections it was written to.
   */
  publish(topic: string, data: Message, options: { except?: Connection<Data> } = {}): number {
    const hub = this.hub;
    if (hub?.keepsHistory === true) {
      // The hub gives the message its offset and delivers it here too (at once for in-process
      // hubs; after Redis has it for redis+streams, then the count is of the subscribers it will reach).
      this.lastDelivered = -1;
      hub.publish(topic, data, options.except);
      if (this.lastDelivered >= 0) return this.lastDelivered;
      const subs = this.topicMap.get(topic);
      return subs === undefined ? 0 : subs.size - (options.except !== undefined && subs.has(options.except as Connection) ? 1 : 0);
    }
    const n = this.deliverLocal(topic, data, options.except, undefined);
    hub?.publish(topic, data);
    return n;
  }

  /**
   * Writes a topic message to this process's subscribers. `offset`: its place in the topic's
   * history (hubs that keep history), handed to connections that deliverWith() a writer.
   */
  private deliverLocal(topic: string, data: Message, except: Connection<object> | undefined, offset: string | undefined): number {
    const waiting = this.replays.get(topic);
    if (waiting !== undefined) {
      for (const r of waiting.values()) {
        if (r.overflow) continue;
        if (r.buffer.length >= this.maxReplayBuffer) r.overflow = true;
        else r.buffer.push({ data, offset, except });
      }
    }
    const subs = this.topicMap.get(topic);
    return (this.lastDelivered = subs ? deliver(subs, data, except, topic, offset, this.wire) : 0);
  }

  /** Sends `data` to every open connection of this server (this process only). */
  broadcast(data: Message, options: { except?: Connection<Data> } = {}): number {
    return deliver(this.connections, data, options.except);
  }

  // ---- presence ----

  /**
   * Lists `conn` in the presence of every topic it subscribes to (now and later), in every process
   * sharing the hub, with `meta` (a flat object of JSON values, such as { name: 'ann' }); again
   * replaces its metadata; null takes it out. It leaves with each unsubscribe and its close.
   * Throws ERR_INVALID_OPTION past presence.maxEntryBytes.
   */
  setPresence(conn: Connection<Data>, meta: PresenceMeta | null): void {
    this.presenceTracker.set(conn as Connection, meta);
  }

  /**
   * Members of `topic` (connections with presence metadata) across every process sharing the hub:
   * at most `limit` (default 100, at most presence.maxListed), and how many there are in all.
   * Without a hub, or with the memory hub: this process's. Rejects (ERR_HUB) when the hub cannot answer.
   */
  presence(topic: string, options: { limit?: number } = {}): Promise<Presence> {
    return this.presenceTracker.list(topic, options.limit);
  }

  /**
   * Takes `key` (a nickname, a seat) for `conn` if no connection of any process sharing the hub
   * holds it: true, or false when another holds it. Held until release() or the connection's
   * close (or the TTL of a process that crashed). Rejects (ERR_HUB) when the hub cannot tell.
   */
  claim(key: string, conn: Connection<Data>): Promise<boolean> {
    return this.presenceTracker.claim(key, conn as Connection);
  }

  /** Gives back a claim `conn` holds. */
  release(key: string, conn: Connection<Data>): void {
    this.presenceTracker.release(key, conn as Connection);
  }

  /** Sets the hub that carries publishes to and from other processes. */
  useHub(hub: Hub): void {
    this.hub = hub;
    this.presenceTracker.use(hub.presence ?? null);
    // What other processes publish is delivered here only (never published on again).
    // A hub with history hands back our own publishes too, with the `except` we gave it as token.
    hub.setListener((topic, data, offset, token) => {
      this.deliverLocal(topic, data, token instanceof Connection ? token : undefined, offset);
    });
    for (const topic of this.topicMap.keys()) hub.subscribe(topic);
  }

  // ---- shutdown ----

  /**
   * Stops accepting, asks every connection to close (queued writes are flushed, WebSocket peers
   * get 1001), and destroys those still open after `timeout` ms (default: closeTimeout). With
   * `drain`, the closes are spread evenly over that many ms (the state is 'draining' from the
   * start). A second close() during a drain closes the rest at once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closing && !this.closeResolve) return this.closing;
    this.accepting = false;
    const timeout = options.timeout ?? this.limits.closeTimeout;
    const drain = options.drain ?? 0;
    checkNonNegative('drain', drain);
    const code = options.code ?? 1001;
    const reason = options.reason ?? (code === 1012 ? 'service restart' : 'server shutting down');
    const done = this.closing ?? new Promise<void>((resolve) => { this.closeResolve = resolve; });
    this.closing = done;
    this.closeHow = { code, reason };
    void this.closeListeners();
    this.stopDrain?.();
    this.stopDrain = null;
    // TLS handshakes under way end at once: there is nobody to say goodbye to yet.
    const conns: Connection[] = [];
    for (const item of this.sweeper.list()) {
      if (item instanceof TlsHandshake) item.destroy();
      else conns.push(item);
    }
    if (drain > 0 && conns.length > 1) {
      this.stopDrain = staggeredClose(conns, drain, (conn) => conn.close(code, reason));
      void done.then(() => this.stopDrain?.());
    } else for (const conn of conns) conn.close(code, reason);
    if (this.sweeper.size === 0) this.finishClose();
    else {
      const timer = setTimeout(() => {
        for (const item of this.sweeper.list()) {
          if (item instanceof TlsHandshake) item.destroy();
          else item.closeTimedOut(timeout);
        }
      }, drain + timeout);
      timer.unref();
      void done.then(() => clearTimeout(timer));
    }
    return done;
  }

  /** Resolves when the server has closed (by close(), or after maxAccepts once its connections are done). */
  closed(): Promise<void> {
    if (this.closing) return this.closing;
    return new Promise((resolve) => this.once('close', () => resolve()));
  }

  private finishClose(): void {
    const resolve = this.closeResolve!;
    this.closeResolve = null;
    void this.closeListeners().then(async () => {
      if (this.hub) await this.hub.close();
      this.closedDone = true;
      await this.admin?.close();
      resolve();
      this.emit('close');
    });
  }

  private closeListeners(): Promise<void> {
    this.attachments?.detach();
    const all = this.netServers.splice(0).map((srv) => new Promise<void>((resolve) => srv.close(() => resolve())));
    for (const close of this.udpClosers.splice(0)) all.push(close());
    return Promise.all(all).then(() => undefined);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

const EMPTY: ReadonlySet<Connection> = new Set();

/** Live messages held for one connection while its replay is read. */
interface Replay {
  buffer: Array<{ data: Message; offset: string | undefined; except: Connection<object> | undefined }>;
  /** More than maxReplayBuffer arrived: the rest were not kept, and the replay says so ('overflow'). */
  overflow: boolean;
}

/** Default maxReplayBuffer: live messages held per connection while its replay is read (a Redis round trip, usually). */
const REPLAY_BUFFER_MAX = 10_000;
const NO_OPTIONS: Readonly<Record<string, unknown>> = Object.freeze({});

/** One publish's wire-protocol envelope, for the subscribers that take it: made and encoded once per wire format. */
class Framed {
  private text: string | null = null;
  private readonly bytes = new Map<string, Buffer>();
  constructor(private readonly wire: TopicsWire, private readonly topic: string, private readonly data: Message, private readonly offset: string | undefined) {}
  for(enc: { key: string; encode(data: Message): Wire }): Buffer {
    let b = this.bytes.get(enc.key);
    if (b === undefined) this.bytes.set(enc.key, (b = wireBytes(enc.encode(this.text ??= this.wire.envelope(this.topic, this.data, this.offset)))));
    return b;
  }
}

/**
 * Writes one message to many connections, encoding it once per wire format. A topic message
 * (`topic` given) goes through a connection's deliverWith() writer when it has one, with `offset`, or in the wire
 * protocol's envelope to connections that subscribed through `wire`.
 */
export function deliver(conns: Iterable<Connection<object>>, data: Message, except: Connection<object> | undefined,
  topic?: string, offset?: string, wire: TopicsWire | null = null): number {
  let key: string | null = null;
  let bytes: Buffer | null = null;
  let others: Map<string, Buffer> | null = null;
  let framed: Framed | null = null;
  let n = 0;
  for (const conn of conns) {
    if (conn === except || !conn.isOpen) continue;
    if (conn.topicWriter !== null && topic !== undefined) {
      conn.topicWriter(topic, data, offset);
      n++;
      continue;
    }
    const enc = conn.session.shared;
    if (wire !== null && topic !== undefined && conn.framed !== null && conn.framed.has(topic)) {
      // The envelope is made on the first receiver that takes it, then shared.
      framed ??= new Framed(wire, topic, data, offset);
      conn.write(framed.for(enc), false, true);
      if (conn.isOpen) n++;
      continue;
    }
    // Bytes, not text, even where the encoder gives text: encoded once here, not once per receiver.
    let out: Buffer;
    if (enc.key === key) out = bytes!;
    else if (key === null) {
      key = enc.key;
      out = bytes = wireBytes(enc.encode(data));
    } else {
      others ??= new Map();
      let b = others.get(enc.key);
      if (!b) others.set(enc.key, (b = wireBytes(enc.encode(data))));
      out = b;
    }
    conn.write(out, false, true);
    if (conn.isOpen) n++;
  }
  return n;
}

function boundUrl(address: Address, srv: StreamListener): string {
  if (address.transport === 'unix') return address.url;
  const a = srv.address();
  const port = a && typeof a === 'object' ? a.port : address.port;
  // Only a WebSocket address has a path other than '/' (parseAddress refuses one elsewhere).
  const path = address.path !== '/' ? address.path : '';
  return `${address.scheme}://${formatHostPort(address.host, port)}${path}`;
}

function checkNonNegative(name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `option ${name} must be a number >= 0 (got ${String(v)})`);
  }
}

/**
 * A failure to listen names the URL (Node's message names only host:port, and in words a person
 * can act on: "cannot listen on text://127.0.0.1:9999: address already in use"); the code stays
 * Node's (EADDRINUSE, EACCES, ...) and the original error is the cause.
 */
function listenFailed(address: Address, err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof SwitchboardError) return err;
  const e = err as NodeJS.ErrnoException;
  const text = e.syscall === 'getaddrinfo' ? `cannot resolve host "${address.host}"`
    : typeof e.errno === 'number' ? getSystemErrorMap().get(e.errno)?.[1] : undefined;
  const what = text ? `${text} (${e.code ?? e.errno})` : err.message;
  return transportError(err, 'ERR_LISTEN', `cannot listen on ${address.url}: ${what}`);
}
