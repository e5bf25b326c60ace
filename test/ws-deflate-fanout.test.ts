/**
 * Compressed fan-out: a publish of at least perMessageDeflate.sharedThreshold bytes is compressed
 * once per negotiated server_max_window_bits and the same frame goes to every deflate receiver.
 * Real peers over real sockets: `ws` clients (with and without server context takeover, windows
 * 9, 10 and 15, and without deflate), raw sockets that compare the frames' bytes, and Python's
 * websockets and Chromium. Per-connection sends before and after each publish check that a connection with
 * context takeover forgets its context after a shared message (else the next one inflates wrong).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { WebSocket } from 'ws';
import { Server, type Connection } from '../src/index.js';
import { SharedDeflateEncoder } from '../src/codec/websocket/session.js';
import { RawPeer, portOf, until } from './helpers.js';
import { parseFrames, upgradeRequest } from './ws-helpers.js';
import { launchChromium, noChromium } from './browser.js';

const T = { timeout: 30_000 };

/** Compressible text that differs per seed: words from a small vocabulary in a seeded order. */
function text(seed: number, bytes: number): string {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  let x = seed * 2654435761 >>> 0;
  let out = `seed ${seed}:`;
  while (out.length < bytes) {
    x = (x * 1103515245 + 12345) >>> 0;
    out += ' ' + words[x % words.length] + (x >>> 28);
  }
  return out.slice(0, bytes);
}

/** Counts the shared encoder's compressions (each is one publish's one compression for one window size). */
let compressions = 0;
const original = SharedDeflateEncoder.prototype.encode;
before(() => {
  SharedDeflateEncoder.prototype.encode = function (this: SharedDeflateEncoder, data) {
    const out = original.call(this, data);
    if ((out[0]! & 0x40) !== 0) compressions++;
    return out;
  };
});
after(() => {
  SharedDeflateEncoder.prototype.encode = original;
});

async function fanoutServer(): Promise<{ server: Server; url: string; conns: Connection[] }> {
  const server = new Server({ listen: 'ws://127.0.0.1:0', websocket: { perMessageDeflate: { sharedThreshold: 1024 } } });
  const conns: Connection[] = [];
  server.on('connection', (c) => {
    c.subscribe('room');
    conns.push(c);
  });
  await server.listen();
  return { server, url: server.addresses[0]!, conns };
}

/**
 * Rounds of: an own message to each connection, a publish, another own message. The own messages
 * repeat the connection's own text, so a compressor that kept its context across the publish
 * would back-reference bytes the peer's window no longer holds there.
 */
function script(server: Server, conns: Connection[], rounds: number): Map<Connection, string[]> {
  const expected = new Map<Connection, string[]>(conns.map((c) => [c, []]));
  conns.forEach((c, i) => {
    const own = text(1000 + i, 6000);
    c.send(own);
    expected.get(c)!.push(own);
  });
  for (let r = 0; r < rounds; r++) {
    const shared = text(r, 20_000 + r * 8000);
    const small = `small ${r}`;
    for (const c of conns) {
      const own = text(2000 + r, 3000) + expected.get(c)![0]!.slice(0, 3000);
      c.send(own);
      expected.get(c)!.push(own);
    }
    server.publish('room', shared);
    server.publish('room', small); // under the threshold: uncompressed
    for (const c of conns) {
      expected.get(c)!.push(shared, small);
      const own = expected.get(c)![0]!; // the same text again: all back-references if the context were kept
      c.send(own);
      expected.get(c)!.push(own);
    }
  }
  return expected;
}

describe('ws deflate fan-out: one compression per publish and window size', () => {
  let s: Awaited<ReturnType<typeof fanoutServer>>;
  before(async () => { s = await fanoutServer(); });
  after(async () => { await s.server.close(); });
  afterEach(() => { for (const c of s.conns.splice(0)) c.close(); });

  it('20 ws deflate receivers (takeover or not, windows 8/9/10/15) and plain ones all get every message intact', T, async () => {
    const kinds: Array<ConstructorParameters<typeof WebSocket>[2]> = [
      { perMessageDeflate: { threshold: 0 } },
      { perMessageDeflate: { threshold: 0, serverNoContextTakeover: true } },
      { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 9 } },
      { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 10 } },
      { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 15 } },
      { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 8 } },
    ];
    const clients: Array<{ ws: WebSocket; got: string[]; rsv1: number }> = [];
    for (let i = 0; i < 22; i++) {
      const ws = new WebSocket(s.url, i < 20 ? kinds[i % kinds.length] : { perMessageDeflate: false });
      const entry = { ws, got: [] as string[], rsv1: 0 };
      ws.on('message', (d) => entry.got.push(d.toString()));
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      clients.push(entry);
    }
    await until(() => s.conns.length === 22, '22 connections');
    const before = compressions;
    const rounds = 3;
    const expected = script(s.server, s.conns, rounds);
    // Four window sizes (8, 9, 10, 15) take part: one compression each per publish over the threshold.
    assert.equal(compressions - before, rounds * 4);
    const total = expected.get(s.conns[0]!)!.length;
    await until(() => clients.every((c) => c.got.length >= total), 'all messages');
    // The server's connections are in the order the clients opened (each was awaited).
    clients.forEach((c, i) => {
      const want = expected.get(s.conns[i]!)!;
      assert.equal(c.got.length, want.length, `client ${i}`);
      c.got.forEach((m, k) => assert.ok(m === want[k], `client ${i} message ${k} differs (${m.length} vs ${want[k]!.length} bytes)`));
    });
    for (const c of clients) c.ws.close();
  });

  it('raw readers with the same window get the identical compressed frame, smaller than the text', T, async () => {
    const port = portOf(s.url);
    const offers = ['permessage-deflate', 'permessage-deflate; server_no_context_takeover', 'permessage-deflate; server_max_window_bits=10', ''];
    const peers: RawPeer[] = [];
    for (const offer of offers) {
      const p = await RawPeer.connect(port);
      p.write(upgradeRequest(offer ? { 'Sec-WebSocket-Extensions': offer } : {}));
      await p.until((t) => t.includes('\r\n\r\n'));
      peers.push(p);
    }
    await until(() => s.conns.length === offers.length, 'raw connections');
    const data = text(7, 30_000);
    const before = compressions;
    s.server.publish('room', data);
    assert.equal(compressions - before, 2); // windows 15 and 10
    const frames = await Promise.all(peers.map(async (p) => {
      const at = p.received.indexOf('\r\n\r\n') + 4;
      await until(() => { const f = parseFrames(p.received.subarray(at)); return f.length === 1 && f[0]!.payload.length > 0 && f; }, 'a frame');
      return parseFrames(p.received.subarray(at))[0]!;
    }));
    const [a, b, c, plain] = frames;
    assert.equal(a!.rsv, 4);
    assert.equal(b!.rsv, 4);
    assert.equal(c!.rsv, 4);
    assert.ok(a!.payload.equals(b!.payload), 'takeover and no-takeover receivers share the bytes');
    assert.ok(a!.payload.length < data.length / 2, `compressed to ${a!.payload.length} of ${data.length}`);
    assert.equal(plain!.rsv, 0);
    assert.equal(plain!.payload.toString(), data);
    for (const p of peers) p.socket.destroy();
  });
});

const PY = '/usr/bin/python3';

describe('ws deflate fan-out: Python websockets receivers', { skip: existsSync(PY) ? false : 'no /usr/bin/python3' }, () => {
  it('20 Python receivers (default, server_max_window_bits=10, no takeover) get every message intact', T, async () => {
    const s = await fanoutServer();
    try {
      const py = `
import asyncio, hashlib, sys, websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory as F
N, TOTAL = 20, int(sys.argv[2])
async def one(i, ready):
    ext = [F(), F(server_max_window_bits=10), F(server_no_context_takeover=True)][i % 3]
    async with websockets.connect(sys.argv[1], extensions=[ext], compression=None, max_size=None) as ws:
        await ws.send('ready %d' % i)
        got = []
        while len(got) < TOTAL:
            got.append(hashlib.sha1((await ws.recv()).encode()).hexdigest()[:10])
        return ','.join(got)
async def main():
    out = []
    for i in range(N):
        out.append(asyncio.ensure_future(one(i, None)))
        await asyncio.sleep(0)
    print('|'.join(await asyncio.gather(*out)))
asyncio.run(main())
`;
      const rounds = 2;
      const total = 1 + rounds * 4;
      const order: Connection[] = [];
      const readyIds = new Map<Connection, number>();
      s.server.on('connection', (c) => c.on('message', (m) => { readyIds.set(c, Number(String(m).split(' ')[1])); order.push(c); }));
      const run = new Promise<string>((resolve, reject) => {
        execFile(PY, ['-c', py, s.url, String(total)], { timeout: 25_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout.trim())));
      });
      await until(() => readyIds.size === 20, '20 Python clients ready', 20_000);
      const expected = script(s.server, s.conns, rounds);
      const out = (await run).split('|');
      const hash = (m: string): string => createHash('sha1').update(m).digest('hex').slice(0, 10);
      for (const c of s.conns) {
        const i = readyIds.get(c)!;
        assert.equal(out[i], expected.get(c)!.map(hash).join(','), `python client ${i}`);
      }
    } finally {
      await s.server.close();
    }
  });
});

describe('ws deflate fan-out: the option', () => {
  it('sharedThreshold is checked; Infinity sends publishes uncompressed as before', T, async () => {
    for (const bad of [-1, Number.NaN, '10']) {
      const bad1 = new Server({ listen: 'ws://127.0.0.1:0', websocket: { perMessageDeflate: { sharedThreshold: bad as number } } });
      await assert.rejects(bad1.listen(), { code: 'ERR_INVALID_OPTION' });
      await bad1.close();
    }
    const server = new Server({ listen: 'ws://127.0.0.1:0', websocket: { perMessageDeflate: { sharedThreshold: Infinity } } });
    let conn: Connection | null = null;
    server.on('connection', (c) => { c.subscribe('room'); conn = c; });
    await server.listen();
    try {
      const p = await RawPeer.connect(portOf(server.addresses[0]!));
      p.write(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
      await p.until((t) => t.includes('\r\n\r\n'));
      assert.match(p.text, /permessage-deflate/);
      await until(() => conn, 'connection');
      const data = text(3, 5000);
      server.publish('room', data);
      const at = p.received.indexOf('\r\n\r\n') + 4;
      const f = await until(() => { const fs = parseFrames(p.received.subarray(at)); return fs.length === 1 && fs[0]!.payload.length === data.length && fs[0]; }, 'the frame');
      assert.equal(f.rsv, 0);
      assert.equal(f.payload.toString(), data);
      p.socket.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('ws deflate fan-out: Chromium receivers', { skip: noChromium }, () => {
  it('5 Chromium WebSockets (deflate with context takeover) get every message intact', T, async () => {
    const s = await fanoutServer();
    const browser = await launchChromium();
    try {
      const ids = new Map<Connection, number>();
      s.server.on('connection', (c) => c.on('message', (m) => ids.set(c, Number(String(m)))));
      const rounds = 2;
      const total = 1 + rounds * 4;
      const page = await browser.newPage();
      const got = page.evaluate(([url, total]) => Promise.all([0, 1, 2, 3, 4].map((i) => new Promise<{ ext: string; msgs: string[] }>((resolve, reject) => {
        const ws = new WebSocket(url as string);
        const msgs: string[] = [];
        ws.onopen = () => ws.send(String(i));
        ws.onerror = () => reject(new Error('ws error'));
        ws.onmessage = (e) => { msgs.push(e.data as string); if (msgs.length === total) resolve({ ext: ws.extensions, msgs }); };
      }))), [s.url, total] as const);
      await until(() => ids.size === 5, '5 Chromium sockets');
      const expected = script(s.server, s.conns, rounds);
      const out = await got;
      for (const c of s.conns) {
        const i = ids.get(c)!;
        assert.match(out[i]!.ext, /permessage-deflate/);
        const want = expected.get(c)!;
        out[i]!.msgs.forEach((m, k) => assert.ok(m === want[k], `browser socket ${i} message ${k} differs`));
      }
    } finally {
      await browser.close();
      await s.server.close();
    }
  });
});
