/**
 * Frame encoding (RFC 6455 §5.2). Every frame is built in one allocation, header and payload
 * together. Server frames are unmasked; client frames get a fresh random mask each and are
 * masked in place in that same buffer.
 */
import { SwitchboardError } from '../../errors.js';
import { isValidCloseCode, MAX_CLOSE_REASON_BYTES } from './close-codes.js';
import { applyMask, writeRandomMask, type WordXor } from './mask.js';

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

function headerLength(len: number, masked: boolean): number {
  return (len < 126 ? 2 : len < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/** Writes the header into out[0..) and returns the payload offset. */
function writeHeader(out: Buffer, opcode: number, len: number, masked: boolean, rsv1: boolean, fin: boolean): number {
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  let at: number;
  if (len < 126) {
    out[1] = len;
    at = 2;
  } else if (len < 0x10000) {
    out[1] = 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
    at = 4;
  } else {
    out[1] = 127;
    // Lengths here are below 2^53: split into high and low 32-bit halves.
    out.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    out.writeUInt32BE(len >>> 0, 6);
    at = 10;
  }
  if (masked) {
    out[1] |= 0x80;
    writeRandomMask(out, at);
    at += 4;
  }
  return at;
}

/**
 * One frame. `payload` as a string is written as UTF-8 straight into the frame buffer.
 * `masked` is true for frames a client sends; `xor` is a faster XOR loop for long payloads, if any.
 */
export function encodeFrame(opcode: number, payload: Buffer | string, masked: boolean, rsv1 = false, fin = true, xor?: WordXor): Buffer {
  if (typeof payload === 'string') {
    const len = payload.length < 64 && isAsciiShort(payload) ? payload.length : Buffer.byteLength(payload, 'utf8');
    const out = Buffer.allocUnsafe(headerLength(len, masked) + len);
    const at = writeHeader(out, opcode, len, masked, rsv1, fin);
    if (len > 0) out.write(payload, at, len, 'utf8');
    if (masked) applyMask(out, at, at + len, out, at - 4, 0, xor);
    return out;
  }
  const len = payload.length;
  const out = Buffer.allocUnsafe(headerLength(len, masked) + len);
  const at = writeHeader(out, opcode, len, masked, rsv1, fin);
  if (len > 0) payload.copy(out, at);
  if (masked) applyMask(out, at, at + len, out, at - 4, 0, xor);
  return out;
}

/** Cheap check for short strings: when all code units are ASCII the byte length is the string length. */
function isAsciiShort(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Cuts `reason` to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(reason: string, max: number): Buffer {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= max) return bytes;
  let end = max;
  // Step back over continuation bytes so the cut falls on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * A close frame. `code` undefined sends an empty close (the answer to an empty close);
 * reserved codes (1005, 1006, 1015 and other invalid ones) are refused, and the reason is cut
 * to 123 bytes on a character boundary.
 */
export function encodeClose(code: number | undefined, reason: string, masked: boolean): Buffer {
  if (code === undefined) return encodeFrame(Opcode.CLOSE, Buffer.alloc(0), masked);
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `close code ${code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)`);
  }
  const text = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return encodeFrame(Opcode.CLOSE, payload, masked);
}

/** A ping or pong; control payloads are at most 125 bytes. */
export function encodeControl(opcode: typeof Opcode.PING | typeof Opcode.PONG, payload: Buffer, masked: boolean): Buffer {
  if (payload.length > 125) throw new SwitchboardError('ERR_INVALID_OPTION', `control frame payload of ${payload.length} bytes is over 125`);
  return encodeFrame(opcode, payload, masked);
}
