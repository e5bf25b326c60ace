/**
 * Every error switchboard raises is a SwitchboardError with a stable `code`
 * (Node's own codes such as ECONNREFUSED pass through unchanged on the `cause`).
 */
export type ErrorCode =
  | 'ERR_INVALID_URL'
  | 'ERR_UNKNOWN_SCHEME'
  | 'ERR_INVALID_OPTION'
  | 'ERR_LINE_TOO_LONG'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_PROTOCOL'
  | 'ERR_INVALID_UTF8'
  | 'ERR_CONNECT_TIMEOUT'
  | 'ERR_HANDSHAKE'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_IDLE_TIMEOUT'
  | 'ERR_SERVER_FULL'
  | 'ERR_BUFFER_FULL'
  | 'ERR_RATE_LIMIT'
  | 'ERR_NOT_OPEN'
  | 'ERR_CLOSED'
  | 'ERR_HUB'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_MESSAGE_TIMEOUT'
  | 'ERR_CLOSE_TIMEOUT'
  | (string & {});

export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwitchboardError';
    this.code = code;
  }
}

/** A peer broke the rules of the wire protocol; `closeCode` is the WebSocket close code to answer with. */
export class ProtocolError extends SwitchboardError {
  readonly closeCode: number;
  constructor(code: ErrorCode, message: string, closeCode = 1002, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProtocolError';
    this.closeCode = closeCode;
  }
}
