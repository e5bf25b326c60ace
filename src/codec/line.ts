/**
 * text://: newline-delimited UTF-8 messages. A line ends at "\n"; a "\r" before it is dropped,
 * so both "\n" and "\r\n" peers (nc, telnet, PHP's "\r\n") work. Lines are decoded only once
 * complete, so a multi-byte character split across TCP chunks decodes correctly.
 */
import { ProtocolError } from '../errors.js';
import { allocate, grow } from './alloc.js';
import { SimpleSession } from './simple-session.js';
import { StreamCloseCode, type Message, type ProtocolEvents, type SharedEncoder, type Wire } from './types.js';

const LF = 0x0a;
const CR = 0x0d;
const NEWLINE = Buffer.from('\n');
/** The smallest buffer for a split line. */
const MIN_PENDING = 64;

export const lineEncoder: SharedEncoder = {
  key: 'line',
  encode(data: Message): Wire {
    // Text stays text: core joins a round's lines and encodes them once (line echo +29%).
    if (typeof data === 'string') return `${data}\n`;
    return Buffer.concat([data, NEWLINE]);
  },
};

/**
 * Pure line splitter: bytes in, complete lines out, with a bound on line length. A line split
 * across chunks is gathered in one buffer that grows as bytes arrive (alloc.ts): a peer that
 * sends a long line a byte at a time costs one buffer, not one object per byte.
 */
export class LineDecoder {
  private pending: Buffer | null = null;
  private pendingBytes = 0;
  /** Counts the lines that began without finishing in their chunk; names the one in progress. */
  private seq = 0;
  constructor(private readonly maxLineBytes: number) {}

  /** Calls onLine for each complete line in `chunk`; throws ProtocolError when a line exceeds the bound. */
  push(chunk: Buffer, onLine: (line: string) => void): void {
    let start = 0;
    let nl = chunk.indexOf(LF, 0);
    while (nl !== -1) {
      if (this.pendingBytes > 0) {
        const line = this.append(chunk, start, nl);
        const len = this.pendingBytes;
        this.pending = null;
        this.pendingBytes = 0;
        let end = len;
        if (end > 0 && line[end - 1] === CR) end--;
        if (end > this.maxLineBytes) throw tooLong(this.maxLineBytes);
        onLine(line.toString('utf8', 0, end));
      } else {
        // Decoded straight from the chunk: no Buffer view per line.
        let end = nl;
        if (end > start && chunk[end - 1] === CR) end--;
        if (end - start > this.maxLineBytes) throw tooLong(this.maxLineBytes);
        onLine(chunk.toString('utf8', start, end));
      }
      start = nl + 1;
      nl = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      // +1: the rest may end in the "\r" of a "\r\n" whose "\n" has not arrived yet.
      if (this.pendingBytes + rest > this.maxLineBytes + 1) throw tooLong(this.maxLineBytes);
      if (this.pendingBytes === 0) this.seq++;
      // A copy: a retained view would pin the whole chunk.
      this.append(chunk, start, chunk.length);
    }
  }

  /** Adds chunk[start, end) to the pending line; returns the buffer that holds it. */
  private append(chunk: Buffer, start: number, end: number): Buffer {
    const need = this.pendingBytes + end - start;
    // A line's final size is unknown: start at twice this piece (most split lines are short, and
    // many connections may each hold one) and double up to the bound (+1 for a trailing "\r").
    const cap = Math.max(this.maxLineBytes + 1, need);
    const buf = this.pending === null
      ? allocate(Math.min(cap, Math.max(MIN_PENDING, 2 * need)))
      : grow(this.pending, this.pendingBytes, need, cap);
    chunk.copy(buf, this.pendingBytes, start, end);
    this.pending = buf;
    this.pendingBytes = need;
    return buf;
  }

  /** Returns the unterminated rest (at EOF) and forgets it; null when there is none. */
  takeRest(): string | null {
    if (this.pendingBytes === 0) return null;
    const rest = this.pending!;
    const len = this.pendingBytes;
    this.pending = null;
    this.pendingBytes = 0;
    const end = rest[len - 1] === CR ? len - 1 : len;
    return rest.toString('utf8', 0, end);
  }

  /** Bytes held for an unfinished line. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** 0 when no line is partly received, else a number for the one in progress (see Receiver.pendingMessage). */
  get pendingMessage(): number {
    return this.pendingBytes > 0 ? this.seq : 0;
  }
}

function tooLong(max: number): ProtocolError {
  return new ProtocolError('ERR_LINE_TOO_LONG', `line longer than the limit of ${max} bytes`, StreamCloseCode.ABNORMAL);
}

export class LineSession extends SimpleSession {
  private readonly decoder: LineDecoder;
  /** One callback per connection (not per chunk); lines after a bad one are not delivered. */
  private readonly onLine = (line: string): void => {
    if (!this.ended) this.events.onMessage(line);
  };

  constructor(events: ProtocolEvents, maxLineBytes: number) {
    super(events, lineEncoder);
    this.decoder = new LineDecoder(maxLineBytes);
  }

  protected decode(chunk: Buffer): void {
    this.decoder.push(chunk, this.onLine);
  }

  pendingMessage(): number {
    return this.ended ? 0 : this.decoder.pendingMessage;
  }

  /** A person in telnet sees why the server hung up. */
  protected override errorReply(err: ProtocolError): Buffer {
    return Buffer.from(`error: ${err.message}\n`);
  }

  /** At EOF an unterminated last line is still a line (`printf 'hi' | nc ...`). */
  finish(): void {
    const rest = this.ended ? null : this.decoder.takeRest();
    if (rest !== null && rest.length > 0) this.events.onMessage(rest);
  }
}
