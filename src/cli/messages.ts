/**
 * Messages between a byte stream (stdin, a program's stdout) and a connection, the same way in
 * every command:
 *
 * - Input: tcp:// (raw) takes bytes as they come, one message per chunk read; text://, ws:// and
 *   frame:// take one message per line (without its \n or \r\n); with --binary, ws:// and frame://
 *   take chunks as binary messages instead (websocat's -b).
 * - Output: a text message is printed as a line; a binary message (and tcp:// bytes) as-is, or
 *   with --hex as one line of hex per message.
 *
 * Both directions keep to the connection's pace: a stream is read only as fast as the connection
 * takes what is sent (send() says when to wait for 'drain').
 */
import type { Connection, Message, ProtocolName } from '../index.js';
import { UsageError } from './usage.js';

export const MESSAGE_HELP = `  --text                ws://, frame://: each input line is one text message (the default)
  --binary              ws://, frame://: input is sent as binary messages, one per chunk read
  --hex                 print binary messages (and tcp:// bytes) as one line of hex each`;

export const MESSAGE_OPTIONS = {
  'text': { type: 'boolean' },
  'binary': { type: 'boolean' },
  'hex': { type: 'boolean' },
} as const;

export type InputMode = 'lines' | 'chunks';

/** How input becomes messages on this protocol (see the top of this file). */
export function inputMode(protocol: ProtocolName, values: { text?: boolean; binary?: boolean }): InputMode {
  if (values.text && values.binary) throw new UsageError('--text and --binary: choose one');
  if (values.binary && protocol === 'line') throw new UsageError('--binary: text:// carries lines of text; tcp:// carries bytes');
  if (values.text && protocol === 'raw') throw new UsageError('--text: tcp:// carries bytes; text:// carries lines');
  if (protocol === 'raw') return 'chunks';
  if (protocol === 'line') return 'lines';
  return values.binary ? 'chunks' : 'lines';
}

/**
 * Writes one received message to stdout, after `prefix` (the peer, when several are connected).
 * When stdout is a pipe that is read slower than `from` sends, `from` is paused until it drains.
 */
export function printMessage(m: Message, hex: boolean, prefix = '', from?: Connection): void {
  let ok: boolean;
  if (typeof m === 'string') ok = process.stdout.write(`${prefix}${m}\n`);
  else if (hex) ok = process.stdout.write(`${prefix}${m.toString('hex')}\n`);
  else {
    if (prefix) process.stdout.write(prefix);
    ok = process.stdout.write(m);
  }
  if (!ok && from !== undefined && !heldByStdout.has(from)) {
    from.pause();
    if (heldByStdout.size === 0) process.stdout.once('drain', resumeHeld);
    heldByStdout.add(from);
  }
}

/** Connections paused until stdout drains: one 'drain' listener for all of them. */
const heldByStdout = new Set<Connection>();
function resumeHeld(): void {
  for (const conn of heldByStdout) conn.resume();
  heldByStdout.clear();
}

/**
 * Messages from a byte stream: lines (decoded as UTF-8 once whole, so a character split across
 * reads survives) or chunks as they are read. A line longer than `maxLine` bytes is cut into
 * messages of that size, so a stream without newlines cannot grow memory without bound.
 */
export async function* readMessages(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, mode: InputMode, maxLine: number): AsyncGenerator<Message> {
  if (mode === 'chunks') {
    for await (const chunk of input) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    return;
  }
  let held: Buffer[] = [];
  let heldBytes = 0;
  const take = (tail: Buffer): string => {
    const all = held.length === 0 ? tail : Buffer.concat([...held, tail]);
    held = [];
    heldBytes = 0;
    const end = all.length > 0 && all[all.length - 1] === 0x0d ? all.length - 1 : all.length;
    return all.toString('utf8', 0, end);
  };
  for await (const c of input) {
    const chunk = typeof c === 'string' ? Buffer.from(c) : c;
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      yield take(chunk.subarray(start, nl));
      start = nl + 1;
    }
    while (chunk.length - start + heldBytes > maxLine) {
      const n = maxLine - heldBytes;
      yield take(chunk.subarray(start, start + n));
      start += n;
    }
    if (start < chunk.length) {
      held.push(Buffer.from(chunk.subarray(start))); // a copy: the stream may reuse its chunk
      heldBytes += chunk.length - start;
    }
  }
  if (heldBytes > 0) yield take(Buffer.alloc(0));
}

/**
 * Sends and, when the send buffer is over its high-water mark, waits until it drains (or the
 * connection closes); meanwhile `source`, the connection the message came from, is not read, so
 * its peer waits instead of our memory growing. False when `conn` is no longer open: stop sending.
 */
export async function sendPaced(conn: Connection, m: Message, source?: Connection): Promise<boolean> {
  if (conn.send(m)) return true;
  if (!conn.isOpen) return false;
  source?.pause();
  await new Promise<void>((resolve) => {
    const done = (): void => {
      conn.off('drain', done);
      conn.off('close', done);
      resolve();
    };
    conn.on('drain', done);
    conn.on('close', done);
  });
  source?.resume();
  return conn.isOpen;
}

/** Resolves once `stream`'s buffer drains, or it closes or fails: a writer that paces itself on a pipe. */
export function drained(stream: NodeJS.WritableStream & { writableNeedDrain?: boolean; destroyed?: boolean }): Promise<void> {
  if (!stream.writableNeedDrain || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/** Every `interval` ms a ping with a sequence number; each pong's round trip on stderr. Stops when the connection closes. */
export function startPinger(conn: Connection, interval: number, label: string): void {
  const sent = new Map<number, bigint>();
  let seq = 0;
  const timer = setInterval(() => {
    // A peer that never answers must not make this map grow: forget the oldest.
    if (sent.size >= 16) sent.delete(sent.keys().next().value!);
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(++seq >>> 0);
    sent.set(seq, process.hrtime.bigint());
    conn.ping(payload);
  }, interval);
  conn.on('pong', (payload) => {
    if (payload.length !== 4) return;
    const n = payload.readUInt32BE(0);
    const at = sent.get(n);
    if (at === undefined) return;
    sent.delete(n);
    const rtt = Number(process.hrtime.bigint() - at) / 1e6;
    console.error(`${label}pong ${n}: rtt ${rtt.toFixed(3)} ms`);
  });
  void conn.closed().then(() => clearInterval(timer));
}
