/**
 * The error vocabulary: every error switchboard raises is a SwitchboardError whose `code` is one
 * of a closed set, one code per rule, and whose `kind` says whose fault it is.
 *
 * - `'local'`: the calling code: a bad option or URL, an API called in the wrong state, its own abort.
 *   Fix the program.
 * - `'remote'`: the peer: it broke the wire protocol, hit a limit, or was too slow. Its connection
 *   is closed; the others go on.
 * - `'system'`: the network, the operating system or a service: refused, reset, unreachable,
 *   address in use, DNS, TLS, out of memory, Redis, a worker. Node's code is kept as `code` (see
 *   SystemErrorCode) and Node's error is the `cause`.
 *
 * The README's "Errors" table lists the same codes (test/errors.test.ts checks that they agree).
 */

/** switchboard's own codes, each with its kind. */
export const ERROR_CODES = {
  /** A malformed address URL (parseAddress, listen, connect). */
  ERR_INVALID_URL: 'local',
  /** An address URL with a scheme switchboard does not know. */
  ERR_UNKNOWN_SCHEME: 'local',
  /** An option, argument or header value that is not allowed, or a call made twice (listen()). */
  ERR_INVALID_OPTION: 'local',
  /** An API used after close(): attach() on a closed server, a publish on a closed hub. */
  ERR_CLOSED: 'local',
  /** A datagram to send is larger than the endpoint's bound (maxMessageSize, at most 65507 bytes). */
  ERR_DATAGRAM_TOO_LARGE: 'local',
  /** connect() was aborted by its AbortSignal (Node's code for an abort). */
  ABORT_ERR: 'local',
  /** The application's httpHandler threw or rejected (the client got a 500). */
  ERR_HTTP_HANDLER: 'local',
  /** text://: a line longer than maxMessageSize. */
  ERR_LINE_TOO_LONG: 'remote',
  /** frame:// or WebSocket: a message (or what it inflates to) larger than maxMessageSize. */
  ERR_PAYLOAD_TOO_LARGE: 'remote',
  /** WebSocket: the peer broke RFC 6455 or RFC 7692 (a bad frame, close code, compressed data). */
  ERR_PROTOCOL: 'remote',
  /** WebSocket: invalid UTF-8 in a text message or a close reason. */
  ERR_INVALID_UTF8: 'remote',
  /** WebSocket: the opening handshake failed or was refused (HandshakeRefusedError), or the connection closed before it opened. */
  ERR_HANDSHAKE: 'remote',
  /** The protocol or TLS handshake was not done within handshakeTimeout. */
  ERR_HANDSHAKE_TIMEOUT: 'remote',
  /** Nothing received for idleTimeout, or no answer to a heartbeat ping. */
  ERR_IDLE_TIMEOUT: 'remote',
  /** A message that began arriving was not complete within messageTimeout. */
  ERR_MESSAGE_TIMEOUT: 'remote',
  /** The peer did not close within closeTimeout (bytes still unsent, or no close frame came back). */
  ERR_CLOSE_TIMEOUT: 'remote',
  /** A bound on what waits for the peer: it does not read (maxBufferedAmount), or sent too much before its handshake was answered. */
  ERR_BUFFER_FULL: 'remote',
  /** rateLimit with policy 'close': the peer sent more than it allows. */
  ERR_RATE_LIMIT: 'remote',
  /** connect() did not connect within connectTimeout. */
  ERR_CONNECT_TIMEOUT: 'system',
  /** connect() failed with an error that has no code of Node's (the cause says what). */
  ERR_CONNECT: 'system',
  /** listen() failed with an error that has no code of Node's (the cause says what). */
  ERR_LISTEN: 'system',
  /** A socket failed with an error that has no code of Node's (the cause says what). */
  ERR_SOCKET: 'system',
  /** TLS failed with an error other than a certificate check (an OpenSSL ERR_SSL_... code on the cause, or none). */
  ERR_TLS: 'system',
  /** An allocation for a message failed (the process is out of memory or address space): that connection closes. */
  ERR_OUT_OF_MEMORY: 'system',
  /** A hub cannot do its work: Redis unreachable or not answering, the cluster primary silent, cluster outside a worker. */
  ERR_HUB: 'system',
  /** A runWorkers() worker failed or exited before it was listening. */
  ERR_WORKER_START: 'system',
} as const;

export type SwitchboardCode = keyof typeof ERROR_CODES;

/**
 * Node's codes for system errors, kept as they are: libuv's errno names (util.getSystemErrorMap),
 * the DNS codes of node:dns, and the certificate checks of TLS (OpenSSL's X509 verify names).
 */
export const SYSTEM_ERROR_CODES = [
  // libuv errno names
  'E2BIG', 'EACCES', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EAGAIN', 'EAI_ADDRFAMILY', 'EAI_AGAIN',
  'EAI_BADFLAGS', 'EAI_BADHINTS', 'EAI_CANCELED', 'EAI_FAIL', 'EAI_FAMILY', 'EAI_MEMORY', 'EAI_NODATA',
  'EAI_NONAME', 'EAI_OVERFLOW', 'EAI_PROTOCOL', 'EAI_SERVICE', 'EAI_SOCKTYPE', 'EALREADY', 'EBADF', 'EBUSY',
  'ECANCELED', 'ECHARSET', 'ECONNABORTED', 'ECONNREFUSED', 'ECONNRESET', 'EDESTADDRREQ', 'EEXIST', 'EFAULT',
  'EFBIG', 'EFTYPE', 'EHOSTDOWN', 'EHOSTUNREACH', 'EILSEQ', 'EINTR', 'EINVAL', 'EIO', 'EISCONN', 'EISDIR',
  'ELOOP', 'EMFILE', 'EMLINK', 'EMSGSIZE', 'ENAMETOOLONG', 'ENETDOWN', 'ENETUNREACH', 'ENFILE', 'ENOBUFS',
  'ENODATA', 'ENODEV', 'ENOENT', 'ENOMEM', 'ENONET', 'ENOPROTOOPT', 'ENOSPC', 'ENOSYS', 'ENOTCONN', 'ENOTDIR',
  'ENOTEMPTY', 'ENOTSOCK', 'ENOTSUP', 'ENOTTY', 'ENXIO', 'EOF', 'EOVERFLOW', 'EPERM', 'EPIPE', 'EPROTO',
  'EPROTONOSUPPORT', 'EPROTOTYPE', 'ERANGE', 'EREMOTEIO', 'EROFS', 'ESHUTDOWN', 'ESOCKTNOSUPPORT', 'ESPIPE',
  'ESRCH', 'ETIMEDOUT', 'ETXTBSY', 'EUNATCH', 'EXDEV', 'UNKNOWN',
  // node:dns
  'EFORMERR', 'ESERVFAIL', 'ENOTFOUND', 'ENOTIMP', 'EREFUSED', 'EBADQUERY', 'EBADNAME', 'EBADFAMILY', 'EBADRESP',
  'ETIMEOUT', 'EFILE', 'EDESTRUCTION', 'EBADSTR', 'EBADFLAGS', 'ENONAME', 'EBADHINTS', 'ENOTINITIALIZED',
  'ELOADIPHLPAPI', 'EADDRGETNETWORKPARAMS', 'ECANCELLED',
  // TLS certificate checks
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'OUT_OF_MEM', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
] as const;

export type SystemErrorCode = (typeof SYSTEM_ERROR_CODES)[number];

/** Every code a SwitchboardError can have: closed, so a `switch` over it can be exhaustive. */
export type ErrorCode = SwitchboardCode | SystemErrorCode;

/** Whose fault: the calling code, the peer, or the network/OS/a service (see the top of this file). */
export type ErrorKind = 'local' | 'remote' | 'system';

const SYSTEM = new Set<string>(SYSTEM_ERROR_CODES);

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (Object.hasOwn(ERROR_CODES, code) || SYSTEM.has(code));
}

/** The kind of a code: one kind per code. */
export function kindOf(code: ErrorCode): ErrorKind {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as SwitchboardCode] : 'system';
}

export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwitchboardError';
    this.code = code;
    this.kind = kindOf(code);
  }
}

/**
 * A peer broke the rules of the wire protocol. `closeCode` is the close code the connection reports
 * and, on WebSocket, answers with; on raw, line and frame connections it is StreamCloseCode.ABNORMAL.
 */
export class ProtocolError extends SwitchboardError {
  readonly closeCode: number;
  constructor(code: ErrorCode, message: string, closeCode = 1002, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProtocolError';
    this.closeCode = closeCode;
  }
}

/**
 * A transport error (Node's, or the native transport's) as a SwitchboardError: Node's code kept
 * when it is one of SystemErrorCode, else `fallback` (ERR_TLS for an OpenSSL code); Node's error
 * is the `cause`, and its message is kept unless `message` is given. A SwitchboardError passes as it is.
 */
export function transportError(err: unknown, fallback: SwitchboardCode, message?: string): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  if (!(err instanceof Error)) return new SwitchboardError(fallback, message ?? String(err));
  const code = (err as NodeJS.ErrnoException).code;
  const known: ErrorCode = isErrorCode(code) ? code : typeof code === 'string' && /^ERR_(SSL|TLS)_/.test(code) ? 'ERR_TLS' : fallback;
  return new SwitchboardError(known, message ?? err.message, { cause: err });
}
