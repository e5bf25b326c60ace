/**
 * The opening handshake (RFC 6455 §4): an HTTP/1.1 head parser with limits, the server's checks
 * and answers, and the client's request and verification of the 101 response.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ProtocolError, SwitchboardError } from '../../errors.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64. */
export function newKey(): string {
  return randomBytes(16).toString('base64');
}

export interface HeadLimits {
  /** Largest head (start line + headers) in bytes. */
  maxBytes: number;
  /** Most header lines. */
  maxHeaders: number;
}

export interface ParsedHead {
  /** Request: method, target. Response: status code and reason (in `method` = '' and `target` = ''). */
  method: string;
  target: string;
  status: number;
  statusText: string;
  version: string;
  /** Lower-case names; repeated headers joined with ", " (§4.1: all these headers are lists or single). */
  headers: Record<string, string>;
  /** Bytes the head took, including the blank line; what follows belongs to the protocol. */
  length: number;
  /** Bytes of the start line and header lines, without the line end of the last one. */
  textLength: number;
}

/** Thrown while parsing a head: the HTTP status a server answers with. */
export class HttpError extends ProtocolError {
  constructor(readonly status: number, message: string, readonly extraHeaders: Record<string, string> = {}) {
    super('ERR_HANDSHAKE', message, 1002);
  }
}

/** Header fields that may appear once only; a second line is a 400 (RFC 9112 §3.2, RFC 6455 §11.3.1, §11.3.5). */
const SINGLE_IN_REQUEST = new Set(['host', 'content-length', 'sec-websocket-key', 'sec-websocket-version']);
const SINGLE_IN_RESPONSE = new Set(['content-length', 'sec-websocket-accept']);
/** Whether `s` holds a control character other than HTAB, which no field value may (RFC 9110 §5.5); CR and NUL are among them. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}
/** uri-host [ ":" port ] (RFC 3986 reg-name, IPv4, IP-literal), or empty. */
const HOST = /^(?:\[[0-9A-Fa-f:.vV]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d*)?$/;

/**
 * Where the head in `buf` ends: the offset just past its blank line, and the offset where that
 * blank line starts (the end of the header text); null when it has not arrived. Lines end at LF,
 * and a CR before the LF is part of the line end: RFC 9112 §2.2 lets a recipient take a lone LF
 * as a line terminator, and some clients (hand-typed requests, embedded stacks) send one.
 */
function findHeadEnd(buf: Buffer): { text: number; length: number } | null {
  let line = 0;
  for (let lf = buf.indexOf(0x0a); lf !== -1; lf = buf.indexOf(0x0a, line)) {
    if (lf === line || (lf === line + 1 && buf[line] === 0x0d)) return { text: line, length: lf + 1 };
    line = lf + 1;
  }
  return null;
}

/**
 * Client side: the server answered the upgrade request with a status other than 101. `reason`
 * is the response body as text (switchboard servers put verifyClient's reason there), or the
 * status line's text when there is no body; `headers` are the response's (a Location, a
 * Retry-After, ...).
 */
export class HandshakeRefusedError extends ProtocolError {
  constructor(readonly status: number, statusText: string, readonly reason: string, readonly headers: Readonly<Record<string, string>>) {
    const said = `${status} ${statusText}`.trim();
    super('ERR_HANDSHAKE', `WebSocket handshake failed: the server answered ${said}${reason && reason !== statusText ? `: ${reason}` : ''}`, 1002);
    this.name = 'HandshakeRefusedError';
  }
}

/**
 * Finds and parses an HTTP head at the start of `buf`. Returns null while the blank line has not
 * arrived yet (and the head is within its limit); throws HttpError on bad input: a bare CR, a NUL
 * or another control character in a line, obs-fold, whitespace before a colon, a repeated
 * single-value header, and for requests a missing or repeated Host (RFC 9112 §3.2, §5).
 */
export function parseHead(buf: Buffer, kind: 'request' | 'response', limits: HeadLimits): ParsedHead | null {
  // Reject what is clearly not HTTP as soon as its first bytes arrive, not at the size limit.
  const probe = Math.min(buf.length, 16);
  for (let i = 0; i < probe; i++) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0x0d || c === 0x0a) {
      if (i === 0) throw new HttpError(400, 'not an HTTP request');
      break;
    }
    if (c < 0x21 || c > 0x7e) throw new HttpError(400, 'not an HTTP request');
  }
  const end = findHeadEnd(buf.length > limits.maxBytes ? buf.subarray(0, limits.maxBytes) : buf);
  if (end === null) {
    if (buf.length >= limits.maxBytes) throw new HttpError(431, `HTTP head over ${limits.maxBytes} bytes`);
    return null;
  }
  // Up to the last line's end (LF or CRLF), then lines split at LF with an optional CR before it.
  let textEnd = end.text;
  if (textEnd > 0 && buf[textEnd - 1] === 0x0a) textEnd -= textEnd > 1 && buf[textEnd - 2] === 0x0d ? 2 : 1;
  const lines = buf.toString('latin1', 0, textEnd).split(/\r?\n/);
  if (lines.length - 1 > limits.maxHeaders) throw new HttpError(431, `more than ${limits.maxHeaders} header lines`);
  const head: ParsedHead = { method: '', target: '', status: 0, statusText: '', version: '', headers: {}, length: end.length, textLength: textEnd };
  const start = lines[0]!;
  if (kind === 'request') {
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP\/(\d\.\d)$/.exec(start);
    if (!m) throw new HttpError(400, 'malformed request line');
    head.method = m[1]!;
    head.target = m[2]!;
    head.version = m[3]!;
  } else {
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(start);
    if (!m || hasControl(m[3] ?? '')) throw new HttpError(400, 'malformed status line');
    head.version = m[1]!;
    head.status = Number(m[2]);
    head.statusText = m[3] ?? '';
  }
  const single = kind === 'request' ? SINGLE_IN_REQUEST : SINGLE_IN_RESPONSE;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    // Obsolete line folding (a line starting with white space) is refused, as RFC 9112 §5.2 allows,
    // and so is white space before the colon (§5.1: MUST be refused with 400).
    if (colon <= 0) throw new HttpError(400, 'malformed header line');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HttpError(400, 'malformed header name');
    const raw = line.slice(colon + 1);
    // A CR left here was a bare CR (not before an LF): RFC 9112 §2.2 says such an element is invalid.
    if (hasControl(raw)) throw new HttpError(400, `invalid character in the ${name} header`);
    const key = name.toLowerCase();
    const value = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    const prev = head.headers[key];
    if (prev !== undefined && single.has(key)) throw new HttpError(400, `more than one ${name} header`);
    head.headers[key] = prev === undefined ? value : `${prev}, ${value}`;
  }
  const length = head.headers['content-length'];
  if (length !== undefined && !/^\d+$/.test(length)) throw new HttpError(400, 'malformed Content-Length');
  if (kind === 'request') {
    const host = head.headers['host'];
    if (host === undefined) {
      if (head.version !== '1.0') throw new HttpError(400, 'an HTTP/1.1 request needs a Host header');
    } else if (!HOST.test(host)) {
      throw new HttpError(400, 'malformed Host header');
    }
    // Both framings at once is how request smuggling starts (RFC 9112 §6.1 lets a server refuse it).
    if (length !== undefined && head.headers['transfer-encoding'] !== undefined) {
      throw new HttpError(400, 'both Content-Length and Transfer-Encoding');
    }
  }
  return head;
}

/** Whether a comma-separated header holds `token` (case-insensitive), as Connection and Upgrade do. */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** Splits a comma-separated list into trimmed, non-empty items. */
export function listOf(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Whether a request asks for a WebSocket (Upgrade: websocket); anything else is plain HTTP. */
export function isUpgradeRequest(head: ParsedHead): boolean {
  return hasToken(head.headers['upgrade'], 'websocket');
}

export interface UpgradeRequest {
  key: string;
  protocols: string[];
  extensions: string | undefined;
  origin: string | undefined;
}

/** Checks the upgrade request's required parts (§4.2.1); throws HttpError with the status to answer. */
export function checkUpgradeRequest(head: ParsedHead): UpgradeRequest {
  if (head.method !== 'GET') throw new HttpError(405, 'a WebSocket upgrade must use GET', { Allow: 'GET' });
  if (head.version !== '1.1' && !(Number(head.version) > 1.1)) throw new HttpError(400, 'a WebSocket upgrade needs HTTP/1.1');
  if (!hasToken(head.headers['connection'], 'upgrade')) throw new HttpError(400, 'Connection header must include "Upgrade"');
  // What follows the head is frames: a body would be read as frames (or hide them from a proxy).
  const length = head.headers['content-length'];
  if (head.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0)) {
    throw new HttpError(400, 'a WebSocket upgrade request must not have a body');
  }
  const version = head.headers['sec-websocket-version'];
  if (version !== '13') {
    throw new HttpError(426, `unsupported WebSocket version ${version === undefined ? '(none)' : JSON.stringify(version)}; use 13`,
      { 'Sec-WebSocket-Version': '13' });
  }
  const key = head.headers['sec-websocket-key'];
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) throw new HttpError(400, 'Sec-WebSocket-Key must be 16 bytes in base64');
  const protocols = listOf(head.headers['sec-websocket-protocol']);
  for (const p of protocols) if (!TOKEN.test(p)) throw new HttpError(400, 'invalid Sec-WebSocket-Protocol');
  return {
    key,
    protocols,
    extensions: head.headers['sec-websocket-extensions'],
    origin: head.headers['origin'] ?? head.headers['sec-websocket-origin'],
  };
}

/** The 101 answer. */
export function acceptResponse(key: string, protocol: string | undefined, extensions: string | undefined): Buffer {
  let s = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n`;
  if (protocol !== undefined) s += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  if (extensions !== undefined) s += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found', 304: 'Not Modified',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
  426: 'Upgrade Required', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** A complete HTTP/1.1 response that closes the connection. */
export function httpResponse(status: number, headers: Record<string, string>, body: string | Buffer, headOnly = false): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let s = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Status'}\r\n`;
  const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  for (const [k, v] of Object.entries(headers)) {
    // No CR/LF may reach the wire from user-given headers (response splitting).
    if (!TOKEN.test(k) || /[\r\n]/.test(v)) continue;
    if (k.toLowerCase() === 'connection' || k.toLowerCase() === 'content-length') continue;
    s += `${k}: ${v}\r\n`;
  }
  if (!lower.has('content-type') && payload.length > 0) s += 'Content-Type: text/plain; charset=utf-8\r\n';
  s += `Content-Length: ${payload.length}\r\nConnection: close\r\n\r\n`;
  const head = Buffer.from(s, 'latin1');
  return headOnly || payload.length === 0 ? head : Buffer.concat([head, payload]);
}

export interface ClientRequestSpec {
  host: string;
  path: string;
  key: string;
  protocols: readonly string[];
  extensions: string | undefined;
  headers: Readonly<Record<string, string>>;
}

/** The client's upgrade request (§4.1). */
export function clientRequest(spec: ClientRequestSpec): Buffer {
  let s = `GET ${spec.path} HTTP/1.1\r\nHost: ${spec.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${spec.key}\r\nSec-WebSocket-Version: 13\r\n`;
  if (spec.protocols.length > 0) s += `Sec-WebSocket-Protocol: ${spec.protocols.join(', ')}\r\n`;
  if (spec.extensions !== undefined) s += `Sec-WebSocket-Extensions: ${spec.extensions}\r\n`;
  for (const [k, v] of Object.entries(spec.headers)) {
    if (!TOKEN.test(k) || /[\r\n]/.test(v)) throw new SwitchboardError('ERR_INVALID_OPTION', `invalid header ${JSON.stringify(k)}`);
    s += `${k}: ${v}\r\n`;
  }
  return Buffer.from(s + '\r\n', 'utf8');
}

/** Client side: checks the server's answer (§4.1, the client's checks). Returns the chosen subprotocol. */
export function checkServerResponse(head: ParsedHead, key: string, offered: readonly string[]): string | undefined {
  const fail = (why: string): never => { throw new ProtocolError('ERR_HANDSHAKE', `WebSocket handshake failed: ${why}`, 1002); };
  if (head.status !== 101) return fail(`the server answered ${head.status} ${head.statusText}`.trim());
  if (!hasToken(head.headers['upgrade'], 'websocket')) return fail('no "Upgrade: websocket" in the response');
  if (!hasToken(head.headers['connection'], 'upgrade')) return fail('no "Connection: Upgrade" in the response');
  if (head.headers['sec-websocket-accept'] !== acceptFor(key)) return fail('Sec-WebSocket-Accept does not match the key');
  const protocol = head.headers['sec-websocket-protocol'];
  if (protocol !== undefined) {
    if (!offered.includes(protocol)) return fail(`the server chose subprotocol "${protocol}", which was not offered`);
    return protocol;
  }
  return undefined;
}
