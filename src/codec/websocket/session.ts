/**
 * The WebSocket protocol session (RFC 6455 + RFC 7692), both roles, sans-I/O: bytes in through
 * receive(), events out through ProtocolEvents, bytes out through onWrite and encode().
 *
 * Server: reads the HTTP head and hands it, parsed and checked, to the listener's `onRequest`
 * (core's policy: path, origins, subprotocol, verifyClient, httpHandler), which answers now or
 * later with accept(), reject() or respond(). The session never waits on anything itself: input
 * that arrives before the answer is held (bounded) and parsed after an accept. Client: sends the
 * upgrade request at start(), checks the 101 answer, then opens.
 *
 * Once open, frames are parsed here and the session answers the protocol's own control frames
 * itself (a pong to a ping, the close echo), through onWrite.
 */
import type { CloseInfo, Message, ProtocolEvents, ProtocolSession, SharedEncoder } from '../types.js';
import { ProtocolError, type SwitchboardError } from '../../errors.js';
import { decodeError } from '../alloc.js';
import { CloseCode, isValidCloseCode } from './close-codes.js';
import {
  acceptServerResponse, checkDeflateOptions, clientOffer, compressAlone, DEFAULT_INFLATE_BUDGET, negotiateServer, parseExtensions, PerMessageDeflate,
  type DeflateParams, type PerMessageDeflateOptions,
} from './deflate.js';
import {
  acceptResponse, checkServerResponse, checkUpgradeRequest, clientRequest, HandshakeRefusedError, hasToken, HttpError, httpResponse,
  isUpgradeRequest, newKey, parseHead, type ParsedHead, type UpgradeRequest,
} from './handshake.js';
import type { WordXor } from './mask.js';
import { Receiver, type FrameSink } from './receiver.js';
import { encodeClose, encodeControl, encodeFrame, Opcode } from './sender.js';
import { isUtf8 } from './utf8.js';

/** Defaults of the protocol's own limits (core's options may change them). */
export const DEFAULT_MAX_HEADER_BYTES = 16384;
export const DEFAULT_MAX_HEADERS = 100;
export const DEFAULT_MAX_FRAGMENTS = 131072;

/** What an upgrade request shows of itself (`verifyClient`'s argument, and `conn.request`). */
export interface RequestInfo {
  /** The request target: path and query, e.g. "/chat?room=1". */
  url: string;
  /** Request headers, lower-case names. */
  headers: Readonly<Record<string, string>>;
  remoteAddress: string;
  origin: string | undefined;
}

/**
 * Server: a whole request head, for the listener's policy to answer. The protocol's own checks
 * are done and reported, not applied, so that the policy keeps its order (a wrong path is a 404
 * whatever else is wrong).
 */
export interface HandshakeRequest {
  readonly head: ParsedHead;
  /** The upgrade's fields; null for a plain HTTP request (answer with respond() or reject()). */
  readonly upgrade: UpgradeRequest | null;
  /** What RFC 6455 finds wrong with the upgrade (version, key, ...), or null. */
  readonly invalid: HttpError | null;
  /** A malformed Sec-WebSocket-Extensions (400), or null; checked after the origin. */
  readonly badExtensions: HttpError | null;
}

/** Called once per server session with its request head; answers with accept, reject or respond, now or later. */
export type RequestHandler = (session: WebSocketSession, request: HandshakeRequest) => void;

/** Client: what the upgrade request says. */
export interface ClientRequestConfig {
  /** The Host header's value. */
  readonly host: string;
  /** The request target. */
  readonly path: string;
  /** Subprotocols offered, in preference order. */
  readonly protocols: readonly string[];
  /** Extra request headers. */
  readonly headers: Readonly<Record<string, string>>;
}

/** What the sessions of one listener (or one connect() call) share: built once, not per connection. */
export interface WebSocketConfig {
  readonly role: 'server' | 'client';
  /** permessage-deflate settings (checked), or null for none. */
  readonly deflate: PerMessageDeflateOptions | null;
  /** Server with deflate: the broadcast encoders of this config's deflate sessions, one per window size. */
  readonly deflateEncoders: DeflateEncoders | null;
  /** The largest message, in bytes (the inflated size limit unless deflate.maxInflated says otherwise). */
  readonly maxMessageSize: number;
  /** Most bytes held for an unfinished message or before the handshake answer. */
  readonly maxBuffered: number;
  readonly maxFragments: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** Bytes a connection inflates before it yields the rest of the round to others. */
  readonly inflateBudget: number;
  /** A faster XOR loop for masking long payloads (a native one), if any. */
  readonly xor: WordXor | undefined;
  /** Server: the policy that answers each request head. */
  readonly onRequest: RequestHandler | null;
  /** Client: the upgrade request. */
  readonly client: ClientRequestConfig | null;
}

/** The parts of a WebSocketConfig that have defaults. */
export interface WebSocketConfigSpec {
  role: 'server' | 'client';
  maxMessageSize: number;
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  maxBufferedBytes?: number;
  maxFragments?: number;
  maxHeaderBytes?: number;
  maxHeaders?: number;
  xor?: WordXor;
  onRequest?: RequestHandler;
  client?: ClientRequestConfig;
}

/** A config with the defaults filled in; throws ERR_INVALID_OPTION for bad deflate settings. */
export function webSocketConfig(spec: WebSocketConfigSpec): WebSocketConfig {
  let d = spec.perMessageDeflate;
  if (d === undefined) d = spec.role === 'client';
  const deflate = d === false ? null : d === true ? {} : d;
  if (deflate !== null) checkDeflateOptions(deflate);
  return {
    role: spec.role,
    deflate,
    deflateEncoders: deflate !== null && spec.role === 'server' ? new DeflateEncoders(deflate) : null,
    maxMessageSize: spec.maxMessageSize,
    maxBuffered: Math.min(spec.maxBufferedBytes ?? spec.maxMessageSize, spec.maxMessageSize),
    maxFragments: spec.maxFragments ?? DEFAULT_MAX_FRAGMENTS,
    maxHeaderBytes: spec.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
    maxHeaders: spec.maxHeaders ?? DEFAULT_MAX_HEADERS,
    inflateBudget: deflate?.inflateBudget ?? DEFAULT_INFLATE_BUDGET,
    xor: spec.xor,
    onRequest: spec.onRequest ?? null,
    client: spec.client ?? null,
  };
}

// Verifying: a server waiting for the policy's answer to an upgrade; Http: to a plain request
// (HttpHead: to a HEAD request, answered without a body). Refused: a client reading the body of
// a non-101 answer (the reason for the refusal).
const enum State { Handshake, Verifying, Http, HttpHead, Refused, Open, Closing, Ended }

/** Most bytes of a refusal's body a client reads for its reason. */
const MAX_REASON_BYTES = 1024;

const EMPTY = Buffer.alloc(0);

function encodeMessage(data: Message, masked: boolean, xor?: WordXor): Buffer {
  return encodeFrame(typeof data === 'string' ? Opcode.TEXT : Opcode.BINARY, data, masked, false, true, xor);
}

/**
 * Every server session without permessage-deflate shares this encoder: server frames carry no
 * mask, so one encoding of a broadcast serves every such WebSocket receiver.
 */
export const wsServerEncoder: SharedEncoder = {
  key: 'ws',
  encode(data: Message): Buffer {
    return encodeMessage(data, false);
  },
};

let deflateEncodersSeq = 0;

/**
 * The broadcast encoder of the deflate sessions of one config that agreed to one
 * server_max_window_bits. A broadcast of at least `sharedThreshold` bytes is compressed once,
 * alone (no context: RSV1 is chosen per message, RFC 7692 §6, and a message compressed without a
 * dictionary inflates right whatever the receiver's window holds), and the same frame goes to
 * all of them; shorter ones go uncompressed.
 */
export class SharedDeflateEncoder implements SharedEncoder {
  readonly key: string;
  /** Compressed broadcasts so far: a session with context takeover forgets its context when this moved. */
  compressed = 0;
  constructor(id: number, readonly bits: number, private readonly o: PerMessageDeflateOptions, private readonly threshold: number) {
    // Config and bits in the key: different settings make different bytes.
    this.key = `ws-deflate-${id}-${bits}`;
  }
  encode(data: Message): Buffer {
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (size < this.threshold) return encodeMessage(data, false);
    this.compressed++;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return encodeFrame(typeof data === 'string' ? Opcode.TEXT : Opcode.BINARY, compressAlone(bytes, this.bits, this.o), false, true, true);
  }
}

/** One config's SharedDeflateEncoders, made when a session first agrees to their window size. */
export class DeflateEncoders {
  private readonly id = ++deflateEncodersSeq;
  private readonly byBits = new Map<number, SharedDeflateEncoder>();
  private readonly threshold: number;
  constructor(private readonly o: PerMessageDeflateOptions) {
    this.threshold = o.sharedThreshold ?? 1024;
  }
  for(bits: number): SharedDeflateEncoder {
    let enc = this.byBits.get(bits);
    if (enc === undefined) this.byBits.set(bits, (enc = new SharedDeflateEncoder(this.id, bits, this.o, this.threshold)));
    return enc;
  }
  /** Compressed broadcasts so far, over every window size (for tests and stats). */
  get compressed(): number {
    let n = 0;
    for (const enc of this.byBits.values()) n += enc.compressed;
    return n;
  }
}

let clientEncoderSeq = 0;

/** Client frames are masked with a fresh mask each, so no two clients can share bytes. */
class ClientEncoder implements SharedEncoder {
  readonly key = `ws-client-${++clientEncoderSeq}`;
  constructor(private readonly xor: WordXor | undefined) {}
  encode(data: Message): Buffer {
    return encodeMessage(data, true, this.xor);
  }
}

export class WebSocketSession implements ProtocolSession, FrameSink {
  /** Set once more on accept() when deflate was agreed: its broadcasts then may be compressed. */
  shared: SharedEncoder;
  /** The agreed subprotocol ('' when none). */
  protocol = '';

  private state = State.Handshake;
  /** Made when the first frame bytes arrive: an idle connection holds no parser state. */
  private receiver: Receiver | null = null;
  private deflate: PerMessageDeflate | null = null;
  /**
   * Server, deflate with context takeover: the shared encoder's `compressed` when this session
   * last compressed. When it moved, the peer's inflater may have taken in a shared message since,
   * so its window no longer ends with our history: the next own message starts without context.
   */
  private sharedSeen = -1;
  /** Bytes inflated since this session last yielded (see onFrameMessage). */
  private inflated = 0;
  /** Bytes before the head is whole, or held while the policy decides. */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  /** Server: the key to answer; client: the key sent. Server, once accepted: ''. */
  private key = '';
  /** Server: the deflate parameters and response agreed from the offer, applied on accept(). */
  private offer: { response: string; params: DeflateParams } | null = null;
  /**
   * Server: the request head as one latin1 string; `request` is parsed from it when first asked
   * for, so an open connection keeps one string instead of a headers object and its strings.
   */
  private headText: string | null = null;
  private requestInfo: RequestInfo | undefined = undefined;
  /** Client, refused: the answer's head, and the body bytes to wait for (-1: until EOF). */
  private refusal: ParsedHead | null = null;
  private refusalBytes = 0;

  /** `remoteAddress`: the peer's, for the request info. */
  constructor(private readonly events: ProtocolEvents, private readonly cfg: WebSocketConfig, readonly remoteAddress: string) {
    this.shared = this.isServer ? wsServerEncoder : new ClientEncoder(cfg.xor);
    if (!this.isServer) this.key = newKey();
  }

  private get isServer(): boolean {
    return this.cfg.role === 'server';
  }

  /** Server: the upgrade (or plain HTTP) request, once read. */
  get request(): RequestInfo | undefined {
    if (this.requestInfo === undefined && this.headText !== null) {
      const head = parseHead(Buffer.from(`${this.headText}\r\n\r\n`, 'latin1'), 'request', { maxBytes: Infinity, maxHeaders: Infinity });
      if (head !== null) this.requestInfo = requestInfoOf(head, this.remoteAddress);
    }
    return this.requestInfo;
  }

  /** Server: the request info of `head` (the request event's), made once: `request` is then that same object. */
  requestInfoOf(head: ParsedHead): RequestInfo {
    return (this.requestInfo ??= requestInfoOf(head, this.remoteAddress));
  }

  /** Client: sends the upgrade request. Server: nothing to do until the request arrives. */
  start(): void {
    const c = this.cfg.client;
    if (this.isServer || c === null || this.state !== State.Handshake) return;
    this.events.onWrite(clientRequest({
      host: c.host,
      path: c.path,
      key: this.key,
      protocols: c.protocols,
      extensions: this.cfg.deflate ? clientOffer(this.cfg.deflate) : undefined,
      headers: c.headers,
    }));
  }

  receive(chunk: Buffer): void {
    switch (this.state) {
      case State.Open:
      case State.Closing:
        try {
          (this.receiver ??= this.newReceiver()).push(chunk);
        } catch (caught) {
          const err = decodeError(caught);
          if (err === null) throw caught;
          this.fail(err);
        }
        return;
      case State.Handshake:
        this.hold(chunk);
        this.readHead();
        return;
      case State.Refused:
        this.hold(chunk);
        this.readRefusal();
        return;
      case State.Verifying:
        this.hold(chunk);
        if (this.pendingBytes > this.cfg.maxBuffered) {
          this.fail(new ProtocolError('ERR_BUFFER_FULL', 'too many bytes before the handshake was answered', 1009));
        }
        return;
      default:
        // Http: a request body or a pipelined request is ignored; the connection ends after the answer.
        return;
    }
  }

  /** The message the peer has begun and not finished, for core's messageTimeout (see ProtocolSession). */
  pendingMessage(): number {
    return this.state === State.Open && this.receiver !== null ? this.receiver.pendingMessage : 0;
  }

  private hold(chunk: Buffer): void {
    (this.pending ??= []).push(chunk);
    this.pendingBytes += chunk.length;
  }

  private takePending(): Buffer {
    const p = this.pending!;
    const all = p.length === 1 ? p[0]! : Buffer.concat(p, this.pendingBytes);
    this.pending = null;
    this.pendingBytes = 0;
    return all;
  }

  private readHead(): void {
    const p = this.pending!;
    const buf = p.length === 1 ? p[0]! : Buffer.concat(p, this.pendingBytes);
    this.pending = [buf];
    let head: ParsedHead | null;
    try {
      head = parseHead(buf, this.isServer ? 'request' : 'response', { maxBytes: this.cfg.maxHeaderBytes, maxHeaders: this.cfg.maxHeaders });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (this.isServer) this.refuseHttp(err);
      else this.end({ code: CloseCode.ABNORMAL, reason: err.message, error: new ProtocolError('ERR_HANDSHAKE', `WebSocket handshake failed: ${err.message}`) });
      return;
    }
    if (head === null) return;
    const rest = buf.subarray(head.length);
    this.pending = rest.length > 0 ? [rest] : null;
    this.pendingBytes = rest.length;
    // A copy of just the head's bytes (flat, latin1), so the read chunk is not kept alive by it.
    if (this.isServer) this.serverHead(head, buf.toString('latin1', 0, head.textLength));
    else this.clientHead(head);
  }

  // ---- server handshake ----

  private serverHead(head: ParsedHead, text: string): void {
    this.headText = text;
    let upgrade: UpgradeRequest | null = null;
    let invalid: HttpError | null = null;
    let badExtensions: HttpError | null = null;
    if (isUpgradeRequest(head)) {
      this.state = State.Verifying;
      try {
        upgrade = checkUpgradeRequest(head);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        invalid = err;
      }
      if (upgrade !== null) {
        this.key = upgrade.key;
        if (upgrade.extensions !== undefined && this.cfg.deflate !== null) {
          const offers = parseExtensions(upgrade.extensions);
          if (offers === null) badExtensions = new HttpError(400, 'malformed Sec-WebSocket-Extensions');
          else this.offer = negotiateServer(offers, this.cfg.deflate);
        }
      }
    } else {
      this.state = head.method === 'HEAD' ? State.HttpHead : State.Http;
    }
    const handler = this.cfg.onRequest;
    if (handler !== null) {
      handler(this, { head, upgrade, invalid, badExtensions });
      return;
    }
    // No policy: the protocol alone decides.
    const problem = invalid ?? badExtensions;
    if (upgrade === null && invalid === null) this.respond(404, {}, 'Not Found\n');
    else if (problem !== null) this.reject(problem);
    else this.accept();
  }

  /** Server: whether the request head waits for the policy's answer (accept, reject or respond). */
  get awaitsAnswer(): boolean {
    return this.state === State.Verifying || this.state === State.Http || this.state === State.HttpHead;
  }

  /** Server, an upgrade request: answers 101 (with `protocol` as the subprotocol) and opens. Ignored once answered. */
  accept(protocol?: string): void {
    if (this.state !== State.Verifying) return;
    const offer = this.offer;
    this.offer = null;
    this.protocol = protocol ?? '';
    const deflateOpts = this.cfg.deflate;
    if (offer !== null && deflateOpts !== null) {
      this.deflate = new PerMessageDeflate(offer.params, true, deflateOpts, deflateOpts.maxInflated ?? this.cfg.maxMessageSize);
      const enc = this.cfg.deflateEncoders!.for(this.deflate.sendWindowBits);
      this.shared = enc;
      if (!offer.params.serverNoContextTakeover) this.sharedSeen = enc.compressed;
    }
    const key = this.key;
    this.key = '';
    this.events.onWrite(acceptResponse(key, protocol, offer?.response));
    this.open();
  }

  /** Server: refuses the request with err's status, message (as the body) and headers, and ends. Ignored once answered. */
  reject(err: HttpError): void {
    if (this.state !== State.Verifying && this.state !== State.Http && this.state !== State.HttpHead) return;
    this.refuseHttp(err);
  }

  /**
   * Server, a plain HTTP request: sends this answer (no body to a HEAD) and ends; `error` says the
   * answer stands for a failure (the end then carries it, with 1011). Ignored once answered.
   */
  respond(status: number, headers: Record<string, string>, body: string | Buffer, error?: SwitchboardError): void {
    if (this.state !== State.Http && this.state !== State.HttpHead) return;
    this.events.onWrite(httpResponse(status, headers, body, this.state === State.HttpHead));
    if (error === undefined) this.end({ code: CloseCode.NORMAL, reason: `HTTP ${status}` });
    else this.end({ code: CloseCode.INTERNAL_ERROR, reason: error.message, error });
  }

  private refuseHttp(err: HttpError): void {
    this.events.onWrite(httpResponse(err.status, err.extraHeaders, err.message + '\n'));
    this.end({ code: CloseCode.PROTOCOL_ERROR, reason: err.message, error: err });
  }

  // ---- client handshake ----

  private clientHead(head: ParsedHead): void {
    if (head.status !== 101) {
      // The reason is in the body: wait for the bytes Content-Length announces (a few), or for EOF.
      const length = head.headers['content-length'];
      const chunked = hasToken(head.headers['transfer-encoding'], 'chunked');
      this.refusal = head;
      this.refusalBytes = length !== undefined ? Math.min(Number(length), MAX_REASON_BYTES) : chunked ? 0 : -1;
      this.state = State.Refused;
      this.readRefusal();
      return;
    }
    try {
      const deflateOpts = this.cfg.deflate;
      const protocol = checkServerResponse(head, this.key, this.cfg.client?.protocols ?? []);
      const params = acceptServerResponse(head.headers['sec-websocket-extensions'], deflateOpts);
      this.protocol = protocol ?? '';
      if (params !== null) {
        this.deflate = new PerMessageDeflate(params, false, deflateOpts!, deflateOpts!.maxInflated ?? this.cfg.maxMessageSize);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.end({ code: CloseCode.ABNORMAL, reason: err.message, error: err });
      return;
    }
    this.open();
  }

  /** Body bytes of a refusal that make its reason: what Content-Length announced (capped), else the cap. */
  private get reasonBytes(): number {
    return this.refusalBytes >= 0 ? this.refusalBytes : MAX_REASON_BYTES;
  }

  private readRefusal(): void {
    if (this.pendingBytes >= this.reasonBytes) this.refused();
  }

  /** Client: ends with the refusal's status, reason and headers (the body read so far is the reason). */
  private refused(): void {
    const head = this.refusal!;
    const body = this.pendingBytes > 0 ? this.takePending() : EMPTY;
    const reason = body.toString('utf8', 0, Math.min(this.reasonBytes, body.length)).trim() || head.statusText;
    const err = new HandshakeRefusedError(head.status, head.statusText, reason, head.headers);
    this.end({ code: CloseCode.ABNORMAL, reason: err.message, error: err });
  }

  /** EOF: a client reading a refusal's body has all of it. */
  finish(): void {
    if (this.state === State.Refused) this.refused();
  }

  // ---- open ----

  private open(): void {
    this.state = State.Open;
    this.events.onOpen();
    if (this.pendingBytes > 0 && (this.state as State) === State.Open) this.receive(this.takePending());
  }

  private newReceiver(): Receiver {
    return new Receiver({
      expectMasked: this.isServer,
      maxMessageSize: this.cfg.maxBuffered,
      maxFragments: this.cfg.maxFragments,
      compression: this.deflate !== null,
      xor: this.cfg.xor,
    }, this);
  }

  onFrameMessage(opcode: number, data: Buffer, compressed: boolean): void {
    if (!compressed) {
      this.events.onMessage(opcode === Opcode.TEXT ? data.toString('utf8') : data);
      return;
    }
    data = this.deflate!.decompress(data);
    if (opcode === Opcode.TEXT && !isUtf8(data)) throw new ProtocolError('ERR_INVALID_UTF8', 'invalid UTF-8 in a text message', 1007);
    this.inflated += data.length;
    this.events.onMessage(opcode === Opcode.TEXT ? data.toString('utf8') : data);
    // A few small compressed bytes can make a megabyte of zlib work: once this connection has
    // inflated its budget, the rest of its input waits for a later round (core stops reading
    // the socket meanwhile, so TCP slows the peer), and the other connections go first.
    if (this.inflated >= this.cfg.inflateBudget) this.yieldRound();
  }

  private yieldRound(): void {
    const receiver = this.receiver;
    if (this.events.onYield === undefined || receiver === null || this.state >= State.Ended) {
      this.inflated = 0; // no one to resume us: nothing to hold, count afresh
      return;
    }
    receiver.hold();
    if (receiver.isHeld) this.events.onYield();
  }

  /** Core calls this in a later round after onYield: a fresh budget, and the kept input is parsed. */
  resume(): void {
    this.inflated = 0;
    const receiver = this.receiver;
    if (receiver === null) return;
    try {
      receiver.release();
    } catch (caught) {
      // As in receive(): held input parsed now can break a rule or fail to allocate just the same.
      const err = decodeError(caught);
      if (err === null) throw caught;
      this.fail(err);
    }
  }

  onFrameControl(opcode: number, payload: Buffer): void {
    if (opcode === Opcode.PING) {
      // Answered here: the pong's bytes go straight out, no layer above is involved.
      if (this.state === State.Open) this.events.onWrite(encodeControl(Opcode.PONG, payload, !this.isServer));
      return;
    }
    if (opcode === Opcode.PONG) {
      this.events.onPong?.(payload);
      return;
    }
    // Close.
    let code: number | undefined;
    let reason = '';
    if (payload.length === 1) throw new ProtocolError('ERR_PROTOCOL', 'a close frame with a 1-byte payload', 1002);
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidCloseCode(code)) throw new ProtocolError('ERR_PROTOCOL', `invalid close code ${code}`, 1002);
      if (!isUtf8(payload.subarray(2))) throw new ProtocolError('ERR_INVALID_UTF8', 'invalid UTF-8 in a close reason', 1007);
      reason = payload.toString('utf8', 2);
    }
    // Answer with the same code (an empty close with an empty one), then we are done.
    if (this.state === State.Open) this.events.onWrite(encodeClose(code, '', !this.isServer), true);
    this.end({ code: code ?? CloseCode.NO_STATUS, reason });
  }

  private fail(err: ProtocolError): void {
    if (this.state === State.Open) this.events.onWrite(encodeClose(err.closeCode, err.message, !this.isServer), true);
    this.end({ code: err.closeCode, reason: err.message, error: err });
  }

  private end(info: CloseInfo): void {
    if (this.state === State.Ended) return;
    this.state = State.Ended;
    this.receiver?.stop();
    this.pending = null;
    this.pendingBytes = 0;
    this.offer = null;
    this.events.onEnd(info);
  }

  // ---- outgoing ----

  encode(data: Message): Buffer {
    const masked = !this.isServer;
    const deflate = this.deflate;
    if (deflate !== null) {
      const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      if (size >= deflate.threshold) {
        const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        if (this.sharedSeen >= 0) {
          // Shared frames are written in the order they are encoded, as ours are, so a count
          // that moved says a shared compressed message may have gone out before this one.
          const seen = (this.shared as SharedDeflateEncoder).compressed;
          if (seen !== this.sharedSeen) {
            this.sharedSeen = seen;
            deflate.forgetSendContext();
          }
        }
        return encodeFrame(typeof data === 'string' ? Opcode.TEXT : Opcode.BINARY, deflate.compress(bytes), masked, true, true, this.cfg.xor);
      }
    }
    return encodeMessage(data, masked, this.cfg.xor);
  }

  close(code: number = CloseCode.NORMAL, reason = ''): { bytes: Buffer | null; awaitsPeer: boolean } {
    if (this.state === State.Open) {
      const bytes = encodeClose(code, reason, !this.isServer);
      this.state = State.Closing;
      return { bytes, awaitsPeer: true };
    }
    if (this.state === State.Closing) return { bytes: null, awaitsPeer: true };
    return { bytes: null, awaitsPeer: false };
  }

  refuse(reason: string): Buffer {
    if (this.state === State.Open) {
      this.state = State.Closing;
      return encodeClose(CloseCode.TRY_AGAIN_LATER, reason, !this.isServer);
    }
    const wasHandshake = this.state !== State.Ended;
    this.state = State.Ended;
    this.receiver?.stop();
    if (!this.isServer || !wasHandshake) return EMPTY;
    return httpResponse(503, { 'Retry-After': '1' }, reason + '\n');
  }

  // EndingRules: EOF without a close frame is an abnormal end (RFC 6455 §7.1.5), a limit is told
  // in the close frame, and the peer's close frame is read to finish the handshake.
  get peerEof(): 'aborted' {
    return 'aborted';
  }
  get limitNotice(): 'close' {
    return 'close';
  }
  get readsWhileClosing(): boolean {
    return true;
  }

  /**
   * Server, handshake timed out: a client still sending its head hears 408 Request Timeout, one
   * waiting on the policy's answer (verifyClient or httpHandler) hears 503; then nothing more is read.
   */
  timeoutReply(): Buffer | null {
    const state = this.state;
    // A client still reading a refusal's body ends with what it has: the refusal, not a timeout.
    if (!this.isServer && state === State.Refused) this.refused();
    if (!this.isServer || (state !== State.Handshake && state !== State.Verifying && state !== State.Http && state !== State.HttpHead)) return null;
    this.state = State.Ended;
    this.pending = null;
    this.pendingBytes = 0;
    this.offer = null;
    if (state === State.Handshake) return httpResponse(408, {}, 'the request head did not arrive in time\n');
    return httpResponse(503, { 'Retry-After': '1' }, 'the server did not answer in time\n');
  }

  ping(payload?: Buffer): Buffer | null {
    if (this.state !== State.Open) return null;
    return encodeControl(Opcode.PING, payload ?? EMPTY, !this.isServer);
  }

  destroy(): void {
    this.state = State.Ended;
    this.receiver?.stop();
    this.receiver = null;
    this.deflate = null;
    this.pending = null;
    this.pendingBytes = 0;
    this.offer = null;
  }
}

function requestInfoOf(head: ParsedHead, remoteAddress: string): RequestInfo {
  return { url: head.target, headers: head.headers, remoteAddress, origin: head.headers['origin'] ?? head.headers['sec-websocket-origin'] };
}
