/**
 * XOR masking (RFC 6455 §5.3), in place, in plain TypeScript: a 32-bit word at a time through a
 * Uint32Array view once the address is 4-aligned; the mask word is built from bytes in memory
 * order, so the result is the same on either endianness. Long runs may go to a faster XOR loop
 * the caller hands in (core passes the native one, see transport/mask.ts): the codec itself
 * loads nothing.
 */
import { randomFillSync } from 'node:crypto';

/** XORs buf[start, end) with a 32-bit mask word (its bytes in memory order), e.g. a native loop. */
export type WordXor = (buf: Uint8Array, start: number, end: number, word: number) => void;

/**
 * From this length the 32-bit word loop wins; below it the view it needs (a Uint32Array per
 * call) costs more than it saves (64 B: 51 ns unrolled bytes vs 100 ns with the view).
 */
const WORD_THRESHOLD = 192;
/** From this length a native loop wins, call cost included. */
const NATIVE_THRESHOLD = 128;
const maskBytes = new Uint8Array(4);
const maskWord = new Uint32Array(maskBytes.buffer);

/**
 * XORs buf[start, end) with the 4-byte `mask` (read at mask[maskAt..maskAt+4)), beginning at
 * position `phase` of the mask (the number of payload bytes already processed, mod 4). `xor`, when
 * given, takes the runs long enough to be worth its call.
 */
export function applyMask(buf: Uint8Array, start: number, end: number, mask: Uint8Array, maskAt: number, phase = 0, xor?: WordXor): void {
  let i = start;
  let p = phase & 3;
  const a = mask[maskAt]!, b = mask[maskAt + 1]!, c = mask[maskAt + 2]!, d = mask[maskAt + 3]!;
  if (xor !== undefined && end - start >= NATIVE_THRESHOLD) {
    xor(buf, start, end, rotatedWord(p, a, b, c, d));
    return;
  }
  if (end - start >= WORD_THRESHOLD) {
    // Bytes until the address is aligned.
    while (((buf.byteOffset + i) & 3) !== 0) {
      buf[i] ^= p === 0 ? a : p === 1 ? b : p === 2 ? c : d;
      i++;
      p = (p + 1) & 3;
    }
    const words = (end - i) >>> 2;
    const w = rotatedWord(p, a, b, c, d);
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k = 0; k < words; k++) view[k] ^= w;
    i += words << 2;
    // p is unchanged: a multiple of 4 bytes went by.
  }
  // The mask rotated to the current phase, then four bytes per step.
  const m0 = p === 0 ? a : p === 1 ? b : p === 2 ? c : d;
  const m1 = p === 0 ? b : p === 1 ? c : p === 2 ? d : a;
  const m2 = p === 0 ? c : p === 1 ? d : p === 2 ? a : b;
  const m3 = p === 0 ? d : p === 1 ? a : p === 2 ? b : c;
  for (; i + 4 <= end; i += 4) {
    buf[i] ^= m0;
    buf[i + 1] ^= m1;
    buf[i + 2] ^= m2;
    buf[i + 3] ^= m3;
  }
  if (i < end) {
    buf[i] ^= m0;
    if (++i < end) {
      buf[i] ^= m1;
      if (++i < end) buf[i] ^= m2;
    }
  }
}

/** The mask bytes a, b, c, d rotated to phase p, as one word with those bytes in memory order. */
function rotatedWord(p: number, a: number, b: number, c: number, d: number): number {
  maskBytes[0] = p === 0 ? a : p === 1 ? b : p === 2 ? c : d;
  maskBytes[1] = p === 0 ? b : p === 1 ? c : p === 2 ? d : a;
  maskBytes[2] = p === 0 ? c : p === 1 ? d : p === 2 ? a : b;
  maskBytes[3] = p === 0 ? d : p === 1 ? a : p === 2 ? b : c;
  return maskWord[0]!;
}

/** A pool of random bytes so each client frame gets a fresh mask without a syscall per frame. */
const POOL_SIZE = 8192;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolAt = POOL_SIZE;

/** Writes 4 fresh random bytes at out[at]. */
export function writeRandomMask(out: Uint8Array, at: number): void {
  if (poolAt + 4 > POOL_SIZE) {
    randomFillSync(pool);
    poolAt = 0;
  }
  out[at] = pool[poolAt]!;
  out[at + 1] = pool[poolAt + 1]!;
  out[at + 2] = pool[poolAt + 2]!;
  out[at + 3] = pool[poolAt + 3]!;
  poolAt += 4;
}
