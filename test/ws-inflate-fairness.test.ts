/**
 * One client must not stall everyone through zlib (issue 13, item 4): a connection inflates at
 * most its `perMessageDeflate.inflateBudget` per event-loop round, then its input waits for the
 * next round while the others are served. Sans-I/O first (the session keeps its input, in order,
 * and goes on when core calls resume()), then over real sockets: an abuser sending ~1 KiB
 * messages that inflate to 1 MiB as fast as the socket takes them, beside a `ws` bystander doing
 * request/response echo.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { WebSocket } from 'ws';
import { Server, connect } from '../src/index.js';
import type { CloseInfo, Message, ProtocolEvents } from '../src/codec/types.js';
import { PerMessageDeflate } from '../src/codec/websocket/deflate.js';
import { closeCodeOf, frame, openServer, parseFrames } from './ws-helpers.js';

const T = { timeout: 60_000 };
const MIB = 1 << 20;
const EXT = { 'Sec-WebSocket-Extensions': 'permessage-deflate' };

/** What a client's compressor makes of `data` (context kept across calls, as the server expects). */
function clientDeflate(): PerMessageDeflate {
  return new PerMessageDeflate({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, false, {}, 1 << 24);
}

/** A message of `size` bytes starting with its 4-byte sequence number; the rest is its number repeated. */
function numbered(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b.writeUInt32BE(seq, 0);
  return b;
}

describe('ws inflate budget: session (sans-I/O)', () => {
  it('holds its input after the budget, in order, and goes on at resume(); only for compressed input with an onYield hook', T, () => {
    const { s, r } = openServer({ maxMessageSize: 4 * MIB, ws: { perMessageDeflate: { inflateBudget: 600_000 } } }, EXT);
    let yields = 0;
    (r as ProtocolEvents).onYield = () => { yields++; };
    const z = clientDeflate();
    const size = 300_000;
    const parts: Buffer[] = [];
    for (let i = 0; i < 7; i++) {
      parts.push(frame({ opcode: 2, rsv: 4, payload: z.compress(numbered(i, size)) }));
      if (i === 2) parts.push(frame({ opcode: 9, payload: 'between 2 and 3' }));
    }
    const all = Buffer.concat(parts);
    // Two chunks, split inside a frame: the second arrives while the first is held.
    const cut = Math.floor(all.length * 0.7);
    s.receive(all.subarray(0, cut));
    assert.equal(r.messages.length, 2, 'two messages reach the budget');
    assert.equal(yields, 1);
    s.receive(all.subarray(cut));
    assert.equal(r.messages.length, 2, 'input that arrives while held is kept');
    assert.equal(r.writes.length, 0, 'the ping behind the held messages is not answered yet');
    const perRound = [2];
    for (let round = 0; round < 10 && r.messages.length < 7; round++) {
      const before = r.messages.length;
      s.resume();
      perRound.push(r.messages.length - before);
    }
    assert.deepEqual(perRound, [2, 2, 2, 1]);
    assert.equal(r.end, null, r.end?.reason);
    assert.deepEqual(r.messages.map((m) => (m as Buffer).readUInt32BE(0)), [0, 1, 2, 3, 4, 5, 6]);
    for (const m of r.messages) assert.equal((m as Buffer).length, size);
    const pongs = parseFrames(r.written()).filter((f) => f.opcode === 10);
    assert.equal(pongs.length, 1);
    assert.equal(pongs[0]!.payload.toString(), 'between 2 and 3');

    // Uncompressed messages, and sessions whose events cannot resume (no onYield), never hold.
    const a = openServer({ maxMessageSize: 4 * MIB, ws: { perMessageDeflate: { inflateBudget: 1000 } } }, EXT);
    let plainYields = 0;
    (a.r as ProtocolEvents).onYield = () => { plainYields++; };
    a.s.receive(Buffer.concat(Array.from({ length: 10 }, (_, i) => frame({ opcode: 2, payload: numbered(i, 5000) }))));
    assert.equal(a.r.messages.length, 10);
    assert.equal(plainYields, 0);
    // No hook (a ProtocolEvents that cannot resume): everything in one call, as before.
    const b = openServer({ maxMessageSize: 4 * MIB, ws: { perMessageDeflate: { inflateBudget: 1000 } } }, EXT);
    const zb = clientDeflate();
    b.s.receive(Buffer.concat(Array.from({ length: 10 }, (_, i) => frame({ opcode: 2, rsv: 4, payload: zb.compress(numbered(i, 5000)) }))));
    assert.equal(b.r.messages.length, 10);
  });

  it('a bomb behind held messages still closes with 1009, after the messages before it', T, () => {
    const { s, r } = openServer({ maxMessageSize: MIB, ws: { perMessageDeflate: { inflateBudget: 1 } } }, EXT);
    (r as ProtocolEvents).onYield = () => {};
    const z = clientDeflate();
    const good = [0, 1, 2].map((i) => frame({ opcode: 2, rsv: 4, payload: z.compress(numbered(i, 1000)) }));
    const bomb = frame({ opcode: 2, rsv: 4, payload: deflateRawSync(Buffer.alloc(16 * MIB)) });
    s.receive(Buffer.concat([...good, bomb, frame({ opcode: 2, payload: 'never' })]));
    assert.equal(r.messages.length, 1, 'one message per round with a 1-byte budget');
    assert.equal(r.end, null, 'the bomb waits behind the held messages');
    const ended = (): CloseInfo | null => r.end; // read afresh (the assert above narrowed r.end)
    for (let i = 0; i < 10 && ended() === null; i++) s.resume();
    assert.deepEqual(r.messages.map((m) => (m as Buffer).readUInt32BE(0)), [0, 1, 2]);
    assert.equal(ended()?.code, 1009);
    assert.equal(closeCodeOf(parseFrames(r.written()).pop()!), 1009);
  });

  it('inflateBudget must be a number of bytes >= 1', T, () => {
    for (const inflateBudget of [0, -1, Number.NaN, '1' as unknown as number]) {
      assert.throws(() => openServer({ ws: { perMessageDeflate: { inflateBudget } } }, EXT), { code: 'ERR_INVALID_OPTION' });
    }
  });
});

// ---- over real sockets ----

/** The compressed form of MSG - 8 zero bytes, without the 00 00 ff ff tail (made once). */
const MSG = MIB;
let zerosCache: Buffer | null = null;
function zeros(): Buffer {
  if (zerosCache === null) {
    const z = deflateRawSync(Buffer.alloc(MSG - 8), { finishFlush: constants.Z_SYNC_FLUSH });
    zerosCache = z.subarray(0, z.length - 4);
  }
  return zerosCache;
}

/**
 * A masked compressed binary frame of about 1 KiB whose payload inflates to MSG bytes: a stored
 * deflate block with an 8-byte sequence number, then the compressed zeros (a fresh deflate
 * stream needs nothing from the context, so the same bytes are valid in every message).
 */
function abuseFrame(seq: number, body = zeros()): Buffer {
  const stored = Buffer.from([0x00, 8, 0, 0xf7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  stored.writeBigUInt64BE(BigInt(seq), 5);
  const len = stored.length + body.length;
  // Mask key 0: the payload reads as is (a real client picks a random key; the server cannot tell).
  return Buffer.concat([Buffer.from([0xc2, 0x80 | 126, len >> 8, len & 0xff, 0, 0, 0, 0]), stored, body]);
}

/** A raw client that has done the upgrade with permessage-deflate; `received` collects what follows the 101. */
async function rawClient(port: number): Promise<{ socket: net.Socket; received: () => Buffer }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n');
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  const deadline = Date.now() + 5000;
  while (!Buffer.concat(chunks).includes('\r\n\r\n')) {
    if (Date.now() > deadline) throw new Error('no 101 from the server');
    await new Promise((r) => setTimeout(r, 5));
  }
  const all = Buffer.concat(chunks);
  assert.match(all.toString('latin1'), /^HTTP\/1\.1 101 [^]*permessage-deflate/);
  const headEnd = all.indexOf('\r\n\r\n') + 4;
  return { socket, received: () => Buffer.concat(chunks).subarray(headEnd) };
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A server that echoes text and counts binary messages: whether they come in sequence order, and
 * the most that arrive within one event-loop round (between two runs of a setImmediate ticker).
 */
async function countingServer(websocket: Record<string, unknown>): Promise<{
  server: Server; port: number; stats: { received: number; inOrder: boolean; maxPerRound: number; close: CloseInfo | null }; stop: () => Promise<void>;
}> {
  const server = new Server({ listen: 'ws://127.0.0.1:0', websocket });
  const stats = { received: 0, inOrder: true, maxPerRound: 0, close: null as CloseInfo | null };
  let inRound = 0;
  let ticking = true;
  const tick = (): void => {
    if (inRound > stats.maxPerRound) stats.maxPerRound = inRound;
    inRound = 0;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  server.on('connection', (c) => {
    c.on('message', (m: Message) => {
      if (typeof m === 'string') {
        c.send(m);
        return;
      }
      if (m.readBigUInt64BE(0) !== BigInt(stats.received)) stats.inOrder = false;
      stats.received++;
      inRound++;
      c.data.abuser = true;
    });
    c.on('close', (info) => { if (c.data.abuser === true) stats.close = info; });
  });
  await server.listen();
  const port = Number(new URL(server.addresses[0]!).port);
  return { server, port, stats, stop: async () => { ticking = false; await server.close(); } };
}

describe('ws inflate budget: one abuser, one bystander, real sockets', () => {
  it('the bystander is served while an abuser floods 1 KiB messages that inflate to 1 MiB; the abuser loses nothing', T, async (t) => {
    const { port, stats, stop } = await countingServer({ perMessageDeflate: true });
    try {
      const abuser = await rawClient(port);
      const bystander = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => { bystander.once('open', () => resolve()); bystander.once('error', reject); });

      // The abuser writes as fast as the socket takes them, for a bounded time and count.
      const ABUSE_MS = 1500;
      const MAX_SENT = 3000;
      const end = Date.now() + ABUSE_MS;
      let sent = 0;
      let pumping = true;
      const pump = (): void => {
        while (Date.now() < end && sent < MAX_SENT) {
          if (!abuser.socket.write(abuseFrame(sent++))) {
            abuser.socket.once('drain', pump);
            return;
          }
        }
        pumping = false;
      };
      pump();

      // The bystander: request/response echo during the abuse.
      const rtts: number[] = [];
      while (Date.now() < end) {
        const t = performance.now();
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no echo within 20 s')), 20_000);
          bystander.once('message', () => { clearTimeout(timer); resolve(); });
          bystander.send('ping-0123456789');
        });
        rtts.push(performance.now() - t);
      }
      await until(() => !pumping, 20_000, 'the abuser to stop writing');
      // A clean close right behind the last message, and our side ended at once: nothing may be lost.
      abuser.socket.write(frame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) }));
      abuser.socket.end();
      await until(() => stats.close !== null, 45_000, `the abuser's messages (${stats.received} of ${sent}) and its close`);

      rtts.sort((a, b) => a - b);
      const median = rtts[Math.floor(rtts.length / 2)]!;
      const max = rtts[rtts.length - 1]!;
      const figures = `${rtts.length} round trips, median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms; ${sent} abuse messages sent, at most ${stats.maxPerRound} per round`;
      t.diagnostic(figures);
      // Before the budget: 2-3 round trips in 1.5 s, each 0.9-1.6 s, and ~2000 messages inflated in one round.
      assert.ok(stats.maxPerRound <= 1, `one 1 MiB message per round at most (budget 1 MiB): ${figures}`);
      assert.ok(rtts.length >= 20, `the bystander keeps being served: ${figures}`);
      assert.ok(median < 50, `bystander median under 50 ms: ${figures}`);
      assert.ok(max < 500, `bystander max under 500 ms: ${figures}`);
      assert.ok(sent > 20, `the abuser did flood: ${figures}`);
      assert.equal(stats.received, sent, 'every abuse message arrived');
      assert.ok(stats.inOrder, 'in order');
      assert.equal(stats.close?.code, 1000, `a clean close, after the messages: ${stats.close?.reason}`);
      bystander.terminate();
    } finally {
      await stop();
    }
  });

  it('inflateBudget sets the messages per round; a bomb behind held messages closes with 1009', T, async () => {
    const { port, stats, stop } = await countingServer({ perMessageDeflate: { inflateBudget: 3 * MSG } });
    try {
      const abuser = await rawClient(port);
      // 30 messages of 1 MiB, then one that inflates past maxMessageSize (1 MiB), then one more: all in one write.
      const bomb = (() => {
        const z = deflateRawSync(Buffer.alloc(2 * MSG), { finishFlush: constants.Z_SYNC_FLUSH });
        return abuseFrame(30, z.subarray(0, z.length - 4));
      })();
      abuser.socket.write(Buffer.concat([...Array.from({ length: 30 }, (_, i) => abuseFrame(i)), bomb, abuseFrame(31)]));
      await until(() => stats.close !== null, 30_000, 'the server to close the abuser');
      assert.equal(stats.received, 30, 'the messages before the bomb arrive, the one after it does not');
      assert.ok(stats.inOrder);
      assert.ok(stats.maxPerRound <= 3, `at most 3 messages of 1 MiB per round with a 3 MiB budget, got ${stats.maxPerRound}`);
      assert.ok(stats.maxPerRound >= 2, `the budget is not one message: ${stats.maxPerRound}`);
      assert.equal(stats.close?.code, 1009);
      await until(() => parseFrames(abuser.received()).some((f) => f.opcode === 8), 5000, 'the close frame');
      assert.equal(closeCodeOf(parseFrames(abuser.received()).find((f) => f.opcode === 8)!), 1009);
      abuser.socket.destroy();
    } finally {
      await stop();
    }
  });

  it('our client too: a server bursting compressed 1 MiB messages reaches it in order, one per round', T, async () => {
    // A raw server: the 101 with permessage-deflate; at the client's first frame, COUNT compressed frames in one write.
    const COUNT = 40;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
      let head = '';
      let burst: Buffer | null = null;
      sock.on('data', (d) => {
        if (burst !== null) {
          sock.write(burst);
          burst = Buffer.alloc(0);
          return;
        }
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
        const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        const frames = Array.from({ length: COUNT }, (_, i) => {
          const f = abuseFrame(i);
          return Buffer.concat([Buffer.from([0xc2, 126, f[2]!, f[3]!]), f.subarray(8)]); // unmasked: server to client
        });
        sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
          'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n');
        burst = Buffer.concat(frames);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let ticking = true;
    try {
      const conn = await connect(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
      const seqs: number[] = [];
      let inRound = 0;
      let maxPerRound = 0;
      const tick = (): void => {
        maxPerRound = Math.max(maxPerRound, inRound);
        inRound = 0;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      conn.on('message', (m) => {
        assert.ok(Buffer.isBuffer(m) && m.length === MSG);
        seqs.push(Number(m.readBigUInt64BE(0)));
        inRound++;
      });
      conn.send('go'); // listening now: the burst may come
      await until(() => seqs.length === COUNT, 30_000, `${COUNT} messages (got ${seqs.length})`);
      ticking = false;
      assert.deepEqual(seqs, Array.from({ length: COUNT }, (_, i) => i));
      assert.ok(maxPerRound <= 1, `at most one 1 MiB message per round, got ${maxPerRound}`);
      conn.destroy();
    } finally {
      ticking = false;
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
