/**
 * The receive buffer a socket resource keeps between Node's 'data' events and the program's
 * socket_read()/socket_recv() calls: a queue of chunks read with offsets, never concatenated
 * until a read asks for bytes.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;
  /** Bytes ever pushed and ever consumed: stream positions, for control messages tied to a byte. */
  pushedTotal = 0;
  consumedTotal = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.pushedTotal += chunk.length;
  }

  /** The first n bytes (n <= length), without consuming them. */
  peek(n: number): Buffer {
    if (n <= 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    for (let i = 0; copied < n; i++) {
      const c = this.chunks[i]!;
      const start = i === 0 ? this.head : 0;
      const take = Math.min(c.length - start, n - copied);
      c.copy(out, copied, start, start + take);
      copied += take;
    }
    return out;
  }

  consume(n: number): void {
    n = Math.min(n, this.length);
    this.length -= n;
    this.consumedTotal += n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const left = c.length - this.head;
      if (left > n) {
        this.head += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  take(n: number): Buffer {
    const b = Buffer.from(this.peek(n)); // copy: the chunk may be reused by the queue's owner
    this.consume(n);
    return b;
  }

  /** Index of the first byte equal to one of `bytes` within the first `limit` bytes, or -1. */
  indexOfAny(bytes: readonly number[], limit: number): number {
    let pos = 0;
    for (let i = 0; i < this.chunks.length && pos < limit; i++) {
      const c = this.chunks[i]!;
      for (let j = i === 0 ? this.head : 0; j < c.length && pos < limit; j++, pos++) {
        if (bytes.includes(c[j]!)) return pos;
      }
    }
    return -1;
  }

  clear(): void {
    this.consumedTotal += this.length;
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}

/**
 * How many of the first n bytes of `buf` can be decoded as UTF-8 without cutting a character
 * that the following bytes (or bytes still to come) would complete. Returns n when the tail is
 * complete or not UTF-8 at all; a smaller number when it ends inside a character.
 */
export function utf8Boundary(buf: Buffer, n: number): number {
  // Walk back over at most 3 continuation bytes to the lead byte of the last character.
  let i = n - 1;
  let back = 0;
  while (i >= 0 && back < 3 && (buf[i]! & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i < 0) return n;
  const lead = buf[i]!;
  const need = lead >= 0xf0 && lead < 0xf8 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  if (lead < 0xc0 || lead >= 0xf8) return n;
  const have = n - i;
  if (have >= need) return n;
  // The character is incomplete within n: cut before it, unless the bytes after n prove it broken.
  for (let j = n; j < Math.min(buf.length, i + need); j++) {
    if ((buf[j]! & 0xc0) !== 0x80) return n;
  }
  return i;
}
