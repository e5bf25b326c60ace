/**
 * One Connection shape for every protocol: a transport socket joined to a protocol session.
 * It implements ProtocolEvents, so the session talks to it directly, and keeps per-connection
 * state in fields (no closures, no timers per connection: the owner's Sweeper checks deadlines).
 */
import { EventEmitter } from 'node:events';
import type { Address, ProtocolName } from '../address.js';
import { wireBytes, type CloseInfo, type Message, type ProtocolEvents, type ProtocolSession, type Wire } from '../codec/types.js';
import { ProtocolError, SwitchboardError, transportError } from '../errors.js';
import type { TransportSocket } from '../transport/socket.js';
import { admit, dropsNext, FlushQueue, Outbox } from './outbox.js';
import type { Sweeper } from './sweeper.js';
import type { RateBucket } from './rate-limit.js';
import type { ListenerStats } from './metrics.js';
import type { ListenerContext } from './listener.js';
import type { ReplayGap } from '../hubs/types.js';

export interface ConnectionLimits {
  /** Close a connection that received nothing for this many ms (0: never). */
  idleTimeout: number;
  /** Close a connection whose protocol is not open (WebSocket handshake) after this many ms. */
  handshakeTimeout: number;
  /** Send a protocol ping after this many quiet ms, and close if still quiet one interval later (0: off). */
  heartbeatInterval: number;
  /** After close() or a protocol end, destroy the socket if the peer has not closed within this many ms. */
  closeTimeout: number;
  /** A message (line, frame, WebSocket message) that began arriving must be complete within this many ms (0: no limit). */
  messageTimeout: number;
  /** The largest message accepted, in bytes. */
  maxMessageSize: number;
  /** Bytes allowed to wait in the send buffer; beyond it `bufferPolicy` applies. */
  maxBufferedAmount: number;
  /** 'close': drop the slow reader (default); 'drop': drop the message and keep the connection. */
  bufferPolicy: 'close' | 'drop';
  /**
   * How long more than maxBufferedAmount may stay waiting before the peer counts as a slow reader
   * (a burst that drains in time is not one). Past four times the bound the policy applies at once.
   */
  drainTimeout: number;
}

/** Who holds a connection: a Server, or the client side of connect(). */
export interface ConnectionOwner {
  /** @internal */ readonly sweeper: Sweeper;
  /** @internal */ connectionOpened(conn: Connection): void;
  /** @internal */ connectionClosed(conn: Connection): void;
}

export interface ConnectionEvents {
  message: [data: Message];
  close: [info: CloseInfo];
  error: [err: Error];
  drain: [];
  /** A WebSocket pong arrived (the answer to ping(), or one the peer sent on its own). */
  pong: [payload: Buffer];
  /** subscribe(topic, { since | last }) has replayed what it could; live delivery follows (see ReplayInfo). */
  replay: [info: ReplayInfo];
}

/** What subscribe() replays before live delivery (hubs with history; see README "History and recovery"). */
export interface SubscribeOptions {
  /** Replay every kept message after this offset (one a delivery carried), then go on live. */
  since?: string;
  /** Replay the last `last` kept messages, then go on live (ignored when `since` is given). */
  last?: number;
}

/** The outcome of a replay, emitted as the connection's 'replay' event before any live message of that topic. */
export interface ReplayInfo {
  topic: string;
  /** What was asked. */
  since?: string;
  last?: number;
  /** Messages replayed. */
  replayed: number;
  /** The offset of the last message sent on this topic when live delivery took over (undefined: none known). */
  offset?: string;
  /** True when every message asked for was replayed: no gap between `since` and live delivery. */
  complete: boolean;
  /** Why not complete (see ReplayGap): 'retention' means the client asked for more than is kept. */
  gap?: ReplayGap;
}

/** Delivers a topic message to one connection in place of sending it as is (see Connection.deliverWith). */
export type TopicWriter = (topic: string, data: Message, offset: string | undefined) => void;

const enum State { Opening, Open, Closing, Closed }

/** Messages queued for async iteration before reads pause. */
const INBOX_HIGH_WATER = 256;

let nextId = 1;

// Rarely set booleans, one field.
const OWES_DRAIN = 1; // send() returned false: a 'drain' is owed
const DRAIN_HOOKED = 2; // the socket's 'drain' is listened to
const PEER_ENDED = 4;
const FAULTED = 8; // ended for a fault (a limit, bad input): its further input is not handled
const INBOX_FLUSH_SCHEDULED = 16;
const AWAITS_PEER = 32; // our close message is sent and the peer's is awaited (WebSocket close handshake)
const YIELDED = 64; // the session keeps input until resumeYielded runs (reads paused meanwhile)
const END_HELD = 128; // EOF came while YIELDED: handled once the kept input is
const USER_PAUSED = 256; // pause() was called: reading waits for resume()

// Writes are queued per connection (its Outbox) and flushed once the event loop has handled the
// input it read in this round, as one socket write per connection (see outbox.ts).
const flushQueue = new FlushQueue<Connection>();

/**
 * `Data` types `conn.data`, what the application keeps per connection: `new Server<{ name: string }>(...)`
 * hands out `Connection<{ name: string }>` (default: a record of unknowns).
 */
export class Connection<Data extends object = Record<string, unknown>> extends EventEmitter<ConnectionEvents> implements ProtocolEvents {
  /** Unique in this process. */
  readonly id: number = nextId++;
  // Made on first use: an idle connection that never needs them holds neither.
  private dataObject: Data | null = null;
  private topicSet: Set<string> | null = null;
  /** @internal Topics whose deliveries reach this connection in the wire protocol's envelope (topics-wire.ts). */
  framed: Set<string> | null = null;

  /** @internal */ readonly socket: TransportSocket;
  /** @internal */ readonly session: ProtocolSession;
  /** What this connection shares with the others of its listener. */
  private readonly shared: ListenerContext;
  private state = State.Opening;
  private lastSeen: number;
  private pingSentAt = 0;
  private deadline: number;
  /** The session's pendingMessage() at the last sweep, and when it was first seen (messageTimeout). */
  private partialMark = 0;
  private partialSince = 0;
  /** What waits for this round's flush, and the protocol's last bytes while they are held. */
  private readonly outbox = new Outbox();
  private flags = 0;
  private endInfo: CloseInfo | null = null;
  private socketError: Error | null = null;
  /** Messages no listener or iterator has taken yet (they wait for the first one, in order). */
  private inbox: Message[] | null = null;
  private iterating = false;
  private waiter: ((r: IteratorResult<Message>) => void) | null = null;
  private closedInfo: CloseInfo | null = null;
  /** The protocol's end, held back until the messages before it have been handled (its last bytes wait in the outbox). */
  private heldEnd: { info: CloseInfo | null } | null = null;
  /** Since when more than maxBufferedAmount waits (0: it does not). */
  private overSince = 0;
  /** @internal The server's rate limit for this connection (see rate-limit.ts); null when there is none. */
  rate: RateBucket | null = null;
  /** @internal Set by deliverWith(): topic messages go through it instead of being sent as is. */
  topicWriter: TopicWriter | null = null;

  /** `acceptedAt`: when the handshake deadline started, if before now (a TLS connection's TCP accept). */
  constructor(socket: TransportSocket, listener: ListenerContext, acceptedAt?: number) {
    super();
    this.socket = socket;
    this.shared = listener;
    const limits = listener.limits;
    const now = Date.now(); // not sweeper.now: that is only fresh while the sweeper ticks
    this.lastSeen = now;
    this.deadline = limits.handshakeTimeout > 0 ? (acceptedAt ?? now) + limits.handshakeTimeout : 0;
    socket.bind(this); // its events come as direct calls (Connection is its SocketSink, checked here)
    // Reading these also makes the socket cache its peer address, so they still answer after close.
    this.session = listener.newSession(this, { address: this.remoteAddress, port: this.remotePort, family: this.remoteFamily });
    listener.owner.sweeper.add(this);
  }

  /** @internal Called by the owner once it has registered the connection. */
  start(): void {
    this.session.start();
  }

  get role(): 'server' | 'client' {
    return this.shared.role;
  }
  /** The address listened on (server side) or connected to (client side). */
  get address(): Address {
    return this.shared.address;
  }
  private get owner(): ConnectionOwner {
    return this.shared.owner;
  }
  private get limits(): ConnectionLimits {
    return this.shared.limits;
  }
  /** @internal The listener's counters. */
  get stats(): ListenerStats {
    return this.shared.stats;
  }

  get protocol(): ProtocolName {
    return this.address.protocol;
  }
  get remoteAddress(): string {
    return this.socket.remoteAddress ?? (this.address.transport === 'unix' ? this.address.socketPath! : '');
  }
  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }
  get remoteFamily(): string {
    return this.socket.remoteFamily ?? (this.address.transport === 'unix' ? 'unix' : '');
  }
  /** Free for the application (a nickname, a user id). */
  get data(): Data {
    // An empty object until the application fills it: Data's fields are the application's promise.
    return (this.dataObject ??= {} as Data);
  }
  set data(value: Data) {
    this.dataObject = value;
  }
  /** Topics this connection subscribes to (see Server.publish). */
  get topics(): Set<string> {
    return (this.topicSet ??= new Set());
  }

  /** "host:port" of the peer ("[::1]:5000" for IPv6, the socket path for Unix sockets). */
  get remote(): string {
    if (this.remoteFamily === 'unix') return this.remoteAddress || 'unix';
    return this.remoteFamily === 'IPv6' ? `[${this.remoteAddress}]:${this.remotePort}` : `${this.remoteAddress}:${this.remotePort}`;
  }
  get localAddress(): string {
    return this.socket.localAddress ?? '';
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
  /** Bytes accepted by send() and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.outbox.size(true);
  }
  get isOpen(): boolean {
    return this.state === State.Open;
  }
  get readyState(): 'opening' | 'open' | 'closing' | 'closed' {
    return (['opening', 'open', 'closing', 'closed'] as const)[this.state];
  }

  /**
   * Sends one message. Returns false when it could not be queued (not open, or dropped by the
   * buffer policy) or when the send buffer is over its high-water mark (wait for 'drain').
   */
  send(data: Message): boolean {
    if (this.state !== State.Open) return false;
    // Under the 'drop' policy decide before encoding: a compressed frame that was encoded and
    // then dropped would leave the peer's inflate context out of step with ours.
    if (this.limits.bufferPolicy === 'drop' && this.dropsNow()) {
      this.shared.stats.dropped++;
      return false;
    }
    return this.write(this.session.encode(data), false, true);
  }

  /**
   * Sends a protocol ping (WebSocket; at most 125 bytes of payload); the answer comes as a 'pong'
   * event with the same payload. False as send() gives it (not open, dropped, or over the send
   * buffer's high-water mark), and when the protocol has no ping.
   */
  ping(payload?: Buffer): boolean {
    if (this.state !== State.Open || !this.session.ping) return false;
    if (payload !== undefined && payload.length > 125) throw new SwitchboardError('ERR_INVALID_OPTION', 'a ping payload is at most 125 bytes');
    const bytes = this.session.ping(payload);
    return bytes !== null && this.write(bytes);
  }

  /**
   * Stops reading from the peer until resume(): what it sends waits in the kernel's buffers and
   * then in its own, not in this process (backpressure toward a slower destination: a pipe,
   * another connection). Messages already read are still delivered.
   */
  pause(): void {
    this.flags |= USER_PAUSED;
    this.socket.pause();
  }

  /** Reads again after pause() (unless a rate limit or unread messages hold reading back). */
  resume(): void {
    if ((this.flags & USER_PAUSED) === 0) return;
    this.flags &= ~USER_PAUSED;
    this.resumeReading();
  }

  /** The WebSocket subprotocol agreed in the handshake ('' when none, or for other protocols). */
  get subprotocol(): string {
    return (this.session as { protocol?: string }).protocol ?? '';
  }

  /** The WebSocket upgrade request (url, headers, origin, remote address), on the server side. */
  get request(): { url: string; headers: Readonly<Record<string, string>>; origin: string | undefined } | undefined {
    return (this.session as { request?: { url: string; headers: Readonly<Record<string, string>>; origin: string | undefined } }).request;
  }

  /** Closes gracefully: the protocol's close message, queued writes flushed, then the socket. */
  close(code = 1000, reason = ''): void {
    if (this.state >= State.Closing) return;
    const wasOpen = this.state === State.Open;
    // First: a close code the protocol refuses (WebSocket 1006) throws with the connection still open.
    const { bytes, awaitsPeer } = wasOpen ? this.session.close(code, reason) : { bytes: null, awaitsPeer: false };
    this.state = State.Closing;
    this.deadline = this.owner.sweeper.now + this.limits.closeTimeout;
    if (!this.endInfo) this.endInfo = { code, reason };
    if (bytes) this.write(bytes, true);
    if (awaitsPeer) this.flags |= AWAITS_PEER;
    else this.endSocket();
  }

  /** Ends the connection at once, without flushing. */
  destroy(error?: SwitchboardError): void {
    if (error && !this.endInfo) this.endInfo = { code: 1006, reason: error.message, error };
    this.socket.destroy();
  }

  /**
   * Joins a topic. With `{ since }` or `{ last }` (a hub with history), the kept messages asked for
   * are replayed first, then live delivery goes on with no gap and no duplicate; the 'replay'
   * event tells how it went (ReplayInfo.complete false: some were missing). Already subscribed: no-op.
   */
  subscribe(topic: string, options?: SubscribeOptions): void {
    if (this.topicSet?.has(topic) === true || this.state >= State.Closing) return;
    if (options !== undefined) checkSubscribeOptions(options);
    this.topics.add(topic);
    (this.owner as Partial<TopicOwner>).addSubscriber?.(topic, this as Connection, options);
  }

  /**
   * Takes over how topic messages reach this connection: `writer` is called with each message of
   * a subscribed topic and its offset (undefined without a hub that keeps history) instead of the
   * message being sent as is, so that a protocol can wrap it (topic and offset in an envelope).
   * null: back to sending as is. Server.broadcast() is not a topic message and is sent as is.
   */
  deliverWith(writer: TopicWriter | null): void {
    this.topicWriter = writer;
  }

  unsubscribe(topic: string): void {
    if (this.topicSet?.delete(topic) !== true) return;
    this.framed?.delete(topic);
    (this.owner as Partial<TopicOwner>).removeSubscriber?.(topic, this as Connection);
  }

  /** Async iteration over incoming messages; ends when the connection closes. Breaking out closes it. */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    this.iterating = true;
    this.inbox ??= [];
    return {
      next: () => {
        const inbox = this.inbox!;
        if (inbox.length > 0) {
          const value = inbox.shift()!;
          if (inbox.length < INBOX_HIGH_WATER / 2) this.resumeReading();
          return Promise.resolve({ value, done: false });
        }
        // Everything before the protocol's end was handled (replies included): now it may end.
        if (this.heldEnd !== null) this.releaseEnd();
        if (this.state === State.Closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => { this.waiter = resolve; });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** How the connection ended; null while it is not closed. */
  get closeInfo(): CloseInfo | null {
    return this.closedInfo;
  }

  /** Resolves with the close info once the connection is fully closed. */
  closed(): Promise<CloseInfo> {
    if (this.closedInfo) return Promise.resolve(this.closedInfo);
    return new Promise((resolve) => this.once('close', resolve));
  }

  // Messages that arrived before the first 'message' listener (the first WebSocket frame comes in
  // the same read as the 101 answer, before `await connect()` returns) go to it, in order, once
  // the code that attached it has run.
  override on<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this {
    super.on(event, listener as never);
    if (event === 'message') this.scheduleInbox();
    return this;
  }
  override addListener<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this {
    return this.on(event, listener);
  }
  override once<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this {
    super.once(event, listener as never);
    if (event === 'message') this.scheduleInbox();
    return this;
  }

  private scheduleInbox(): void {
    if (this.inbox === null || this.iterating || (this.flags & INBOX_FLUSH_SCHEDULED) !== 0) return;
    this.flags |= INBOX_FLUSH_SCHEDULED;
    process.nextTick(flushInbox, this);
  }

  /** @internal Hands held messages to the listeners, then lets a held protocol end happen. */
  deliverInbox(): void {
    this.flags &= ~INBOX_FLUSH_SCHEDULED;
    const inbox = this.inbox;
    if (inbox === null || this.iterating) return;
    while (inbox.length > 0 && this.listenerCount('message') > 0) this.emit('message', inbox.shift()!);
    if (inbox.length > 0) return;
    this.inbox = null;
    this.resumeReading();
    if (this.heldEnd !== null) this.releaseEnd();
  }

  // ---- internal: writing ----

  /**
   * @internal Writes an encoded message (a broadcast's shared frame or text). `message`: it is an
   * application message, counted as sent (or as dropped by the buffer policy).
   */
  write(wire: Wire, force = false, message = false): boolean {
    const socket = this.socket;
    if (socket.destroyed) return false;
    if (!force && !this.mayQueue(wire)) {
      if (message && this.limits.bufferPolicy === 'drop') this.shared.stats.dropped++;
      return false;
    }
    if (message) this.shared.stats.messagesOut++;
    if (!this.shared.batched) {
      const bytes = wireBytes(wire);
      this.shared.stats.bytesOut += bytes.length;
      return socket.write(bytes);
    }
    // Once every socket read in this round is handled, so writes to one connection caused by
    // many reads (chat fan-out) join too: the socket says when that is.
    if (this.outbox.push(wire)) flushQueue.add(this as Connection, socket);
    // The same answer socket.write would give once these bytes reach it (over its high-water mark: wait for 'drain').
    const hwm = socket.writableHighWaterMark - socket.writableLength;
    if (socket.writableNeedDrain || (this.outbox.size(false) >= hwm && this.outbox.size(true) >= hwm)) {
      // The socket's 'drain' is listened to from the first time it matters (one listener fewer per idle connection).
      if ((this.flags & DRAIN_HOOKED) === 0) {
        this.flags |= DRAIN_HOOKED;
        socket.watchDrain();
      }
      this.flags |= OWES_DRAIN;
      return false;
    }
    return true;
  }

  /** @internal Hands this round's queued bytes to the socket: one buffer (text encoded once), one write. */
  flush(): void {
    const outbox = this.outbox;
    if (outbox.empty) return;
    const socket = this.socket;
    if (socket.destroyed) {
      outbox.clear();
      return;
    }
    const out = outbox.take()!;
    let ok: boolean;
    let sent: number;
    if (!Array.isArray(out)) {
      sent = out.length;
      ok = socket.write(out);
    } else {
      sent = 0;
      for (let i = 0; i < out.length; i++) sent += out[i]!.length;
      socket.writev(out);
      ok = !socket.writableNeedDrain;
    }
    this.shared.stats.bytesOut += sent;
    // send() said "wait for drain" but the socket took it all after all: say so, once.
    if (ok && (this.flags & OWES_DRAIN) !== 0 && !socket.writableNeedDrain) {
      this.flags &= ~OWES_DRAIN;
      process.nextTick(emitDrain, this);
    }
  }

  /**
   * The send-buffer rule. What earlier rounds left unsent (the kernel would not take it) is held
   * against the bound; a burst queued in this round is not, up to a ceiling of four times the
   * bound. Whatever its size, one message is taken when what waits is under the bound (the bound
   * is for peers that do not read, not for big messages). Past the bound, 'drop' drops the
   * message. 'close' takes it and starts a clock: a peer whose buffer is not back under the bound
   * within drainTimeout is a slow reader (see sweep); past the ceiling, it is one at once.
   */
  private mayQueue(adding: Wire): boolean {
    const max = this.limits.maxBufferedAmount;
    const verdict = admit(this.outbox, this.socket.writableLength, adding, max, this.limits.bufferPolicy);
    if (verdict === 'take') return true;
    if (verdict === 'drop') return false;
    if (verdict === 'ceiling') {
      this.slowReader(`over ${4 * max} bytes waiting to be sent`);
      return false;
    }
    if (this.overSince === 0) this.overSince = this.owner.sweeper.now;
    return true;
  }

  /** Under the 'drop' policy, whether the next message would be dropped (decided before encoding it). */
  private dropsNow(): boolean {
    return dropsNext(this.outbox, this.socket.writableLength, this.limits.maxBufferedAmount);
  }

  /**
   * Drops a peer that does not read: what this round queued is discarded (the peer is not
   * reading it), and a protocol that has a close message (WebSocket 1008) sends it after what the
   * kernel already holds; the socket is destroyed after closeTimeout if the peer never reads it.
   */
  private slowReader(why: string): void {
    if (this.state >= State.Closing) return;
    const err = new SwitchboardError('ERR_BUFFER_FULL', `peer is not reading: ${why}`);
    this.endInfo = { code: 1008, reason: err.message, error: err };
    this.flags |= FAULTED;
    this.outbox.clear();
    this.overSince = 0;
    this.close(1008, 'peer is not reading');
  }

  private endSocket(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    // end() comes after what is queued.
    this.flush();
    socket.end();
  }

  /** Ends the connection because of an error: no more reads, pending bytes dropped. */
  private fail(error: SwitchboardError, code: number): void {
    if (!this.endInfo) this.endInfo = { code, reason: error.message, error };
    this.state = State.Closing;
    this.flags |= FAULTED;
    this.socket.destroy();
  }

  /** The protocol's end, once the messages before it have been handled (see onEnd). */
  private releaseEnd(): void {
    const held = this.heldEnd!;
    this.heldEnd = null;
    const bytes = this.outbox.release();
    if (bytes !== null) this.write(bytes, true);
    if (held.info !== null) this.onEnd(held.info);
  }

  // ---- ProtocolEvents ----

  /** @internal */
  onOpen(): void {
    if (this.state !== State.Opening) return;
    this.state = State.Open;
    this.deadline = 0;
    this.owner.connectionOpened(this as Connection);
  }

  /** @internal */
  onMessage(data: Message): void {
    this.shared.stats.messagesIn++;
    if (this.rate !== null && !this.rate.message(data)) return; // held back or dropped by the rate limit
    this.deliverMessage(data);
  }

  /** @internal Hands a message to the user (the rate limit calls it for messages it held back). */
  deliverMessage(data: Message): void {
    // Messages that arrive while closing are still delivered (a peer may answer before its close),
    // but not once the connection is ending for a fault: its input is no longer handled.
    if (this.state === State.Opening || this.state === State.Closed || (this.flags & FAULTED) !== 0) return;
    // A wire-protocol message (topics-wire.ts) is for the server, not the application.
    if (typeof data === 'string' && data.charCodeAt(0) === 0x1e) {
      const wire = (this.owner as Partial<WireOwner>).wire;
      if (wire != null) return wire.receive(this as Connection, data);
    }
    // emit() says whether anyone listened: no separate listenerCount() per message.
    if (this.inbox === null && this.emit('message', data)) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: data, done: false });
      return;
    }
    // Nobody is listening yet: keep it for the first listener or iterator, and stop reading once enough waits.
    (this.inbox ??= []).push(data);
    if (this.inbox.length >= INBOX_HIGH_WATER) this.socket.pause();
  }

  /** @internal */
  onWrite(bytes: Buffer, last = false): void {
    // The protocol's last bytes (a close echo, an error's close frame) wait with its end for the
    // messages before them, so that the application's replies to those go first.
    if (last && this.inbox !== null && this.inbox.length > 0) {
      this.heldEnd ??= { info: null };
      this.outbox.hold(bytes);
      return;
    }
    // Bytes the protocol answers with on its own (pongs) count against the send buffer like
    // messages: a peer that pings and never reads is a slow reader. Handshakes and close frames do not.
    if (this.state === State.Open && !last) this.write(bytes);
    else this.write(bytes, true);
  }

  /** @internal */
  onYield(): void {
    if ((this.flags & YIELDED) !== 0) return;
    this.flags |= YIELDED;
    // Not read meanwhile: TCP backpressure slows the peer, and what the transport already read
    // in this round is kept by the session (at most one round's reads).
    this.socket.pause();
    // The next round, after the other connections' reads: the check phase, as for flushes.
    setImmediate(resumeYielded, this as Connection);
  }

  /** @internal The round after onYield: the session goes on with what it kept, then reading resumes. */
  afterYield(): void {
    this.flags &= ~YIELDED;
    if (this.state === State.Closed || this.socket.destroyed) return;
    this.session.resume?.();
    if ((this.flags & YIELDED) !== 0) return; // it yielded again: another round
    this.resumeReading();
    if ((this.flags & END_HELD) !== 0) {
      this.flags &= ~END_HELD;
      this.handleEnd();
    }
  }

  /** @internal The session got a pong: the 'pong' event (see ping()). */
  onPong(payload: Buffer): void {
    this.emit('pong', payload);
  }

  /** @internal */
  onEnd(info: CloseInfo): void {
    this.flags &= ~AWAITS_PEER;
    if (this.heldEnd !== null || (this.inbox !== null && this.inbox.length > 0 && this.state === State.Open)) {
      // Held: messages before the end wait for a listener. They get closeTimeout to be taken.
      (this.heldEnd ??= { info: null }).info = info;
      this.deadline = this.owner.sweeper.now + this.limits.closeTimeout;
      return;
    }
    if (!this.endInfo || this.state !== State.Closing) this.endInfo = info;
    if (this.state < State.Closing) {
      this.state = State.Closing;
      this.deadline = this.owner.sweeper.now + this.limits.closeTimeout;
    }
    this.endSocket();
  }

  // ---- socket events (shared functions, `this` is the socket) ----

  /** @internal */
  handleData(chunk: Buffer): void {
    this.shared.stats.bytesIn += chunk.length;
    if (this.rate !== null && !this.rate.received(chunk.length)) return;
    this.touch();
    this.session.receive(chunk);
  }

  /** @internal */
  handleEnd(): void {
    // The session still keeps input from before the EOF: the EOF waits for it (see afterYield).
    if ((this.flags & YIELDED) !== 0) {
      this.flags |= END_HELD;
      return;
    }
    this.flags |= PEER_ENDED;
    this.rate?.flush();
    // Opening too: a WebSocket client reads a refusal's body up to EOF.
    if (this.state <= State.Open && this.session.finish) this.session.finish();
    if (this.session.peerEof === 'aborted') {
      // A held end (messages before it wait for a listener) plays out first; the peer can still read.
      if (this.heldEnd !== null) return;
      // EOF without a close frame: nothing more will come.
      if (this.state !== State.Closing) this.socket.destroy();
      else this.endSocket();
      return;
    }
    // Let replies to what just arrived be written, then end our side too.
    setImmediate(() => this.close());
  }

  /** @internal */
  handleError(err: Error): void {
    this.socketError ??= err;
  }

  /** @internal */
  handleClose(): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.owner.sweeper.delete(this);
    let info: CloseInfo;
    if (this.endInfo) info = this.endInfo;
    else if (this.socketError) {
      info = { code: 1006, reason: this.socketError.message, error: transportError(this.socketError, 'ERR_SOCKET') };
    } else if ((this.flags & PEER_ENDED) !== 0 && this.session.peerEof === 'finished') info = { code: 1000, reason: '' };
    else info = { code: 1006, reason: 'connection closed without a close handshake' };
    if (this.session.reportClose) info = this.session.reportClose(info);
    this.closedInfo = info;
    this.shared.stats.countClose(info.error?.code ?? String(info.code));
    if (this.topicSet !== null) {
      for (const topic of this.topicSet) (this.owner as Partial<TopicOwner>).removeSubscriber?.(topic, this as Connection);
      this.topicSet.clear();
    }
    this.session.destroy?.();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
    this.owner.connectionClosed(this as Connection);
    // Only a user who holds the connection can listen; without a listener the close info says it all.
    if (info.error && this.listenerCount('error') > 0) this.emit('error', info.error);
    this.emit('close', info);
  }

  /** @internal Timer checks, called by the owner's Sweeper. */
  sweep(now: number): void {
    if (this.deadline !== 0 && now >= this.deadline) {
      if (this.heldEnd !== null) {
        this.deadline = 0;
        this.releaseEnd();
      } else if (this.state === State.Opening) this.handshakeTimedOut(now);
      else this.closeTimedOut();
      return;
    }
    if (this.state !== State.Open) return;
    if (this.overSince !== 0) {
      if (this.bufferedAmount <= this.limits.maxBufferedAmount) this.overSince = 0;
      else if (now - this.overSince >= this.limits.drainTimeout) {
        this.slowReader(`over ${this.limits.maxBufferedAmount} bytes waiting to be sent for ${this.limits.drainTimeout} ms`);
        return;
      }
    }
    const quiet = now - this.lastSeen;
    if (this.limits.idleTimeout > 0 && quiet >= this.limits.idleTimeout) {
      const err = new SwitchboardError('ERR_IDLE_TIMEOUT', `nothing received for ${this.limits.idleTimeout} ms`);
      this.endInfo = { code: 1001, reason: err.message, error: err };
      this.close(1001, 'idle timeout');
      return;
    }
    const mt = this.limits.messageTimeout;
    if (mt > 0 && this.session.pendingMessage) {
      // The same unfinished message as at the last sweep: it is timed from when a sweep first saw it.
      const mark = this.session.pendingMessage();
      if (mark !== this.partialMark) {
        this.partialMark = mark;
        this.partialSince = now;
      } else if (mark !== 0 && now - this.partialSince >= mt) {
        const err = new ProtocolError('ERR_MESSAGE_TIMEOUT', `a message was not completed within ${mt} ms`, 1008);
        this.endInfo = { code: 1008, reason: err.message, error: err };
        this.close(1008, err.message);
        // No waiting for the peer's close: it is in the middle of a message.
        this.endSocket();
        return;
      }
    }
    const hb = this.limits.heartbeatInterval;
    if (hb > 0 && this.session.ping && quiet >= hb) {
      if (this.pingSentAt === 0) {
        const bytes = this.session.ping();
        if (bytes) {
          this.pingSentAt = now;
          this.write(bytes, true);
        }
      } else if (now - this.pingSentAt >= hb) {
        this.fail(new SwitchboardError('ERR_IDLE_TIMEOUT', `no answer to a ping within ${hb} ms`), 1006);
      }
    }
  }

  /** @internal The peer was heard from (a read; or data held back by the rate limit): it is neither idle nor gone. */
  touch(): void {
    this.lastSeen = this.owner.sweeper.now;
    this.pingSentAt = 0;
  }

  /**
   * @internal Reading goes on once nothing holds it: four things pause it (held messages waiting
   * for a listener or the iterator, the rate limit, the inflate budget, the user's pause()), and
   * each asks here when done.
   */
  resumeReading(): void {
    if (!this.socket.isPaused() || this.rate?.paused === true || (this.flags & (YIELDED | USER_PAUSED)) !== 0) return;
    if (this.inbox !== null && this.inbox.length >= INBOX_HIGH_WATER / 2) return;
    this.socket.resume();
  }

  /**
   * @internal Closes because a server limit was hit, with `error` in the close info. The peer is
   * told `reason` as the session's limitNotice says: in its close message, or as one message before the close.
   */
  closeForLimit(error: SwitchboardError, code: number, reason: string): void {
    if (this.state >= State.Closing) return;
    if (!this.endInfo) this.endInfo = { code, reason: error.message, error };
    if (this.state === State.Open && this.session.limitNotice === 'message') this.write(this.session.refuse(reason), true);
    this.close(code, reason);
  }

  /** The handshake did not finish in time: the protocol may say so (HTTP 408) before the socket closes. */
  private handshakeTimedOut(now: number): void {
    const err = new SwitchboardError('ERR_HANDSHAKE_TIMEOUT', `handshake not completed within ${this.limits.handshakeTimeout} ms`);
    const reply = this.session.timeoutReply?.() ?? null;
    if (reply === null) {
      this.fail(err, 1002);
      return;
    }
    if (!this.endInfo) this.endInfo = { code: 1002, reason: err.message, error: err };
    this.state = State.Closing;
    this.deadline = now + this.limits.closeTimeout;
    this.write(reply, true);
    this.endSocket();
  }

  /**
   * closeTimeout passed while closing: the socket is destroyed. Unless the connection already
   * ended for a reason of its own, it is reported as what it is, not as the clean close that was
   * asked for: 1006, ERR_CLOSE_TIMEOUT, when bytes were still unsent or the peer's close frame
   * never came (RFC 6455 §7.1.5: no close frame received is 1006).
   */
  /** @internal Also called by Server.close() when its timeout passes. */
  closeTimedOut(ms = this.limits.closeTimeout): void {
    const unsent = this.socket.writableLength + this.outbox.size(true);
    if (this.endInfo?.error === undefined && (unsent > 0 || (this.flags & AWAITS_PEER) !== 0)) {
      const what = unsent > 0 ? `${unsent} bytes still unsent` : 'no close frame came back';
      const err = new SwitchboardError('ERR_CLOSE_TIMEOUT', `the peer did not close within ${ms} ms (${what})`);
      this.endInfo = { code: 1006, reason: err.message, error: err };
    }
    this.socket.destroy();
  }

  /** @internal Emits 'drain' for users who wait on backpressure. */
  handleDrain(): void {
    this.flags &= ~OWES_DRAIN;
    this.emit('drain');
  }
}

/** A Server with the wire protocol on (topics-wire.ts) takes its messages. */
export interface WireOwner {
  /** @internal */ readonly wire: { receive(conn: Connection, text: string): void } | null;
}

function checkSubscribeOptions(o: SubscribeOptions): void {
  if (typeof o !== 'object' || o === null) throw new SwitchboardError('ERR_INVALID_OPTION', 'subscribe options must be an object { since?, last? }');
  if (o.since !== undefined && typeof o.since !== 'string') {
    throw new SwitchboardError('ERR_INVALID_OPTION', `subscribe option since must be an offset string (got ${typeof o.since})`);
  }
  if (o.last !== undefined && (typeof o.last !== 'number' || !Number.isInteger(o.last) || o.last < 0)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `subscribe option last must be an integer >= 0 (got ${String(o.last)})`);
  }
}

/** The topic bookkeeping a Server does for its connections. */
export interface TopicOwner {
  /** @internal */ addSubscriber(topic: string, conn: Connection, options?: SubscribeOptions): void;
  /** @internal */ removeSubscriber(topic: string, conn: Connection): void;
}

function flushInbox(conn: Connection): void {
  conn.deliverInbox();
}

function resumeYielded(conn: Connection): void {
  conn.afterYield();
}

function emitDrain(conn: Connection): void {
  if (conn.isOpen) conn.emit('drain');
}

