/**
 * The cluster hub's data path: a mesh of local stream sockets between the worker processes, so a
 * publish crosses processes once per receiving worker and never through the primary (which used
 * to relay every publish and was the bottleneck: two workers gave less fan-out than one).
 *
 * Each worker listens on a socket of its own (an abstract Unix socket on Linux, a file in the
 * temporary directory elsewhere) and tells the primary its name over IPC. The primary answers with
 * a secret shared by the workers it started and the workers registered before this one; the
 * newcomer connects to each of them and says hello with the secret, so every pair of workers has
 * one connection, opened by the younger. A restarted worker is a newcomer like any other.
 *
 * Wire (both directions): frames of [u32 length of what follows][u8 kind][u32 topic bytes][topic]
 * [payload]. Each side starts with its interest (one SUB per topic it subscribes to, then INTEREST)
 * and keeps the other told (SUB/UNSUB); publishes go only to peers whose interest has the topic
 * (before a peer's INTEREST arrives, to the peer anyway: the receiver filters again). A round's
 * frames to one peer are joined and written in one write. One connection is a FIFO, so a
 * publisher's messages reach each peer in publish order; past `maxPendingBytes` or `maxPending`
 * waiting for one peer, publishes to that peer are dropped and counted (at most once).
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import type { HubLog } from './types.js';

const HELLO = 1;
const SUB = 2;
const UNSUB = 3;
const INTEREST = 4;
const TEXT = 5;
const BINARY = 6;
const PING = 7;
const PONG = 8;
/** u32 length + u8 kind + u32 topic length. */
const HEAD = 9;
/** The most a peer may send before its hello proved it knows the secret. */
const MAX_UNAUTHENTICATED = 512;
/** The length field's ceiling (u32), and so the largest message one frame carries. */
const MAX_FRAME = 0xffff_ffff;

export const DEFAULT_MAX_PEER_BYTES = 16 * 1024 * 1024;

/** What the primary tells a worker about another one. */
export interface PeerAddress {
  id: number;
  index: number;
  pid: number;
  path: string;
}

/** Per-peer figures, for /status and tests. */
export interface PeerStats {
  /** The peer's cluster worker id (unique for the primary's lifetime; a restart gets a new one). */
  id: number;
  /** Its runWorkers() number (1..N; a restarted worker keeps its number). */
  index: number;
  pid: number;
  /** Topics the peer told us it subscribes to. */
  topics: number;
  /** Publishes written (or queued this round) to it. */
  messagesSent: number;
  bytesSent: number;
  /** Publishes to it dropped because too much waited for it. */
  dropped: number;
  /** Bytes waiting for it now (this round's frames and what its socket has not written). */
  queuedBytes: number;
  /** Publishes received from it. */
  messagesReceived: number;
}

export interface MeshOptions {
  log: HubLog;
  maxPending: number;
  maxPendingBytes: number;
  /** This worker's identity, told to the peers it connects to. */
  self: { id: number; index: number; pid: number };
  /** Whether this process subscribes to `topic` (the receiving side filters by it too). */
  wants: (topic: string) => boolean;
  deliver: (topic: string, data: Message) => void;
}

/** A new secret for the workers of one primary. */
export function meshSecret(): string {
  return randomBytes(16).toString('hex');
}

function frame(kind: number, topic: string, payload: string | Buffer | null): Buffer {
  const tlen = Buffer.byteLength(topic);
  const plen = payload === null ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const buf = Buffer.allocUnsafe(HEAD + tlen + plen);
  buf.writeUInt32BE(5 + tlen + plen, 0);
  buf[4] = kind;
  buf.writeUInt32BE(tlen, 5);
  if (tlen > 0) buf.write(topic, HEAD, 'utf8');
  if (typeof payload === 'string') buf.write(payload, HEAD + tlen, 'utf8');
  else if (payload !== null) payload.copy(buf, HEAD + tlen);
  return buf;
}

function seqFrame(kind: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(seq >>> 0, 0);
  return frame(kind, '', b);
}

class PeerLink {
  id = 0;
  index = 0;
  pid = 0;
  authed: boolean;
  /** The peer's hello, held while this worker does not know the secret yet. */
  heldHello: { token: string; body: string } | null = null;
  readonly interest = new Set<string>();
  interestKnown = false;
  out: Buffer[] = [];
  outBytes = 0;
  outMsgs = 0;
  /** Publishes written to the socket and not yet handed to the kernel, and each write's count. */
  inflightMsgs = 0;
  readonly sizes: number[] = [];
  messagesSent = 0;
  bytesSent = 0;
  messagesReceived = 0;
  dropped = 0;
  congestedLogged = false;
  closed = false;
  // Frame reader state: a frame being filled, or the first bytes of a length prefix.
  private partial: Buffer | null = null;
  private filled = 0;
  private stub: Buffer | null = null;

  readonly onWritten = (): void => {
    this.inflightMsgs -= this.sizes.shift() ?? 0;
  };

  constructor(readonly socket: net.Socket, outbound: boolean, private readonly mesh: Mesh) {
    this.authed = outbound;
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('error', () => {}); // 'close' follows; a vanished peer (ECONNRESET, EPIPE) is no news
    socket.on('close', () => mesh.gone(this));
  }

  queued(): number {
    return this.outBytes + this.socket.writableLength;
  }

  /** Bytes after a hello that waits for the secret; read once the hello is accepted. */
  private stash: Buffer | null = null;

  /** The held hello was accepted: go on with what came after it. */
  resumeHeld(): void {
    const rest = this.stash;
    this.stash = null;
    this.socket.resume();
    if (rest !== null && rest.length > 0) this.feed(rest);
  }

  /** After a frame that stopped the reading: keep the rest while a hello waits for the secret. */
  private hold(chunk: Buffer, off: number): void {
    if (this.heldHello === null || this.closed) return;
    this.socket.pause();
    this.stash = Buffer.from(chunk.subarray(off));
  }

  private feed(chunk: Buffer): void {
    if (this.closed) return;
    let off = 0;
    if (this.partial !== null) {
      const n = Math.min(this.partial.length - this.filled, chunk.length);
      chunk.copy(this.partial, this.filled, 0, n);
      this.filled += n;
      off = n;
      if (this.filled < this.partial.length) return;
      const whole = this.partial;
      this.partial = null;
      if (!this.handle(whole, 0, whole.length)) return this.hold(chunk, off);
    }
    if (this.stub !== null) {
      chunk = Buffer.concat([this.stub, chunk.subarray(off)]);
      this.stub = null;
      off = 0;
    }
    while (off < chunk.length) {
      if (chunk.length - off < 4) {
        this.stub = Buffer.from(chunk.subarray(off));
        return;
      }
      const len = chunk.readUInt32BE(off);
      if (len < 5 || len > (this.authed ? MAX_FRAME : MAX_UNAUTHENTICATED)) return this.fail(`a frame of ${len} bytes`);
      const start = off + 4;
      if (chunk.length - start >= len) {
        off = start + len;
        if (!this.handle(chunk, start, off)) return this.hold(chunk, off);
      } else {
        // The rest of this frame comes in later reads: one buffer of its size, filled as they come.
        this.partial = Buffer.allocUnsafe(len);
        this.filled = chunk.copy(this.partial, 0, start);
        return;
      }
    }
  }

  /** One frame; false once the link is closed or its hello waits for the secret. */
  private handle(buf: Buffer, start: number, end: number): boolean {
    const kind = buf[start];
    const tlen = buf.readUInt32BE(start + 1);
    const body = start + 5 + tlen;
    if (body > end) {
      this.fail('a topic longer than its frame');
      return false;
    }
    const topic = tlen === 0 ? '' : buf.toString('utf8', start + 5, body);
    if (!this.authed) {
      if (kind !== HELLO) {
        this.fail('a frame before the hello');
        return false;
      }
      this.mesh.hello(this, topic, buf.toString('latin1', body, end));
      return !this.closed && this.heldHello === null;
    }
    switch (kind) {
      case TEXT:
      case BINARY:
        this.messagesReceived++;
        if (this.mesh.wants(topic)) {
          this.mesh.deliver(topic, kind === TEXT ? buf.toString('utf8', body, end) : Buffer.from(buf.subarray(body, end)));
        }
        break;
      case SUB:
        this.interest.add(topic);
        break;
      case UNSUB:
        this.interest.delete(topic);
        break;
      case INTEREST:
        this.interestKnown = true;
        break;
      case PING:
        if (end - body === 4) this.mesh.control(this, seqFrame(PONG, buf.readUInt32BE(body)));
        break;
      case PONG:
        if (end - body === 4) this.mesh.pong(this, buf.readUInt32BE(body));
        break;
      default:
        this.fail(`an unknown frame kind ${kind}`);
        return false;
    }
    return true;
  }

  fail(what: string): void {
    if (this.closed) return;
    this.mesh.log(`cluster hub: worker ${this.id || '?'} sent ${what}; closing the link to it`);
    this.socket.destroy();
    this.mesh.gone(this);
  }
}

interface Wait {
  left: Set<PeerLink>;
  done: () => void;
}

export class Mesh {
  readonly log: HubLog;
  readonly wants: (topic: string) => boolean;
  readonly deliver: (topic: string, data: Message) => void;
  /** Deliveries to other workers dropped (congestion, or no mesh yet past the bound). */
  dropped = 0;
  private readonly opts: MeshOptions;
  private readonly server: net.Server;
  private readonly sockPath: string;
  private token: string | null = null;
  private joined = false;
  private closed = false;
  private readonly links = new Set<PeerLink>();
  private readonly pendingInbound = new Set<PeerLink>();
  private readonly dirty: PeerLink[] = [];
  private scheduled = false;
  /** Publishes made before the primary told us the peers (sent to each of them once it has). */
  private early: Array<[string, Message]> = [];
  private joinWaiters: Array<() => void> = [];
  private seq = 0;
  private readonly waits = new Map<number, Wait>();
  private readonly topicsOf: () => Iterable<string>;

  constructor(opts: MeshOptions, topics: () => Iterable<string>, onListening: (path: string) => void, onError: (err: Error) => void) {
    this.opts = opts;
    this.log = opts.log;
    this.wants = opts.wants;
    this.deliver = opts.deliver;
    this.topicsOf = topics;
    const name = `switchboard-${process.pid}-${randomBytes(6).toString('hex')}`;
    // Abstract sockets (Linux) leave no file behind a killed worker; the secret keeps strangers out.
    this.sockPath = process.platform === 'linux' ? `\0${name}` : path.join(os.tmpdir(), `${name}.sock`);
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => {
      onError(err);
      this.close();
    });
    this.server.listen({ path: this.sockPath }, () => {
      if (!this.closed) onListening(this.sockPath);
    });
    // The IPC channel holds the worker's event loop as it did before; the mesh does not add to it.
    this.server.unref();
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.unref();
    const link = new PeerLink(socket, false, this);
    this.pendingInbound.add(link);
  }

  /** An inbound peer's hello: `token` and "id index pid". */
  hello(link: PeerLink, token: string, body: string): void {
    if (this.token === null) {
      link.heldHello = { token, body };
      return;
    }
    this.pendingInbound.delete(link);
    const [id, index, pid] = body.split(' ').map(Number);
    if (token !== this.token || !Number.isInteger(id) || !Number.isInteger(index) || !Number.isInteger(pid)) {
      link.fail('a hello without the secret');
      return;
    }
    link.authed = true;
    link.id = id;
    link.index = index;
    link.pid = pid;
    this.links.add(link);
    this.sendInterest(link);
  }

  /** The primary's answer to our registration: the secret and the workers registered before us. */
  join(token: string, peers: PeerAddress[]): void {
    if (this.closed || this.joined) return;
    this.token = token;
    this.joined = true;
    const self = this.opts.self;
    for (const p of peers) {
      const socket = net.connect({ path: p.path, noDelay: true });
      socket.unref();
      const link = new PeerLink(socket, true, this);
      link.id = p.id;
      link.index = p.index;
      link.pid = p.pid;
      this.links.add(link);
      this.control(link, frame(HELLO, token, `${self.id} ${self.index} ${self.pid}`));
      this.sendInterest(link);
    }
    for (const link of [...this.pendingInbound]) {
      const held = link.heldHello;
      if (held === null) continue;
      link.heldHello = null;
      this.hello(link, held.token, held.body);
      if (!link.closed) link.resumeHeld();
    }
    const early = this.early;
    this.early = [];
    for (const [topic, data] of early) this.publish(topic, data);
    const waiters = this.joinWaiters;
    this.joinWaiters = [];
    for (const w of waiters) w();
  }

  private sendInterest(link: PeerLink): void {
    for (const t of this.topicsOf()) this.control(link, frame(SUB, t, null));
    this.control(link, frame(INTEREST, '', null));
  }

  gone(link: PeerLink): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    this.pendingInbound.delete(link);
    for (const [seq, w] of this.waits) {
      if (w.left.delete(link) && w.left.size === 0) {
        this.waits.delete(seq);
        w.done();
      }
    }
  }

  /** Control frames are never dropped: they are few (one per topic change or ready()) and order depends on them. */
  control(link: PeerLink, buf: Buffer): void {
    if (link.closed) return;
    this.enqueue(link, buf);
  }

  private enqueue(link: PeerLink, buf: Buffer): void {
    if (link.out.push(buf) === 1) this.dirty.push(link);
    link.outBytes += buf.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  subscribe(topic: string): void {
    if (!this.joined) return; // told with the interest on connect
    const f = frame(SUB, topic, null);
    for (const link of this.links) this.control(link, f);
  }

  unsubscribe(topic: string): void {
    if (!this.joined) return;
    const f = frame(UNSUB, topic, null);
    for (const link of this.links) this.control(link, f);
  }

  publish(topic: string, data: Message): void {
    if (this.closed) return;
    if (!this.joined) {
      if (this.early.length >= this.opts.maxPending) this.dropped++;
      else this.early.push([topic, data]);
      return;
    }
    let buf: Buffer | null = null;
    for (const link of this.links) {
      if (!link.authed || (link.interestKnown && !link.interest.has(topic))) continue;
      // One message of any size is taken while what waits for this peer is under the bound.
      if (link.queued() >= this.opts.maxPendingBytes || link.outMsgs + link.inflightMsgs >= this.opts.maxPending) {
        link.dropped++;
        this.dropped++;
        if (!link.congestedLogged) {
          link.congestedLogged = true;
          this.log(`cluster hub: worker ${link.index} (pid ${link.pid}) has ${link.queued()} bytes waiting; dropping messages to it until it catches up`);
        }
        continue;
      }
      if (link.congestedLogged && link.queued() === 0) link.congestedLogged = false;
      buf ??= frame(typeof data === 'string' ? TEXT : BINARY, topic, data);
      link.outMsgs++;
      link.messagesSent++;
      link.bytesSent += buf.length;
      this.enqueue(link, buf);
    }
  }

  /** Writes each peer's frames of this round as one buffer. */
  private readonly flush = (): void => {
    this.scheduled = false;
    for (const link of this.dirty) {
      const out = link.out;
      if (out.length === 0 || link.closed) continue;
      const bytes = link.outBytes;
      const msgs = link.outMsgs;
      link.out = [];
      link.outBytes = 0;
      link.outMsgs = 0;
      link.inflightMsgs += msgs;
      link.sizes.push(msgs);
      link.socket.write(out.length === 1 ? out[0] : Buffer.concat(out, bytes), link.onWritten);
    }
    this.dirty.length = 0;
  };

  pong(link: PeerLink, seq: number): void {
    const w = this.waits.get(seq);
    if (w !== undefined && w.left.delete(link) && w.left.size === 0) {
      this.waits.delete(seq);
      w.done();
    }
  }

  /** Whether the primary's peer list has come (publishes before it wait, bounded). */
  get isJoined(): boolean {
    return this.joined;
  }

  /** Resolves once the primary's peer list has come (or the mesh closed). */
  whenJoined(): Promise<void> {
    if (this.joined || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => this.joinWaiters.push(resolve));
  }

  /**
   * Resolves once every peer has seen what we told it before (our interest): a round trip to each.
   * A peer that does not answer within `timeoutMs` (stopped, hung) is logged and left out rather
   * than let it keep this worker from starting; it is told our interest all the same.
   */
  async ready(timeoutMs: number): Promise<void> {
    const start = Date.now();
    if (!this.joined) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.whenJoined(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new SwitchboardError('ERR_HUB', `cluster hub: the primary did not name the other workers within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    }
    timeoutMs = Math.max(0, timeoutMs - (Date.now() - start));
    if (this.closed) return;
    const left = new Set([...this.links].filter((l) => l.authed && !l.closed));
    if (left.size === 0) return;
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const f = seqFrame(PING, seq);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((done) => {
      this.waits.set(seq, { left, done });
      for (const link of left) this.control(link, f);
      timer = setTimeout(() => {
        if (!this.waits.delete(seq)) return;
        const who = [...left].map((l) => `${l.index} (pid ${l.pid})`).join(', ');
        this.log(`cluster hub: worker(s) ${who} did not answer within ${timeoutMs} ms; going on without waiting for them`);
        done();
      }, timeoutMs);
    });
    clearTimeout(timer);
  }

  get listening(): boolean {
    return !this.closed && this.server.listening;
  }

  peers(): PeerStats[] {
    return [...this.links]
      .filter((l) => l.authed)
      .map((l) => ({
        id: l.id,
        index: l.index,
        pid: l.pid,
        topics: l.interest.size,
        messagesSent: l.messagesSent,
        bytesSent: l.bytesSent,
        dropped: l.dropped,
        queuedBytes: l.queued(),
        messagesReceived: l.messagesReceived,
      }))
      .sort((a, b) => a.index - b.index || a.id - b.id);
  }

  close(): void {
    if (this.closed) return;
    // What this round queued goes out first (the peers see our last publishes, then the end).
    this.flush();
    this.closed = true;
    for (const link of [...this.links, ...this.pendingInbound]) {
      link.socket.end();
      this.gone(link);
    }
    this.server.close();
    if (!this.sockPath.startsWith('\0')) {
      try {
        unlinkSync(this.sockPath);
      } catch {
        // already gone
      }
    }
    for (const w of this.waits.values()) w.done();
    this.waits.clear();
    const waiters = this.joinWaiters;
    this.joinWaiters = [];
    for (const w of waiters) w();
  }
}
