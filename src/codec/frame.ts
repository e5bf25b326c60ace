/** frame://: each message is a 4-byte big-endian length followed by that many bytes. */
import { ProtocolError } from '../errors.js';
import { SimpleSession } from './simple-session.js';
import type { Message, ProtocolEvents, SharedEncoder } from './types.js';

export const frameEncoder = {
  key: 'frame',
  encode(data: Message): Buffer {
    if (typeof data === 'string') {
      const len = Buffer.byteLength(data, 'utf8');
      const out = Buffer.allocUnsafe(4 + len);
      out.writeUInt32BE(len, 0);
      out.write(data, 4, len, 'utf8');
      return out;
    }
    const out = Buffer.allocUnsafe(4 + data.length);
    out.writeUInt32BE(data.length, 0);
    data.copy(out, 4);
    return out;
  },
} satisfies SharedEncoder;

/** Pure frame splitter with a bound on frame size. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer, onFrame: (payload: Buffer) => void): void {
    if (this.bytes === 0) {
      // Fast path: parse in place while whole frames sit in this chunk.
      let off = 0;
      while (chunk.length - off >= 4) {
        const len = chunk.readUInt32BE(off);
        if (len > this.maxFrameBytes) throw tooLarge(len, this.maxFrameBytes);
        if (chunk.length - off - 4 < len) break;
        onFrame(chunk.subarray(off + 4, off + 4 + len));
        off += 4 + len;
      }
      if (off === chunk.length) return;
      chunk = Buffer.from(chunk.subarray(off));
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes >= 4) {
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len > this.maxFrameBytes) throw tooLarge(len, this.maxFrameBytes);
      if (this.bytes < 4 + len) return;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
      onFrame(all.subarray(4, 4 + len));
      const rest = all.subarray(4 + len);
      this.chunks = rest.length ? [rest] : [];
      this.bytes = rest.length;
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    return Buffer.concat(this.chunks, this.bytes).subarray(0, n);
  }
}

function tooLarge(len: number, max: number): ProtocolError {
  return new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `frame of ${len} bytes is over the limit of ${max} bytes`, 1009);
}

export class FrameSession extends SimpleSession {
  private readonly decoder: FrameDecoder;
  /** One callback per connection (not per chunk); frames after a bad one are not delivered. */
  private readonly onFrame = (payload: Buffer): void => {
    if (!this.ended) this.events.onMessage(payload);
  };

  constructor(events: ProtocolEvents, maxFrameBytes: number) {
    super(events, frameEncoder);
    this.decoder = new FrameDecoder(maxFrameBytes);
  }

  protected decode(chunk: Buffer): void {
    this.decoder.push(chunk, this.onFrame);
  }
}
