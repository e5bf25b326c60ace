/**
 * Buffers for messages that arrive in pieces. A peer's header may announce a message of any
 * size up to the limit, but memory is taken only for bytes that actually arrived: a buffer
 * starts small and doubles (capped at the announced size), so a peer that announces 60 MiB and
 * sends 15 bytes costs kilobytes, not 60 MiB, and the copying stays under twice the message.
 *
 * An allocation the process cannot make (address space or memory exhausted) ends that
 * connection with ERR_OUT_OF_MEMORY (WebSocket 1009), never the whole server.
 */
import { ProtocolError } from '../errors.js';

/** The first buffer for a message split across chunks holds at least this much (or the whole message, when smaller). */
export const PARTIAL_START = 16 * 1024;

/** Buffer.allocUnsafe, with a failure reported as the peer's message being too big for this process now. */
export function allocate(n: number): Buffer {
  try {
    return Buffer.allocUnsafe(n);
  } catch (err) {
    if (err instanceof RangeError) throw outOfMemory(n, err);
    throw err;
  }
}

/** The first buffer for a message of `total` bytes of which `arrived` are here: small, or all of it when that is small. */
export function firstCapacity(total: number, arrived: number): number {
  return Math.min(total, Math.max(PARTIAL_START, 2 * arrived));
}

/**
 * `buf` (holding `used` bytes) with room for at least `need` bytes, at most `total`: the same
 * buffer when it is big enough, else a new one of twice the size (or `need`), the bytes copied.
 */
export function grow(buf: Buffer, used: number, need: number, total: number): Buffer {
  if (need <= buf.length) return buf;
  const next = allocate(Math.min(total, Math.max(need, 2 * buf.length)));
  buf.copy(next, 0, 0, used);
  return next;
}

/**
 * The error a session reports when decoding failed: a ProtocolError as it is, a failed
 * allocation (anywhere in the decoding path, inflating included) as ERR_OUT_OF_MEMORY; null for
 * anything else (a bug, or a user's handler throwing), which the caller rethrows.
 */
export function decodeError(err: unknown): ProtocolError | null {
  if (err instanceof ProtocolError) return err;
  if (err instanceof RangeError && /allocation failed/i.test(err.message)) return outOfMemory(0, err);
  return null;
}

function outOfMemory(n: number, cause: RangeError): ProtocolError {
  const what = n > 0 ? `${n} bytes` : 'memory';
  return new ProtocolError('ERR_OUT_OF_MEMORY', `could not allocate ${what} for a message (${cause.message})`, 1009, { cause });
}
