/**
 * reverse (seed 000): replies to each message with it trimmed and reversed, plus "\n".
 *
 * The seed reads once (`socket_read($spawn, 1024)`) and reverses bytes with strrev, which breaks
 * UTF-8. Here each chunk is split into lines; every complete line, and an unterminated rest
 * (the seed client's "Hello Server" has no newline), is reversed by user-perceived character.
 * Bytes of a multi-byte character cut at the end of a chunk wait for the next chunk.
 */
import type { Message } from '../codec/types.js';
import type { Connection } from '../core/connection.js';
import type { Server } from '../core/server.js';
import { bareEcho, startApp, type AppOptions } from './common.js';

export const REVERSE_DEFAULT = 'tcp://127.0.0.1:5353';

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Reverses a string by grapheme clusters ("👍🏽" and "é" stay whole). */
export function reverseText(text: string): string {
  const parts: string[] = [];
  for (const { segment } of graphemes.segment(text)) parts.push(segment);
  return parts.reverse().join('');
}

/** How many bytes at the end of `buf` are the start of an unfinished UTF-8 character. */
export function incompleteUtf8Tail(buf: Buffer): number {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const b = buf[buf.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

export function reverseServer(options: AppOptions = {}): Promise<Server> {
  return startApp('reverse', options, { listen: REVERSE_DEFAULT }, (server, log) => {
    if (options.bare) return bareEcho(server);
    const held = new WeakMap<Connection, Buffer>();
    server.on('connection', (conn) => {
      conn.on('message', (m: Message) => {
        let text: string;
        if (typeof m === 'string') text = m + '\n';
        else {
          const prev = held.get(conn);
          const bytes = prev ? Buffer.concat([prev, m]) : m;
          const tail = incompleteUtf8Tail(bytes);
          if (tail > 0) held.set(conn, Buffer.from(bytes.subarray(bytes.length - tail)));
          else held.delete(conn);
          text = bytes.toString('utf8', 0, bytes.length - tail);
          if (text.length === 0) return;
        }
        const lines = text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        let reply = '';
        for (const line of lines) {
          const input = line.trim();
          log(`[reverse] ${conn.remote} says: ${input}`);
          reply += reverseText(input) + '\n';
        }
        conn.send(Buffer.from(reply, 'utf8'));
      });
    });
  });
}
