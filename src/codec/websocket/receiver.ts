/**
 * Frame parser (RFC 6455 §5). Bytes in, whole messages and control frames out.
 *
 * Frames that sit whole in a chunk are unmasked in place and handed on as subarrays of that
 * chunk: many frames per chunk, no copy. Only a frame split across chunks is copied, into a
 * buffer that grows as its bytes arrive (doubling up to the length its header announced, see
 * alloc.ts: a header is a promise, not bytes), and unmasked as they arrive so that UTF-8 can be
 * checked before the frame is complete. A fragmented message is gathered in one growing buffer
 * (doubling, capped by the message limit), so thousands of tiny fragments cost no per-fragment
 * objects.
 *
 * The sink may `hold()` the receiver between two frames (the session did its share of work for
 * this event-loop round): the bytes not yet parsed are kept, in order, and parsed on `release()`.
 * Holding is only a flag checked once per frame, so it costs nothing to traffic that never holds.
 */
import { ProtocolError } from '../../errors.js';
import { allocate, firstCapacity, grow } from '../alloc.js';
import { applyMask, type WordXor } from './mask.js';
import { Opcode } from './sender.js';
import { isUtf8, Utf8Validator } from './utf8.js';

export interface ReceiverOptions {
  /** True on the server: frames from a client must be masked. On the client they must not be. */
  expectMasked: boolean;
  /** Largest message (after reassembly, before inflating) in bytes. */
  maxMessageSize: number;
  /** Most frames one fragmented message may have. */
  maxFragments: number;
  /** Whether permessage-deflate was negotiated (RSV1 allowed on a message's first frame). */
  compression: boolean;
  /** A faster XOR loop for long payloads (a native one, handed in by core), if any. */
  xor?: WordXor;
}

/** Where the receiver delivers; implemented by the session (no closures per frame). */
export interface FrameSink {
  /**
   * A whole data message. `data` is unmasked; when `compressed` is false and the message is
   * text, it has been checked as UTF-8 already.
   */
  onFrameMessage(opcode: number, data: Buffer, compressed: boolean): void;
  /** A ping, pong or close frame, unmasked. */
  onFrameControl(opcode: number, payload: Buffer): void;
}

const EMPTY = Buffer.alloc(0);

function protocolError(message: string, closeCode = 1002): ProtocolError {
  return new ProtocolError(closeCode === 1007 ? 'ERR_INVALID_UTF8' : closeCode === 1009 ? 'ERR_PAYLOAD_TOO_LARGE' : 'ERR_PROTOCOL', message, closeCode);
}

/** Receiver.halt: parsing, held (bytes kept for release()), stopped (bytes ignored). */
const RUNNING = 0, HELD = 1, STOPPED = 2;

export class Receiver {
  private halt: number = RUNNING;
  /** Bytes that arrived or were left while held, in arrival order (null when none). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  // Options, kept as fields: no options object per connection.
  private readonly expectMasked: boolean;
  private readonly maxMessageSize: number;
  private readonly maxFragments: number;
  private readonly compression: boolean;
  private readonly xor: WordXor | undefined;

  /**
   * Allocated on first need, so an idle connection holds none: [0, 14) the header bytes of a
   * frame whose header was split across chunks, [14, 18) the mask of a frame whose payload was.
   */
  private scratch: Buffer | null = null;
  private headLen = 0;

  // The frame being read.
  private fin = false;
  private rsv1 = false;
  private opcode = 0;
  private masked = false;
  private payloadLen = 0;

  // A frame whose payload is split across chunks (the buffer may be shorter than the payload: it grows).
  private partial: Buffer | null = null;
  private partialAt = 0;
  /** Frames completed so far; names the message in progress for pendingMessage. */
  private frames = 0;
  /** `frames` when the fragmented message in progress began. */
  private msgStart = 0;

  // The fragmented message being gathered (msgOpcode 0: none).
  private msgOpcode = 0;
  private msgCompressed = false;
  private fragments = 0;
  private acc: Buffer | null = null;
  private accLen = 0;
  /** Incremental UTF-8 state for uncompressed text spread over fragments or chunks (made on first need). */
  private utf8State: Utf8Validator | null = null;

  constructor(opts: ReceiverOptions, private readonly sink: FrameSink) {
    this.expectMasked = opts.expectMasked;
    this.maxMessageSize = opts.maxMessageSize;
    this.maxFragments = opts.maxFragments;
    this.compression = opts.compression;
    this.xor = opts.xor;
  }

  private get utf8(): Utf8Validator {
    return (this.utf8State ??= new Utf8Validator());
  }

  private get head(): Buffer {
    return (this.scratch ??= Buffer.alloc(18));
  }

  /** Stops parsing: bytes after a close frame or an error are ignored. */
  stop(): void {
    this.halt = STOPPED;
    this.partial = null;
    this.acc = null;
    this.held = null;
    this.heldBytes = 0;
  }

  /**
   * 0 when no frame or message is partly received; otherwise a number for the one in progress,
   * the same until it completes (control frames between its fragments included), different for
   * the next one. Core times unfinished messages with it (messageTimeout) at no cost per frame.
   */
  get pendingMessage(): number {
    if (this.halt === STOPPED) return 0;
    if (this.msgOpcode !== 0) return this.msgStart + 1;
    return this.headLen > 0 || this.partial !== null ? this.frames + 1 : 0;
  }

  /**
   * Called by the sink from inside a message or control callback: parsing stops after that frame,
   * and the rest of the input (and whatever is pushed meanwhile) waits for release().
   */
  hold(): void {
    if (this.halt === RUNNING) this.halt = HELD;
  }

  /** Whether the receiver is held (input waits for release()). */
  get isHeld(): boolean {
    return this.halt === HELD;
  }

  /**
   * Parses what was kept while held, in order. The sink may hold again midway: the rest stays
   * kept. Throws ProtocolError as push() does.
   */
  release(): void {
    if (this.halt !== HELD) return;
    this.halt = RUNNING;
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    if (held === null) return;
    for (let i = 0; i < held.length; i++) {
      if (this.halt !== RUNNING) {
        // Held again (or stopped): what is left goes behind what push() just kept, in order.
        if (this.halt === HELD) for (let j = i; j < held.length; j++) this.keep(held[j]!, 0);
        return;
      }
      this.push(held[i]!);
    }
  }

  /** Bytes held for unfinished frames and messages, and input kept while held (for limits and metrics). */
  get buffered(): number {
    return this.headLen + (this.partial ? this.partialAt : 0) + this.accLen + this.heldBytes;
  }

  private keep(chunk: Buffer, off: number): void {
    const rest = off === 0 ? chunk : chunk.subarray(off);
    (this.held ??= []).push(rest);
    this.heldBytes += rest.length;
  }

  /** Feeds bytes; throws ProtocolError (with the close code) when the peer breaks a rule. */
  push(chunk: Buffer): void {
    if (this.halt !== RUNNING) {
      if (this.halt === HELD && chunk.length > 0) this.keep(chunk, 0);
      return;
    }
    let off = 0;
    const end = chunk.length;
    while (off < end && this.halt === RUNNING) {
      if (this.partial !== null) {
        off = this.continuePartial(chunk, off);
        continue;
      }
      let src: Buffer = chunk;
      let at = off;
      if (this.headLen > 0) {
        // Complete a split header from this chunk, a few bytes at most.
        off = this.fillHead(chunk, off);
        if (this.headLen < 2 || this.headLen < this.headerSize(this.head[1]!)) return;
        src = this.scratch!;
        at = 0;
      } else if (end - off < 2 || end - off < this.headerSize(chunk[off + 1]!)) {
        this.fillHead(chunk, off);
        return;
      }
      const hdr = this.parseHeader(src, at);
      // The mask is the header's last 4 bytes, read where they lie (no copy for whole frames).
      const maskAt = at + hdr - 4;
      if (src === this.scratch) {
        this.headLen = 0;
      } else {
        off += hdr;
      }
      const len = this.payloadLen;
      if (end - off >= len) {
        const pend = off + len;
        if (this.masked && len > 0) applyMask(chunk, off, pend, src, maskAt, 0, this.xor);
        this.frameComplete(chunk, off, pend, false);
        off = pend;
      } else {
        // Payload split across chunks: copied as it arrives, into a buffer sized by what is here.
        if (this.masked) src.copy(this.head, 14, maskAt, maskAt + 4);
        this.partial = allocate(firstCapacity(len, end - off));
        this.partialAt = 0;
      }
    }
    // Held by the sink after a frame: the unparsed rest is kept (a view: frames after it are still masked).
    if (off < end && this.isHeld) this.keep(chunk, off);
  }

  private headerSize(b1: number): number {
    const len7 = b1 & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
  }

  /** Copies header bytes from chunk[off..) into `head` until the header is whole; returns the new offset. */
  private fillHead(chunk: Buffer, off: number): number {
    const end = chunk.length;
    while (off < end) {
      const need = this.headLen < 2 ? 2 : this.headerSize(this.head[1]!);
      if (this.headLen >= need) break;
      this.head[this.headLen++] = chunk[off++]!;
    }
    return off;
  }

  /** Reads and checks a header at src[at..); sets the frame fields; returns the header size. */
  private parseHeader(src: Buffer, at: number): number {
    const b0 = src[at]!;
    const b1 = src[at + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let size = 2;

    if ((b0 & 0x30) !== 0) throw protocolError('RSV2 and RSV3 must be clear (no extension defines them)');
    if (masked !== this.expectMasked) {
      throw protocolError(this.expectMasked ? 'a client frame was not masked' : 'a server frame was masked');
    }
    if (opcode >= Opcode.CLOSE) {
      if (opcode > Opcode.PONG) throw protocolError(`reserved opcode 0x${opcode.toString(16)}`);
      if (!fin) throw protocolError('a control frame was fragmented');
      if (len > 125) throw protocolError('a control frame payload is over 125 bytes');
      if (rsv1) throw protocolError('RSV1 set on a control frame');
    } else if (opcode === Opcode.CONTINUATION) {
      if (this.msgOpcode === 0) throw protocolError('a continuation frame without a message to continue');
      if (rsv1) throw protocolError('RSV1 set on a continuation frame');
    } else if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) {
      if (this.msgOpcode !== 0) throw protocolError('a new data frame inside a fragmented message');
      if (rsv1 && !this.compression) throw protocolError('RSV1 set but no extension was negotiated');
    } else {
      throw protocolError(`reserved opcode 0x${opcode.toString(16)}`);
    }

    if (len === 126) {
      len = (src[at + 2]! << 8) | src[at + 3]!;
      size = 4;
    } else if (len === 127) {
      const hi = src.readUInt32BE(at + 2);
      const lo = src.readUInt32BE(at + 6);
      if (hi & 0x80000000) throw protocolError('a 64-bit frame length with the most significant bit set');
      // Above 2^53 - 1 a length is not exact in a JS number; it is far over any limit anyway.
      if (hi > 0x1fffff) throw protocolError('a frame length over 2^53 - 1 bytes', 1009);
      len = hi * 0x100000000 + lo;
      size = 10;
    }
    if (opcode < Opcode.CLOSE) {
      if (this.accLen + len > this.maxMessageSize) {
        throw protocolError(`a message over the limit of ${this.maxMessageSize} bytes`, 1009);
      }
    }
    if (masked) size += 4;
    this.fin = fin;
    this.rsv1 = rsv1;
    this.opcode = opcode;
    this.masked = masked;
    this.payloadLen = len;
    return size;
  }

  /** Whether the frame in progress is uncompressed text (checked as UTF-8 as it arrives). */
  private isPlainText(): boolean {
    if (this.opcode === Opcode.TEXT) return !this.rsv1;
    return this.opcode === Opcode.CONTINUATION && this.msgOpcode === Opcode.TEXT && !this.msgCompressed;
  }

  /** Copies more of a split payload; returns the new offset. */
  private continuePartial(chunk: Buffer, off: number): number {
    const n = Math.min(this.payloadLen - this.partialAt, chunk.length - off);
    const partial = (this.partial = grow(this.partial!, this.partialAt, this.partialAt + n, this.payloadLen));
    chunk.copy(partial, this.partialAt, off, off + n);
    const from = this.partialAt;
    this.partialAt += n;
    if (this.masked) applyMask(partial, from, from + n, this.scratch!, 14, from, this.xor);
    const text = this.isPlainText();
    if (text) {
      // Starting a text message in this frame: fresh validator state.
      if (from === 0 && this.opcode === Opcode.TEXT) this.utf8.reset();
      if (!this.utf8.push(partial, from, from + n)) throw protocolError('invalid UTF-8 in a text message', 1007);
    }
    if (this.partialAt === this.payloadLen) {
      this.partial = null;
      this.frameComplete(partial, 0, this.payloadLen, text);
    }
    return off + n;
  }

  /**
   * A whole, unmasked frame payload at buf[start, end). `checked`: its UTF-8 was already pushed
   * through the incremental validator.
   */
  private frameComplete(buf: Buffer, start: number, end: number, checked: boolean): void {
    const opcode = this.opcode;
    this.frames++;
    if (opcode >= Opcode.CLOSE) {
      this.sink.onFrameControl(opcode, start === end ? EMPTY : buf.subarray(start, end));
      return;
    }
    if (opcode !== Opcode.CONTINUATION && this.fin) {
      // The common case: a whole message in one frame (one view serves the check and the sink).
      const data = start === end ? EMPTY : buf.subarray(start, end);
      if (opcode === Opcode.TEXT && !this.rsv1) {
        if (checked ? !this.utf8.complete : !isUtf8(data)) {
          throw protocolError('invalid UTF-8 in a text message', 1007);
        }
      }
      this.sink.onFrameMessage(opcode, data, this.rsv1);
      return;
    }
    if (opcode !== Opcode.CONTINUATION) {
      this.msgOpcode = opcode;
      // Named as the first frame was while it arrived (frames + 1 then), so its clock does not restart.
      this.msgStart = this.frames - 1;
      this.msgCompressed = this.rsv1;
      this.fragments = 0;
      if (opcode === Opcode.TEXT && !checked) this.utf8.reset();
    }
    if (++this.fragments > this.maxFragments) {
      throw protocolError(`a message in more than ${this.maxFragments} fragments`, 1009);
    }
    if (this.msgOpcode === Opcode.TEXT && !this.msgCompressed && !checked) {
      if (!this.utf8.push(buf, start, end)) throw protocolError('invalid UTF-8 in a text message', 1007);
    }
    this.append(buf, start, end);
    if (!this.fin) return;
    if (this.msgOpcode === Opcode.TEXT && !this.msgCompressed && !this.utf8.complete) {
      throw protocolError('a text message ends inside a UTF-8 sequence', 1007);
    }
    const msgOpcode = this.msgOpcode;
    const compressed = this.msgCompressed;
    const data = this.acc === null ? EMPTY : this.acc.subarray(0, this.accLen);
    this.msgOpcode = 0;
    this.acc = null;
    this.accLen = 0;
    this.sink.onFrameMessage(msgOpcode, data, compressed);
  }

  private append(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n === 0) return;
    const need = this.accLen + n;
    if (this.acc === null || need > this.acc.length) {
      const cap = Math.max(need, Math.min(this.maxMessageSize, Math.max(1024, (this.acc?.length ?? 0) * 2)));
      const next = allocate(cap);
      if (this.acc !== null) this.acc.copy(next, 0, 0, this.accLen);
      this.acc = next;
    }
    buf.copy(this.acc, this.accLen, start, end);
    this.accLen = need;
  }
}
