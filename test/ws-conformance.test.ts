/**
 * Conformance over real sockets, in the manner of the Autobahn testsuite: a raw peer that writes
 * frames byte for byte drives our server (the bare echo, as `serve echo --bare` runs it) and our
 * client (which echoes back), and checks what comes back on the wire: echoes, pongs, close codes.
 * The codec's own unit tests (ws-codec, ws-deflate) go case by case; this file proves the same
 * rules hold end to end through core, the socket and the close handshake.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync, constants as Z } from 'node:zlib';
import { Server, connect } from '../src/index.js';
import { portOf } from './helpers.js';

const T = { timeout: 10000 };
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

interface Frame { fin: boolean; rsv: number; opcode: number; payload: Buffer }

function frame(opcode: number, payload: Buffer | string, o: { fin?: boolean; rsv?: number; mask?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = o.mask ?? true;
  const len = data.length;
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
  else head.push(m | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255);
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

const closePayload = (code: number, reason = ''): Buffer => {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code);
  b.write(reason, 2);
  return b;
};

/** A raw WebSocket peer: reads frames off a socket (either side of the handshake). */
class Peer {
  private buf: Buffer = Buffer.alloc(0);
  private frames: Frame[] = [];
  private wake: (() => void) | null = null;
  closed = false;
  constructor(readonly socket: net.Socket, rest: Buffer = Buffer.alloc(0)) {
    socket.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
    socket.on('close', () => { this.closed = true; this.wake?.(); });
    socket.on('error', () => {});
    if (rest.length) { this.buf = rest; this.parse(); }
  }
  private parse(): void {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1]! & 127;
      const masked = (b[1]! & 128) !== 0;
      let off = 2;
      if (len === 126) { if (b.length < 4) break; len = b.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (b.length < 10) break; len = Number(b.readBigUInt64BE(2)); off = 10; }
      const maskLen = masked ? 4 : 0;
      if (b.length < off + maskLen + len) break;
      const payload = Buffer.from(b.subarray(off + maskLen, off + maskLen + len));
      if (masked) { const k = b.subarray(off, off + 4); for (let i = 0; i < payload.length; i++) payload[i]! ^= k[i & 3]!; }
      this.frames.push({ fin: (b[0]! & 0x80) !== 0, rsv: (b[0]! >> 4) & 7, opcode: b[0]! & 15, payload });
      this.buf = b.subarray(off + maskLen + len);
    }
    this.wake?.();
  }
  write(...parts: Buffer[]): void { this.socket.write(Buffer.concat(parts)); }
  /** Next frame, or null when the socket closed first. */
  async next(ms = 5000): Promise<Frame | null> {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('no frame in time');
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 50); });
    }
    return this.frames.shift()!;
  }
  /** Reads data frames into one message (inflating when RSV1 is set), answering nothing. */
  async message(): Promise<{ opcode: number; data: Buffer }> {
    const parts: Buffer[] = [];
    let first: Frame | null = null;
    for (;;) {
      const f = await this.next();
      if (!f) throw new Error('closed while reading a message');
      if (f.opcode >= 8) continue;
      first ??= f;
      parts.push(f.payload);
      if (f.fin) break;
    }
    const data = Buffer.concat(parts);
    return { opcode: first.opcode, data: first.rsv & 4 ? inflateRawSync(Buffer.concat([data, TAIL]), { finishFlush: Z.Z_SYNC_FLUSH }) : data };
  }
  /** Expects a close frame with `code` (or one of them), then the TCP close. */
  async expectClose(codes: number | number[]): Promise<void> {
    const want = ([] as number[]).concat(codes);
    for (;;) {
      const f = await this.next();
      if (f === null) assert.fail(`socket closed without a close frame (wanted ${want})`);
      if (f.opcode !== 8) continue;
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
      assert.ok(want.includes(code), `close code ${code}, wanted ${want}`);
      break;
    }
    const deadline = Date.now() + 3000;
    while (!this.closed) {
      if (Date.now() > deadline) assert.fail('the TCP connection was not closed after the close handshake');
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

// ---- the cases, written once, run against our server (we are the client) and our client (we are the server)

type Role = { mask: boolean };
type Case = [name: string, run: (p: Peer, r: Role) => Promise<void>];

const echoOf = async (p: Peer, r: Role, opcode: number, data: Buffer): Promise<void> => {
  p.write(frame(opcode, data, { mask: r.mask }));
  const m = await p.message();
  assert.equal(m.opcode, opcode);
  assert.ok(m.data.equals(data), 'echoed unchanged');
};

const CASES: Case[] = [
  // 1.x framing
  ...[0, 125, 126, 127, 128, 65535, 65536].flatMap((n): Case[] => [
    [`1.1 text of ${n} bytes`, (p, r) => echoOf(p, r, 1, Buffer.alloc(n, 'a'))],
    [`1.2 binary of ${n} bytes`, (p, r) => echoOf(p, r, 2, randomBytes(n))],
  ]),
  ['1.1.8 text of 65536 bytes written in chunks of 997', async (p, r) => {
    const data = Buffer.alloc(65536, 'b');
    const wire = frame(1, data, { mask: r.mask });
    for (let i = 0; i < wire.length; i += 997) { p.socket.write(wire.subarray(i, i + 997)); }
    const m = await p.message();
    assert.ok(m.data.equals(data));
  }],
  // 2.x pings and pongs
  ['2.1-2.4 pings of 0, 1 and 125 bytes get pongs with the same payload', async (p, r) => {
    for (const n of [0, 1, 125]) {
      const payload = randomBytes(n);
      p.write(frame(9, payload, { mask: r.mask }));
      const f = await p.next();
      assert.equal(f?.opcode, 10);
      assert.ok(f!.payload.equals(payload));
    }
  }],
  ['2.5 a ping of 126 bytes: close 1002', async (p, r) => { p.write(frame(9, Buffer.alloc(126), { mask: r.mask })); await p.expectClose(1002); }],
  ['2.6 an unsolicited pong is ignored', async (p, r) => { p.write(frame(10, 'x', { mask: r.mask })); await echoOf(p, r, 1, Buffer.from('after pong')); }],
  ['2.10 ten pings in one write: ten pongs, in order', async (p, r) => {
    p.write(...Array.from({ length: 10 }, (_, i) => frame(9, `p${i}`, { mask: r.mask })));
    for (let i = 0; i < 10; i++) assert.equal(String((await p.next())?.payload), `p${i}`);
  }],
  // 3.x reserved bits
  ...[1, 2, 3, 4, 5, 6, 7].map((rsv): Case => [`3.x text with RSV=${rsv} and no extension: close 1002`, async (p, r) => {
    p.write(frame(1, 'x', { rsv, mask: r.mask }));
    await p.expectClose(1002);
  }]),
  // 4.x opcodes
  ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map((op): Case => [`4.x reserved opcode ${op}: close 1002`, async (p, r) => {
    p.write(frame(op, 'x', { mask: r.mask }));
    await p.expectClose(1002);
  }]),
  // 5.x fragmentation
  ['5.1 a fragmented ping: close 1002', async (p, r) => { p.write(frame(9, 'a', { fin: false, mask: r.mask })); await p.expectClose(1002); }],
  ['5.6 text in two fragments with a ping between them', async (p, r) => {
    p.write(frame(1, 'frag', { fin: false, mask: r.mask }), frame(9, 'ping', { mask: r.mask }), frame(0, 'ment', { mask: r.mask }));
    const pong = await p.next();
    assert.equal(pong?.opcode, 10);
    const m = await p.message();
    assert.equal(String(m.data), 'fragment');
  }],
  ['5.9 a continuation without a start: close 1002', async (p, r) => { p.write(frame(0, 'x', { mask: r.mask })); await p.expectClose(1002); }],
  ['5.18 a new text frame inside a fragmented message: close 1002', async (p, r) => {
    p.write(frame(1, 'a', { fin: false, mask: r.mask }), frame(1, 'b', { mask: r.mask }));
    await p.expectClose(1002);
  }],
  // 6.x UTF-8
  ['6.2 valid UTF-8 split at every byte into fragments', async (p, r) => {
    const text = Buffer.from('Hello-µ@ßöäüàá-UTF-8!! κόσμε 世界👍🏽');
    p.write(...[...text].map((b, i) => frame(i === 0 ? 1 : 0, Buffer.from([b]), { fin: i === text.length - 1, mask: r.mask })));
    assert.ok((await p.message()).data.equals(text));
  }],
  ['6.3 invalid UTF-8 (a surrogate) in a text frame: close 1007', async (p, r) => {
    p.write(frame(1, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xed, 0xa0, 0x80, 0x65]), { mask: r.mask }));
    await p.expectClose(1007);
  }],
  ['6.4 invalid UTF-8 in the first fragment fails fast, before the message ends', async (p, r) => {
    p.write(frame(1, Buffer.from([0xce, 0xba, 0xf4, 0x90, 0x80, 0x80]), { fin: false, mask: r.mask }));
    await p.expectClose(1007);
  }],
  // 7.x close handshake
  ['7.1 close 1000: echoed, then the TCP connection closes', async (p, r) => { p.write(frame(8, closePayload(1000, 'bye'), { mask: r.mask })); await p.expectClose(1000); }],
  ['7.3 an empty close is answered', async (p, r) => { p.write(frame(8, Buffer.alloc(0), { mask: r.mask })); await p.expectClose([1000, 1005]); }],
  ['7.3.2 a 1-byte close payload: close 1002', async (p, r) => { p.write(frame(8, Buffer.from([3]), { mask: r.mask })); await p.expectClose(1002); }],
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000].map((code): Case => [`7.9 invalid close code ${code}: close 1002`, async (p, r) => {
    p.write(frame(8, closePayload(code), { mask: r.mask }));
    await p.expectClose(1002);
  }]),
  ...[1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].map((code): Case => [`7.7 valid close code ${code} is echoed`, async (p, r) => {
    p.write(frame(8, closePayload(code), { mask: r.mask }));
    await p.expectClose(code);
  }]),
  ['7.5 a close reason that is not UTF-8: close 1007', async (p, r) => {
    p.write(frame(8, Buffer.concat([closePayload(1000), Buffer.from([0xff, 0xfe])]), { mask: r.mask }));
    await p.expectClose(1007);
  }],
  // 9.x larger messages
  ...[256 * 1024, 1024 * 1024, 4 * 1024 * 1024].map((n): Case => [`9.1 text of ${n >> 10} KiB, echoed`, (p, r) => echoOf(p, r, 1, Buffer.alloc(n, 'x'))]),
  ['9.3 a 1 MiB binary message in 64 KiB fragments', async (p, r) => {
    const data = randomBytes(1024 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < data.length; i += 65536) parts.push(frame(i === 0 ? 2 : 0, data.subarray(i, i + 65536), { fin: i + 65536 >= data.length, mask: r.mask }));
    p.write(...parts);
    assert.ok((await p.message()).data.equals(data));
  }],
];

/** permessage-deflate cases (12.x/13.x): need the extension negotiated. */
const DEFLATE_CASES: Case[] = [
  ...[16, 1000, 64 * 1024, 1024 * 1024].map((n): Case => [`12.x compressed text of ${n} bytes, echoed`, async (p, r) => {
    const text = Buffer.from('switchboard 交换机 '.repeat(Math.ceil(n / 15)).slice(0, n));
    const z = deflateRawSync(text, { finishFlush: Z.Z_SYNC_FLUSH });
    p.write(frame(1, z.subarray(0, z.length - 4), { rsv: 4, mask: r.mask }));
    const m = await p.message();
    assert.ok(m.data.equals(text), 'inflated echo equals what was sent');
  }]),
  ['13.x RSV1 on a continuation frame: close 1002', async (p, r) => {
    const z = deflateRawSync(Buffer.from('hello'), { finishFlush: Z.Z_SYNC_FLUSH });
    p.write(frame(1, z.subarray(0, 2), { rsv: 4, fin: false, mask: r.mask }), frame(0, z.subarray(2, z.length - 4), { rsv: 4, mask: r.mask }));
    await p.expectClose(1002);
  }],
  ['13.x compressed bytes that are not deflate data: close 1007', async (p, r) => {
    p.write(frame(1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]), { rsv: 4, mask: r.mask }));
    await p.expectClose([1007, 1002]);
  }],
];

// ---- against our server

async function handshake(port: number, deflate: boolean): Promise<Peer> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const key = randomBytes(16).toString('base64');
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
    `Sec-WebSocket-Version: 13\r\n${deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n' : ''}\r\n`);
  let head = Buffer.alloc(0);
  while (head.indexOf('\r\n\r\n') === -1) {
    const [chunk] = await once(socket, 'data') as [Buffer];
    head = Buffer.concat([head, chunk]);
  }
  const end = head.indexOf('\r\n\r\n') + 4;
  const text = head.subarray(0, end).toString();
  assert.match(text, /^HTTP\/1\.1 101 /);
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  assert.ok(text.includes(`Sec-WebSocket-Accept: ${accept}`) || text.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`));
  if (deflate) assert.match(text, /permessage-deflate/i);
  socket.removeAllListeners('data');
  return new Peer(socket, head.subarray(end));
}

describe('conformance: our server, driven by a raw client', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = new Server({ listen: 'ws://127.0.0.1:0', maxMessageSize: 16 * 1024 * 1024, websocket: { perMessageDeflate: true } });
    server.on('connection', (c) => c.on('message', (m) => c.send(m)));
    await server.listen();
    port = portOf(server.addresses[0]!);
  });
  after(() => server.close());
  for (const [name, run] of CASES) it(name, T, async () => { const p = await handshake(port, false); try { await run(p, { mask: true }); } finally { p.socket.destroy(); } });
  for (const [name, run] of DEFLATE_CASES) it(name, T, async () => { const p = await handshake(port, true); try { await run(p, { mask: true }); } finally { p.socket.destroy(); } });
  it('an unmasked client frame: close 1002', T, async () => {
    const p = await handshake(port, false);
    p.write(frame(1, 'x', { mask: false }));
    await p.expectClose(1002);
  });
});

// ---- against our client: a raw server does the handshake, our client echoes every message back

describe('conformance: our client, driven by a raw server', () => {
  let raw: net.Server;
  let waiting: ((p: Peer) => void) | null = null;
  let deflate = false;
  before(async () => {
    raw = net.createServer((socket) => {
      let head = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        const key = /sec-websocket-key: *(\S+)/i.exec(head.toString())![1]!;
        const accept = createHash('sha1').update(key + GUID).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
          `${deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n' : ''}\r\n`);
        waiting?.(new Peer(socket, head.subarray(end + 4)));
      };
      socket.on('data', onData);
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
  });
  after(() => raw.close());

  const run = async (withDeflate: boolean, body: (p: Peer) => Promise<void>): Promise<void> => {
    deflate = withDeflate;
    const peer = new Promise<Peer>((r) => { waiting = r; });
    const url = `ws://127.0.0.1:${(raw.address() as net.AddressInfo).port}/`;
    const client = await connect(url, { maxMessageSize: 16 * 1024 * 1024, websocket: { perMessageDeflate: withDeflate } });
    client.on('message', (m) => client.send(m));
    const p = await peer;
    try { await body(p); } finally { p.socket.destroy(); client.destroy(); }
  };
  for (const [name, c] of CASES) it(name, T, () => run(false, (p) => c(p, { mask: false })));
  for (const [name, c] of DEFLATE_CASES) it(name, T, () => run(true, (p) => c(p, { mask: false })));
  it('a masked server frame: close 1002', T, () => run(false, async (p) => {
    p.write(frame(1, 'x', { mask: true }));
    await p.expectClose(1002);
  }));
});
