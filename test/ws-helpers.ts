/**
 * Helpers for the WebSocket tests: a ProtocolEvents recorder that drives a session with plain
 * Buffers (sans-I/O), a frame builder for what a peer would send, and a frame reader for what
 * the session wrote.
 */
import { randomBytes } from 'node:crypto';
import { parseAddress } from '../src/address.js';
import type { CloseInfo, Message, ProtocolEvents } from '../src/codec/types.js';
import type { WebSocketSession } from '../src/codec/websocket/session.js';
import { websocketSessions, type WebSocketOptions } from '../src/core/protocols/websocket.js';
import { nativeXor } from '../src/transport/mask.js';

export class Recorder implements ProtocolEvents {
  opened = 0;
  messages: Message[] = [];
  writes: Buffer[] = [];
  pongs: Buffer[] = [];
  end: CloseInfo | null = null;
  onOpen(): void { this.opened++; }
  onMessage(data: Message): void { this.messages.push(data); }
  onWrite(bytes: Buffer): void { this.writes.push(bytes); }
  onEnd(info: CloseInfo): void {
    if (this.end) throw new Error('onEnd twice');
    this.end = info;
  }
  onPong(payload: Buffer): void { this.pongs.push(Buffer.from(payload)); }
  /** Everything written, as one buffer. */
  written(): Buffer { return Buffer.concat(this.writes); }
}

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function upgradeRequest(extra: Record<string, string> = {}, path = '/'): Buffer {
  const headers: Record<string, string> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) if (v !== '') s += `${k}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

export interface SessionOptions {
  role?: 'server' | 'client';
  maxMessageSize?: number;
  url?: string;
  ws?: WebSocketOptions;
}

export function makeSession(o: SessionOptions = {}): { s: WebSocketSession; r: Recorder } {
  const r = new Recorder();
  // The sessions core makes for a listener: the codec session under core's policy (path, origins, verifyClient, ...).
  const sessions = websocketSessions(parseAddress(o.url ?? 'ws://127.0.0.1:9001'), o.role ?? 'server', o.maxMessageSize ?? 1 << 20,
    o.ws ?? {}, nativeXor);
  const s = sessions(r, { address: '127.0.0.1', port: 50000, family: 'IPv4' }) as WebSocketSession;
  s.start();
  return { s, r };
}

/** A server session past its handshake, with the 101 removed from the recorded writes. */
export function openServer(o: SessionOptions = {}, extra: Record<string, string> = {}): { s: WebSocketSession; r: Recorder } {
  const { s, r } = makeSession(o);
  s.receive(upgradeRequest(extra));
  if (r.opened !== 1) throw new Error('handshake failed: ' + r.written().toString('latin1'));
  r.writes.length = 0;
  return { s, r };
}

export interface FrameSpec {
  fin?: boolean;
  rsv?: number; // bits 0b100 = RSV1, 0b010 = RSV2, 0b001 = RSV3
  opcode: number;
  payload?: Buffer | string;
  mask?: boolean; // default true (client to server)
  /** Force a length form: 7, 16 or 64. */
  lenForm?: 7 | 16 | 64;
  /** Write this length in the header instead of the payload's. */
  fakeLength?: bigint;
}

/** Builds a frame as a peer would send it. */
export function frame(f: FrameSpec): Buffer {
  const payload = typeof f.payload === 'string' ? Buffer.from(f.payload, 'utf8') : f.payload ?? Buffer.alloc(0);
  const mask = f.mask ?? true;
  const len = f.fakeLength ?? BigInt(payload.length);
  const form = f.lenForm ?? (len < 126n ? 7 : len < 65536n ? 16 : 64);
  const head: number[] = [((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode];
  const m = mask ? 0x80 : 0;
  if (form === 7) head.push(m | Number(len));
  else if (form === 16) head.push(m | 126, Number(len >> 8n) & 0xff, Number(len) & 0xff);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(i * 8)) & 0xffn));
  }
  const maskKey = mask ? randomBytes(4) : Buffer.alloc(0);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i]! ^= maskKey[i & 3]!;
  return Buffer.concat([Buffer.from(head), maskKey, body]);
}

export interface ParsedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Reads every frame in `buf` (unmasking client frames). */
export function parseFrames(buf: Buffer): ParsedFrame[] {
  const out: ParsedFrame[] = [];
  let off = 0;
  while (off < buf.length) {
    const b0 = buf[off]!;
    const b1 = buf[off + 1]!;
    let len = b1 & 0x7f;
    let at = off + 2;
    if (len === 126) { len = buf.readUInt16BE(at); at += 2; }
    else if (len === 127) { len = Number(buf.readBigUInt64BE(at)); at += 8; }
    const masked = (b1 & 0x80) !== 0;
    let payload: Buffer;
    if (masked) {
      const key = buf.subarray(at, at + 4);
      at += 4;
      payload = Buffer.from(buf.subarray(at, at + len));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    } else {
      payload = buf.subarray(at, at + len);
    }
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload });
    off = at + len;
  }
  return out;
}

/** The close code in a close frame's payload (undefined for an empty one). */
export function closeCodeOf(f: ParsedFrame): number | undefined {
  return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
}

export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

/** Feeds `bytes` one byte at a time (the harshest chunking). */
export function feedBytewise(s: { receive(b: Buffer): void }, bytes: Buffer): void {
  for (let i = 0; i < bytes.length; i++) s.receive(bytes.subarray(i, i + 1));
}
