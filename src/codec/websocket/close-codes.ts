/** WebSocket close codes (RFC 6455 §7.4, IANA registry). */

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reserved: "no code was present"; never sent on the wire. */
  NO_STATUS: 1005,
  /** Reserved: "closed without a close frame"; never sent on the wire. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  /** Reserved: TLS handshake failure; never sent on the wire. */
  TLS_HANDSHAKE: 1015,
} as const;

/**
 * Codes that may appear in a close frame, received or sent: the registered 1000-1014 minus the
 * reserved 1004, 1005, 1006, plus the ranges for libraries (3000-3999) and applications (4000-4999).
 */
export function isValidCloseCode(code: number): boolean {
  if (code >= 1000 && code <= 1014) return code !== 1004 && code !== 1005 && code !== 1006;
  return code >= 3000 && code <= 4999;
}

/** The longest close reason: 125 bytes of control payload minus the 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = 123;
