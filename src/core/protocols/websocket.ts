/**
 * ws:// and wss://: the WebSocket protocol session (RFC 6455 + RFC 7692) for core, both roles.
 *
 * Server: reads the HTTP head; plain HTTP requests get `httpHandler`'s answer (404 by default)
 * and end; upgrade requests are checked (version, key, path, Origin, `verifyClient`), answered
 * with 101, and from then on frames flow. Client: sends the upgrade request when created,
 * verifies the 101 answer, then opens.
 *
 * Everything is synchronous except the two user hooks that may return promises (verifyClient,
 * httpHandler); bytes that arrive meanwhile are held (bounded) and parsed after the answer.
 */
import type { Message, ProtocolEvents, ProtocolFactory, ProtocolSession, SessionContext, SharedEncoder, CloseInfo } from '../../codec/types.js';
import { ProtocolError, SwitchboardError } from '../../errors.js';
import { formatHostPort, type Address } from '../../address.js';
import { CloseCode, isValidCloseCode } from '../../codec/websocket/close-codes.js';
import {
  acceptServerResponse, checkDeflateOptions, clientOffer, DEFAULT_INFLATE_BUDGET, negotiateServer, parseExtensions, PerMessageDeflate,
  type DeflateParams, type PerMessageDeflateOptions,
} from '../../codec/websocket/deflate.js';
import {
  acceptResponse, checkServerResponse, checkUpgradeRequest, clientRequest, HandshakeRefusedError, hasToken, HttpError, httpResponse,
  isUpgradeRequest, newKey, parseHead, type ParsedHead,
} from '../../codec/websocket/handshake.js';
import { Receiver, type FrameSink } from '../../codec/websocket/receiver.js';
import { decodeError } from '../../codec/alloc.js';
import { encodeClose, encodeControl, encodeFrame, Opcode } from '../../codec/websocket/sender.js';
import { isUtf8 } from '../../codec/websocket/utf8.js';

export type { PerMessageDeflateOptions } from '../../codec/websocket/deflate.js';

/** What `verifyClient` sees of an upgrade request (also `conn.request`). */
export interface VerifyClientInfo {
  /** The request target: path and query, e.g. "/chat?room=1". */
  url: string;
  /** Request headers, lower-case names. */
  headers: Readonly<Record<string, string>>;
  remoteAddress: string;
  origin: string | undefined;
}

/** true accepts, false refuses with 401, an object refuses with that status and reason. */
export type VerifyClientResult = boolean | { status: number; reason?: string; headers?: Record<string, string> };

export interface HttpRequest {
  method: string;
  url: string;
  headers: Readonly<Record<string, string>>;
  remoteAddress: string;
}

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** What both roles accept. */
interface WebSocketCommonOptions {
  /** permessage-deflate (RFC 7692). Server: off by default. Client: offered by default (false to not offer). */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Most frames in one fragmented message (default 131072). More closes with 1009. */
  maxFragments?: number;
  /** Most bytes held for an unfinished message or before the handshake answer (default: maxMessageSize). */
  maxBufferedBytes?: number;
  /** Milliseconds for the opening handshake (the general handshakeTimeout wins when both are given). */
  handshakeTimeout?: number;
}

/** `ServerOptions.websocket` (and `server.attach()`'s options): how ws:// and wss:// endpoints answer. */
export interface WebSocketServerOptions extends WebSocketCommonOptions {
  /** The only path (without query) that upgrades, e.g. "/ws". Default: the listen URL's path when it is not "/", else any path. */
  path?: string;
  /** Subprotocols supported; the client's first one that is in this list is chosen. */
  protocols?: readonly string[];
  /** Allowed Origin values (exact, case-insensitive). Requests without an Origin (non-browser clients) are allowed. */
  origins?: readonly string[];
  /** Accept or refuse an upgrade (authentication); may be async. */
  verifyClient?: (info: VerifyClientInfo) => VerifyClientResult | Promise<VerifyClientResult>;
  /** Answers plain HTTP requests on a ws:// listener's port (default: 404). Not used by attached endpoints. */
  httpHandler?: (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;
  /** Largest HTTP request head in bytes (default 16384). */
  maxHeaderBytes?: number;
  /** Most header lines in a request head (default 100). */
  maxHeaders?: number;
}

/** `ConnectOptions.websocket`: how connect() opens ws:// and wss:// connections. */
export interface WebSocketClientOptions extends WebSocketCommonOptions {
  /** Subprotocols offered, in preference order. */
  protocols?: readonly string[];
  /** Extra request headers (Origin, Authorization, Cookie, ...). */
  headers?: Readonly<Record<string, string>>;
}

/** @internal What a session reads: either role's options. */
export type WebSocketOptions = WebSocketServerOptions & WebSocketClientOptions;

// Refused: a client reading the body of a non-101 answer (the reason for the refusal).
const enum State { Handshake, Verifying, Http, Refused, Open, Closing, Ended }

/** Most bytes of a refusal's body a client reads for its reason. */
const MAX_REASON_BYTES = 1024;

const EMPTY = Buffer.alloc(0);

function encodeMessage(data: Message, masked: boolean): Buffer {
  return encodeFrame(typeof data === 'string' ? Opcode.TEXT : Opcode.BINARY, data, masked);
}

/**
 * Every server session shares this encoder: server frames carry no mask, and broadcasts are sent
 * uncompressed even on deflate connections (RSV1 is chosen per message, RFC 7692 §6), so one
 * encoding of a broadcast serves every WebSocket receiver.
 */
export const wsServerEncoder: SharedEncoder = {
  key: 'ws',
  encode(data: Message): Buffer {
    return encodeMessage(data, false);
  },
};

let clientEncoderSeq = 0;

/** Client frames are masked with a fresh mask each, so no two clients can share bytes. */
class ClientEncoder implements SharedEncoder {
  readonly key = `ws-client-${++clientEncoderSeq}`;
  encode(data: Message): Buffer {
    return encodeMessage(data, true);
  }
}

function resolveDeflate(v: WebSocketOptions['perMessageDeflate'], role: 'server' | 'client'): PerMessageDeflateOptions | null {
  if (v === undefined) v = role === 'client';
  if (v === false) return null;
  const o = v === true ? {} : v;
  checkDeflateOptions(o);
  return o;
}

/** What the sessions of one listener (or one connect() call) share: held once, not per connection. */
interface SessionConfig {
  readonly isServer: boolean;
  readonly opts: WebSocketOptions;
  readonly deflateOpts: PerMessageDeflateOptions | null;
  readonly maxBuffered: number;
  readonly address: Address;
  readonly maxMessageSize: number;
  /** Bytes a connection inflates before it yields the rest of the round to others. */
  readonly inflateBudget: number;
}
// Keyed by the listen address (one object per listener); a Server hands every connection the
// same options object, so identity finds the config.
const configs = new WeakMap<Address, SessionConfig[]>();
function configFor(ctx: SessionContext): SessionConfig {
  const opts = ctx.options as WebSocketOptions;
  const isServer = ctx.role === 'server';
  let list = configs.get(ctx.address);
  if (list === undefined) configs.set(ctx.address, (list = []));
  for (const c of list) {
    if (c.isServer === isServer && c.maxMessageSize === ctx.maxMessageSize && c.opts === opts) return c;
  }
  const deflateOpts = resolveDeflate(opts.perMessageDeflate, ctx.role);
  const c: SessionConfig = {
    isServer,
    opts,
    deflateOpts,
    maxBuffered: Math.min(opts.maxBufferedBytes ?? ctx.maxMessageSize, ctx.maxMessageSize),
    address: ctx.address,
    maxMessageSize: ctx.maxMessageSize,
    inflateBudget: deflateOpts?.inflateBudget ?? DEFAULT_INFLATE_BUDGET,
  };
  // A few per options object (one per listener); never a list that grows with connections.
  if (list.length < 16) list.push(c);
  return c;
}

export class WebSocketSession implements ProtocolSession, FrameSink {
  readonly shared: SharedEncoder;
  /** The agreed subprotocol ('' when none). */
  protocol = '';
  /** The agreed Sec-WebSocket-Extensions value ('' when none). */
  extensions = '';

  private state = State.Handshake;
  private readonly cfg: SessionConfig;
  // What is kept of the context (not the context itself: it is an object per connection).
  private readonly remoteAddress: string;
  /** Made when the first frame bytes arrive: an idle connection holds no parser state. */
  private receiver: Receiver | null = null;
  private deflate: PerMessageDeflate | null = null;
  /** Bytes inflated since this session last yielded (see onFrameMessage). */
  private inflated = 0;
  /** Bytes before the head is whole, or held while a hook runs. */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  private readonly key: string = '';
  /**
   * Server: the request head as one latin1 string; `request` is parsed from it when first asked
   * for, so an open connection keeps one string instead of a headers object and its strings.
   */
  private headText: string | null = null;
  private requestInfo: VerifyClientInfo | undefined = undefined;
  /** Client, refused: the answer's head, and the body bytes to wait for (-1: until EOF). */
  private refusal: ParsedHead | null = null;
  private refusalBytes = 0;

  constructor(private readonly events: ProtocolEvents, ctx: SessionContext) {
    this.cfg = configFor(ctx);
    this.remoteAddress = ctx.remote.address;
    this.shared = this.isServer ? wsServerEncoder : new ClientEncoder();
    if (!this.isServer) this.key = newKey();
  }

  private get isServer(): boolean {
    return this.cfg.isServer;
  }
  private get opts(): WebSocketOptions {
    return this.cfg.opts;
  }
  private get deflateOpts(): PerMessageDeflateOptions | null {
    return this.cfg.deflateOpts;
  }
  private get maxBuffered(): number {
    return this.cfg.maxBuffered;
  }
  private get address(): Address {
    return this.cfg.address;
  }
  private get maxMessageSize(): number {
    return this.cfg.maxMessageSize;
  }

  /** Server: the upgrade (or plain HTTP) request, once read. */
  get request(): VerifyClientInfo | undefined {
    if (this.requestInfo === undefined && this.headText !== null) {
      const head = parseHead(Buffer.from(`${this.headText}\r\n\r\n`, 'latin1'), 'request', { maxBytes: Infinity, maxHeaders: Infinity });
      if (head !== null) this.requestInfo = requestInfoOf(head, this.remoteAddress);
    }
    return this.requestInfo;
  }

  /** Client: sends the upgrade request. Server: nothing to do until the request arrives. */
  start(): void {
    if (this.isServer || this.state !== State.Handshake) return;
    const a = this.address;
    const defaultPort = a.transport === 'tls' ? 443 : 80;
    const host = a.transport === 'unix' ? 'localhost'
      : a.port === defaultPort ? formatHostPort(a.host, 0).replace(/:0$/, '') : formatHostPort(a.host, a.port);
    this.events.onWrite(clientRequest({
      host,
      path: a.path || '/',
      key: this.key,
      protocols: this.opts.protocols ?? [],
      extensions: this.deflateOpts ? clientOffer(this.deflateOpts) : undefined,
      headers: this.opts.headers ?? {},
    }));
  }

  /** Whether messages can flow (the handshake is done and no close has been sent). */
  get isOpen(): boolean {
    return this.state === State.Open;
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
        if (this.pendingBytes > this.maxBuffered) {
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
      head = parseHead(buf, this.isServer ? 'request' : 'response', {
        maxBytes: this.opts.maxHeaderBytes ?? 16384,
        maxHeaders: this.opts.maxHeaders ?? 100,
      });
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
    if (!isUpgradeRequest(head)) {
      this.serveHttp(head);
      return;
    }
    try {
      const wanted = this.opts.path ?? (this.address.path !== '/' ? this.address.path.split('?')[0] : undefined);
      if (wanted !== undefined && head.target.split('?')[0] !== wanted) throw new HttpError(404, `no WebSocket endpoint at ${head.target.split('?')[0]}`);
      const up = checkUpgradeRequest(head);
      const origins = this.opts.origins;
      if (origins !== undefined && up.origin !== undefined) {
        const o = up.origin.toLowerCase();
        if (!origins.some((x) => x.toLowerCase() === o)) throw new HttpError(403, `origin ${up.origin} is not allowed`);
      }
      const supported = this.opts.protocols ?? [];
      const protocol = up.protocols.find((p) => supported.includes(p));
      let response: string | undefined;
      let params: DeflateParams | null = null;
      if (up.extensions !== undefined && this.deflateOpts !== null) {
        const offers = parseExtensions(up.extensions);
        if (offers === null) throw new HttpError(400, 'malformed Sec-WebSocket-Extensions');
        const agreed = negotiateServer(offers, this.deflateOpts);
        if (agreed !== null) {
          response = agreed.response;
          params = agreed.params;
        }
      }
      const accept = (): void => this.acceptUpgrade(up.key, protocol, response, params);
      const verify = this.opts.verifyClient;
      if (verify === undefined) {
        accept();
        return;
      }
      // The hook may keep the info object: conn.request is then that same object.
      const info = (this.requestInfo = requestInfoOf(head, this.remoteAddress));
      const result = verify(info);
      if (typeof result === 'boolean' || typeof result === 'object' && typeof (result as Promise<unknown>).then !== 'function') {
        this.verified(result as VerifyClientResult, accept);
        return;
      }
      this.state = State.Verifying;
      (result as Promise<VerifyClientResult>).then(
        (r) => { if (this.state === State.Verifying) this.verified(r, accept); },
        (err: unknown) => {
          if (this.state === State.Verifying) this.refuseHttp(new HttpError(500, `verifyClient failed: ${(err as Error)?.message ?? String(err)}`));
        },
      );
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      this.refuseHttp(err);
    }
  }

  private verified(r: VerifyClientResult, accept: () => void): void {
    if (r === true) accept();
    else if (r === false) this.refuseHttp(new HttpError(401, 'the connection was refused by verifyClient'));
    else this.refuseHttp(new HttpError(r.status, r.reason ?? 'the connection was refused by verifyClient', r.headers));
  }

  private acceptUpgrade(key: string, protocol: string | undefined, extensions: string | undefined, params: DeflateParams | null): void {
    this.protocol = protocol ?? '';
    this.extensions = extensions ?? '';
    if (params !== null) {
      this.deflate = new PerMessageDeflate(params, true, this.deflateOpts!, this.deflateOpts!.maxInflated ?? this.maxMessageSize);
    }
    this.events.onWrite(acceptResponse(key, protocol, extensions));
    this.open();
  }

  private refuseHttp(err: HttpError): void {
    this.events.onWrite(httpResponse(err.status, err.extraHeaders, err.message + '\n'));
    this.end({ code: CloseCode.PROTOCOL_ERROR, reason: err.message, error: err });
  }

  private serveHttp(head: ParsedHead): void {
    const handler = this.opts.httpHandler;
    const req: HttpRequest = { method: head.method, url: head.target, headers: head.headers, remoteAddress: this.remoteAddress };
    const headOnly = head.method === 'HEAD';
    this.state = State.Http;
    const answer = (res: HttpResponse): void => {
      if (this.state !== State.Http) return;
      this.events.onWrite(httpResponse(res.status, res.headers ?? {}, res.body ?? '', headOnly));
      this.end({ code: CloseCode.NORMAL, reason: `HTTP ${res.status}` });
    };
    const failed = (err: unknown): void => {
      if (this.state !== State.Http) return;
      const e = new SwitchboardError('ERR_HTTP_HANDLER', `httpHandler failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      this.events.onWrite(httpResponse(500, {}, 'Internal Server Error\n', headOnly));
      this.end({ code: CloseCode.INTERNAL_ERROR, reason: e.message, error: e });
    };
    if (handler === undefined) {
      answer({ status: 404, body: 'Not Found\n' });
      return;
    }
    let res: HttpResponse | Promise<HttpResponse>;
    try {
      res = handler(req);
    } catch (err) {
      failed(err);
      return;
    }
    if (typeof (res as Promise<HttpResponse>).then === 'function') (res as Promise<HttpResponse>).then(answer, failed);
    else answer(res as HttpResponse);
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
      const protocol = checkServerResponse(head, this.key, this.opts.protocols ?? []);
      const params = acceptServerResponse(head.headers['sec-websocket-extensions'], this.deflateOpts);
      this.protocol = protocol ?? '';
      if (params !== null) {
        this.extensions = head.headers['sec-websocket-extensions'] ?? '';
        this.deflate = new PerMessageDeflate(params, false, this.deflateOpts!, this.deflateOpts!.maxInflated ?? this.maxMessageSize);
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
      maxMessageSize: this.maxBuffered,
      maxFragments: this.opts.maxFragments ?? 131072,
      compression: this.deflate !== null,
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
        return encodeFrame(typeof data === 'string' ? Opcode.TEXT : Opcode.BINARY, deflate.compress(bytes), masked, true);
      }
    }
    return encodeMessage(data, masked);
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
   * waiting on verifyClient or httpHandler hears 503; then nothing more is read.
   */
  timeoutReply(): Buffer | null {
    const state = this.state;
    // A client still reading a refusal's body ends with what it has: the refusal, not a timeout.
    if (!this.isServer && state === State.Refused) this.refused();
    if (!this.isServer || (state !== State.Handshake && state !== State.Verifying && state !== State.Http)) return null;
    this.state = State.Ended;
    this.pending = null;
    this.pendingBytes = 0;
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
  }
}

function requestInfoOf(head: ParsedHead, remoteAddress: string): VerifyClientInfo {
  return { url: head.target, headers: head.headers, remoteAddress, origin: head.headers['origin'] ?? head.headers['sec-websocket-origin'] };
}

export const websocketFactory: ProtocolFactory = (events, ctx) => new WebSocketSession(events, ctx);

