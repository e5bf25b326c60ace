/**
 * XOR masking (RFC 6455 §5.3), in place. Long runs go a 32-bit word at a time through a
 * Uint32Array view once the address is 4-aligned; the mask word is built from bytes in memory
 * order, so the result is the same on either endianness.
 */
import { randomFillSync } from 'node:crypto';

const WORD_THRESHOLD = 32;
const maskBytes = new Uint8Array(4);
const maskWord = new Uint32Array(maskBytes.buffer);

/**
 * XORs buf[start, end) with the 4-byte `mask` (read at mask[maskAt..maskAt+4)), beginning at
 * position `phase` of the mask (the number of payload bytes already processed, mod 4).
 */
export function applyMask(buf: Uint8Array, start: number, end: number, mask: Uint8Array, maskAt: number, phase = 0): void {
  let i = start;
  let p = phase & 3;
  const m0 = mask[maskAt]!, m1 = mask[maskAt + 1]!, m2 = mask[maskAt + 2]!, m3 = mask[maskAt + 3]!;
  if (end - start >= WORD_THRESHOLD) {
    // Bytes until the address is aligned.
    while (((buf.byteOffset + i) & 3) !== 0) {
      buf[i] ^= p === 0 ? m0 : p === 1 ? m1 : p === 2 ? m2 : m3;
      i++;
      p = (p + 1) & 3;
    }
    const words = (end - i) >>> 2;
    if (words > 0) {
      maskBytes[0] = p === 0 ? m0 : p === 1 ? m1 : p === 2 ? m2 : m3;
      maskBytes[1] = p === 0 ? m1 : p === 1 ? m2 : p === 2 ? m3 : m0;
      maskBytes[2] = p === 0 ? m2 : p === 1 ? m3 : p === 2 ? m0 : m1;
      maskBytes[3] = p === 0 ? m3 : p === 1 ? m0 : p === 2 ? m1 : m2;
      const w = maskWord[0]!;
      const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
      for (let k = 0; k < words; k++) view[k] ^= w;
      i += words << 2;
      // p is unchanged: a multiple of 4 bytes went by.
    }
  }
  for (; i < end; i++) {
    buf[i] ^= p === 0 ? m0 : p === 1 ? m1 : p === 2 ? m2 : m3;
    p = (p + 1) & 3;
  }
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
