/** frame://: each message is a 4-byte big-endian length followed by that many bytes. */
import { ProtocolError } from '../errors.js';
import { allocate, firstCapacity, grow } from './alloc.js';
import { SimpleSession } from './simple-session.js';
import { StreamCloseCode, type Message, type ProtocolEvents, type SharedEncoder } from './types.js';

const EMPTY = Buffer.alloc(0);

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

/**
 * Pure frame splitter with a bound on frame size. Frames whole in a chunk are views of it (no
 * copy); a frame split across chunks is gathered in a buffer that grows as its bytes arrive
 * (alloc.ts), so a length prefix announces memory but does not take it.
 */
export class FrameDecoder {
  /** Bytes of a split length prefix held so far (0 to 3) and their value. */
  private prefixLen = 0;
  private prefix = 0;
  /** The payload length of the frame being gathered; -1 while none is. */
  private want = -1;
  private buf: Buffer | null = null;
  private got = 0;
  /** Counts the frames that began without finishing in their chunk; names the one in progress. */
  private seq = 0;
  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer, onFrame: (payload: Buffer) => void): void {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.want >= 0) {
        off = this.gather(chunk, off, onFrame);
        continue;
      }
      if (this.prefixLen === 0 && end - off >= 4) {
        // Fast path: parse in place while whole frames sit in this chunk.
        const len = chunk.readUInt32BE(off);
        if (len > this.maxFrameBytes) throw tooLarge(len, this.maxFrameBytes);
        if (end - off - 4 >= len) {
          onFrame(chunk.subarray(off + 4, off + 4 + len));
          off += 4 + len;
          continue;
        }
        off += 4;
        this.seq++;
        this.begin(len, end - off);
        continue;
      }
      // A length prefix split across chunks, a byte at a time.
      if (this.prefixLen === 0) this.seq++;
      while (this.prefixLen < 4 && off < end) {
        this.prefix = this.prefix * 256 + chunk[off++]!;
        this.prefixLen++;
      }
      if (this.prefixLen < 4) return;
      const len = this.prefix;
      this.prefixLen = 0;
      this.prefix = 0;
      if (len > this.maxFrameBytes) throw tooLarge(len, this.maxFrameBytes);
      if (len === 0) onFrame(EMPTY);
      else this.begin(len, end - off);
    }
  }

  /** 0 when no frame is partly received, else a number for the one in progress (see Receiver.pendingMessage). */
  get pendingMessage(): number {
    return this.prefixLen > 0 || this.want >= 0 ? this.seq : 0;
  }

  /** Bytes held for an unfinished frame. */
  get buffered(): number {
    return this.prefixLen + this.got;
  }

  private begin(len: number, arrived: number): void {
    this.want = len;
    this.buf = allocate(firstCapacity(len, arrived));
    this.got = 0;
  }

  /** Copies more of the frame being gathered from chunk[off..); delivers it when whole; returns the new offset. */
  private gather(chunk: Buffer, off: number, onFrame: (payload: Buffer) => void): number {
    const n = Math.min(this.want - this.got, chunk.length - off);
    const buf = (this.buf = grow(this.buf!, this.got, this.got + n, this.want));
    chunk.copy(buf, this.got, off, off + n);
    this.got += n;
    if (this.got === this.want) {
      const len = this.want;
      this.want = -1;
      this.buf = null;
      this.got = 0;
      onFrame(buf.length === len ? buf : buf.subarray(0, len));
    }
    return off + n;
  }
}

function tooLarge(len: number, max: number): ProtocolError {
  return new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `frame of ${len} bytes is over the limit of ${max} bytes`, StreamCloseCode.ABNORMAL);
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

  pendingMessage(): number {
    return this.ended ? 0 : this.decoder.pendingMessage;
  }
}
