/**
 * UTF-8 validation for WebSocket text (RFC 6455 §8.1, RFC 3629).
 *
 * Whole messages go through node's `isUtf8` (simdutf). Fragmented messages and frames that
 * arrive over several TCP chunks use `Utf8Validator`, which carries its state across pieces so
 * an invalid sequence is reported at the piece that contains its first bad byte (fail fast,
 * Autobahn 6.4), not when the message ends.
 */
import { isUtf8 } from 'node:buffer';

export { isUtf8 };

export class Utf8Validator {
  /** Continuation bytes still expected for the current code point. */
  private need = 0;
  /** Allowed range for the next continuation byte (narrowed after E0, ED, F0, F4). */
  private lo = 0x80;
  private hi = 0xbf;

  reset(): void {
    this.need = 0;
    this.lo = 0x80;
    this.hi = 0xbf;
  }

  /** True when no code point is left unfinished (the message may end here). */
  get complete(): boolean {
    return this.need === 0;
  }

  /** Checks buf[start, end) as the continuation of what came before; false at the first bad byte. */
  push(buf: Uint8Array, start: number, end: number): boolean {
    let i = start;
    // Finish a code point left open by the previous piece.
    while (this.need > 0 && i < end) {
      const b = buf[i++]!;
      if (b < this.lo || b > this.hi) return false;
      this.need--;
      this.lo = 0x80;
      this.hi = 0xbf;
    }
    if (i >= end) return true;
    // Bulk: validate everything up to the start of a possibly unfinished last sequence with simdutf.
    let cut = end;
    for (let k = end - 1; k >= i && k >= end - 3; k--) {
      const b = buf[k]!;
      if (b >= 0xc0) { cut = k; break; }
      if (b < 0x80) break;
    }
    if (cut > i && !isUtf8(buf.subarray(i, cut))) return false;
    return this.slow(buf, cut, end);
  }

  private slow(buf: Uint8Array, start: number, end: number): boolean {
    let need = this.need;
    let lo = this.lo;
    let hi = this.hi;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (need === 0) {
        if (b < 0x80) continue;
        if (b < 0xc2) return false;
        if (b < 0xe0) { need = 1; lo = 0x80; hi = 0xbf; }
        else if (b < 0xf0) { need = 2; lo = b === 0xe0 ? 0xa0 : 0x80; hi = b === 0xed ? 0x9f : 0xbf; }
        else if (b < 0xf5) { need = 3; lo = b === 0xf0 ? 0x90 : 0x80; hi = b === 0xf4 ? 0x8f : 0xbf; }
        else return false;
      } else {
        if (b < lo || b > hi) return false;
        need--;
        lo = 0x80;
        hi = 0xbf;
      }
    }
    this.need = need;
    this.lo = lo;
    this.hi = hi;
    return true;
  }
}
