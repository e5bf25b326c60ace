/**
 * ws:// and wss:// in core: the policy of a WebSocket endpoint, applied to the protocol session
 * that codec/websocket/session.ts runs. The session parses the request head and reports it; this
 * module answers it: the path, the allowed origins, the subprotocol chosen, `verifyClient` and
 * `httpHandler` (both may be async: their promises are awaited here, never in the codec), then
 * accept or reject. The options are read once per listener (websocketSessions).
 */
import type { SessionFactory } from '../../codec/types.js';
import { SwitchboardError } from '../../errors.js';
import { formatHostPort, type Address } from '../../address.js';
import { HttpError, type ParsedHead } from '../../codec/websocket/handshake.js';
import type { WordXor } from '../../codec/websocket/mask.js';
import {
  webSocketConfig, WebSocketSession, type HandshakeRequest, type RequestHandler,
} from '../../codec/websocket/session.js';
import type { PerMessageDeflateOptions } from '../../codec/websocket/deflate.js';

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


/**
 * @internal
 * The session factory of one WebSocket listener (or connect() call): the options are read and
 * checked here, once; every session of the listener shares the config made from them.
 */
export function websocketSessions(address: Address, role: 'server' | 'client', maxMessageSize: number,
  options: Readonly<WebSocketOptions>, xor: WordXor | undefined): SessionFactory {
  const cfg = webSocketConfig({
    role,
    maxMessageSize,
    perMessageDeflate: options.perMessageDeflate as boolean | PerMessageDeflateOptions | undefined,
    maxBufferedBytes: options.maxBufferedBytes,
    maxFragments: options.maxFragments,
    maxHeaderBytes: options.maxHeaderBytes,
    maxHeaders: options.maxHeaders,
    xor,
    onRequest: role === 'server' ? serverPolicy(address, options) : undefined,
    client: role === 'client' ? clientRequestOf(address, options) : undefined,
  });
  return (events, remote) => new WebSocketSession(events, cfg, remote.address);
}

function clientRequestOf(a: Address, opts: Readonly<WebSocketClientOptions>): { host: string; path: string; protocols: readonly string[]; headers: Readonly<Record<string, string>> } {
  const defaultPort = a.transport === 'tls' ? 443 : 80;
  const host = a.transport === 'unix' ? 'localhost'
    : a.port === defaultPort ? formatHostPort(a.host, 0).replace(/:0$/, '') : formatHostPort(a.host, a.port);
  return { host, path: a.path || '/', protocols: opts.protocols ?? [], headers: opts.headers ?? {} };
}

/** The answer to every request head of one server endpoint. */
function serverPolicy(address: Address, opts: Readonly<WebSocketServerOptions>): RequestHandler {
  return (session, req) => {
    if (req.upgrade === null && req.invalid === null) {
      serveHttp(opts, session, req.head);
      return;
    }
    const head = req.head;
    const wanted = opts.path ?? (address.path !== '/' ? address.path.split('?')[0] : undefined);
    if (wanted !== undefined && head.target.split('?')[0] !== wanted) {
      session.reject(new HttpError(404, `no WebSocket endpoint at ${head.target.split('?')[0]}`));
      return;
    }
    const up = req.upgrade;
    if (up === null) {
      session.reject(req.invalid!);
      return;
    }
    const origins = opts.origins;
    if (origins !== undefined && up.origin !== undefined) {
      const o = up.origin.toLowerCase();
      if (!origins.some((x) => x.toLowerCase() === o)) {
        session.reject(new HttpError(403, `origin ${up.origin} is not allowed`));
        return;
      }
    }
    const supported = opts.protocols ?? [];
    const protocol = up.protocols.find((p) => supported.includes(p));
    if (req.badExtensions !== null) {
      session.reject(req.badExtensions);
      return;
    }
    const verify = opts.verifyClient;
    if (verify === undefined) {
      session.accept(protocol);
      return;
    }
    verifyThen(verify, session, req, protocol);
  };
}

function verifyThen(verify: NonNullable<WebSocketServerOptions['verifyClient']>, session: WebSocketSession, req: HandshakeRequest,
  protocol: string | undefined): void {
  // The hook may keep the info object: conn.request is then that same object.
  const info = session.requestInfoOf(req.head);
  let result: VerifyClientResult | Promise<VerifyClientResult>;
  try {
    result = verify(info);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    session.reject(err);
    return;
  }
  if (typeof result === 'boolean' || typeof result === 'object' && typeof (result as Promise<unknown>).then !== 'function') {
    verified(session, result as VerifyClientResult, protocol);
    return;
  }
  // The session holds what arrives meanwhile; an answer after it ended (timeout, close) is ignored by it.
  (result as Promise<VerifyClientResult>).then(
    (r) => { if (session.awaitsAnswer) verified(session, r, protocol); },
    (err: unknown) => {
      if (session.awaitsAnswer) session.reject(new HttpError(500, `verifyClient failed: ${(err as Error)?.message ?? String(err)}`));
    },
  );
}

function verified(session: WebSocketSession, r: VerifyClientResult, protocol: string | undefined): void {
  if (r === true) session.accept(protocol);
  else if (r === false) session.reject(new HttpError(401, 'the connection was refused by verifyClient'));
  else session.reject(new HttpError(r.status, r.reason ?? 'the connection was refused by verifyClient', r.headers));
}

function serveHttp(opts: Readonly<WebSocketServerOptions>, session: WebSocketSession, head: ParsedHead): void {
  const handler = opts.httpHandler;
  if (handler === undefined) {
    session.respond(404, {}, 'Not Found\n');
    return;
  }
  const answer = (res: HttpResponse): void => {
    if (session.awaitsAnswer) session.respond(res.status, res.headers ?? {}, res.body ?? '');
  };
  const failed = (err: unknown): void => {
    if (!session.awaitsAnswer) return;
    const e = new SwitchboardError('ERR_HTTP_HANDLER', `httpHandler failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    session.respond(500, {}, 'Internal Server Error\n', e);
  };
  const req: HttpRequest = { method: head.method, url: head.target, headers: head.headers, remoteAddress: session.remoteAddress };
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
