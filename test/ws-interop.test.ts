/**
 * WebSocket over real sockets on 127.0.0.1: the `ws` package as a client of our server and as a
 * server for our client (with and without permessage-deflate), Python's `websockets` as a client
 * of our server, plain HTTP on the same port, and bad input that must neither crash nor hang the
 * server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { Server, connect } from '../src/index.js';
import type { CloseInfo, Message } from '../src/codec/types.js';
import { frame, parseFrames } from './ws-helpers.js';

const T = { timeout: 15_000 };

async function echoServer(websocket: Record<string, unknown> = {}, limits: Record<string, number> = {}): Promise<{ server: Server; url: string; closes: CloseInfo[] }> {
  const server = new Server({ listen: 'ws://127.0.0.1:0', websocket, ...limits });
  const closes: CloseInfo[] = [];
  server.on('connection', (c) => {
    c.on('message', (m) => c.send(m));
    c.on('close', (info) => closes.push(info));
  });
  await server.listen();
  return { server, url: server.addresses[0]!, closes };
}

function wsOpen(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string | Buffer> {
  return new Promise((resolve) => ws.once('message', (d, isBinary) => resolve(isBinary ? (d as Buffer) : d.toString())));
}

/** Raw TCP: sends bytes, collects everything until the server closes (or the deadline). */
function rawExchange(port: number, send: Buffer[], deadlineMs = 5000): Promise<{ data: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { sock.destroy(); resolve({ data: Buffer.concat(chunks), closedByServer: false }); }, deadlineMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve({ data: Buffer.concat(chunks), closedByServer: true }); });
    sock.on('connect', () => { for (const b of send) sock.write(b); });
  });
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

const UPGRADE = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');

describe('ws interop: the ws package as client of our server', () => {
  for (const deflate of [false, true]) {
    it(`echoes text, binary, empty, large and fragmented messages (permessage-deflate ${deflate ? 'on' : 'off'})`, T, async () => {
      const { server, url, closes } = await echoServer({ perMessageDeflate: deflate ? { threshold: 64 } : false }, { maxMessageSize: 4 << 20 });
      try {
        const ws = await wsOpen(url, { perMessageDeflate: deflate });
        assert.equal(ws.extensions, deflate ? 'permessage-deflate' : '');
        const big = Buffer.alloc(2 << 20);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
        const sent: Array<string | Buffer> = ['hello', 'κόσμε 🎉', Buffer.from([0, 1, 2, 255]), '', 'x'.repeat(70_000), big];
        const got: Array<string | Buffer> = [];
        const done = new Promise<void>((resolve) => ws.on('message', (d, isBinary) => {
          got.push(isBinary ? (d as Buffer) : d.toString());
          if (got.length === sent.length + 1) resolve();
        }));
        for (const m of sent) ws.send(m);
        // A fragmented message: ws sends fin=false frames for these.
        ws.send('frag', { fin: false });
        ws.send('men', { fin: false });
        ws.send('ted', { fin: true });
        await done;
        assert.deepEqual(got, [...sent, 'fragmented']);
        const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
        ws.close(4000, 'bye');
        assert.deepEqual(await closed, [4000, '']);
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(closes[0]?.code, 4000);
        assert.equal(closes[0]?.reason, 'bye');
      } finally {
        await server.close();
      }
    });
  }

  it('answers pings with the same payload; server close is a clean close handshake', T, async () => {
    const server = new Server({ listen: 'ws://127.0.0.1:0' });
    server.on('connection', (c) => c.on('message', () => c.close(4321, 'server says bye')));
    await server.listen();
    try {
      const ws = await wsOpen(server.addresses[0]!);
      const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
      ws.ping(Buffer.from('are you there'));
      assert.equal((await pong).toString(), 'are you there');
      const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
      ws.send('close me');
      assert.deepEqual(await closed, [4321, 'server says bye']);
    } finally {
      await server.close();
    }
  });

  it('a full server refuses an upgrade with HTTP 503 and the reason', T, async () => {
    const server = new Server({ listen: 'ws://127.0.0.1:0', maxConnections: 1 });
    await server.listen();
    try {
      const first = await wsOpen(server.addresses[0]!);
      const [status, body] = await new Promise<[number, string]>((resolve) => {
        const w = new WebSocket(server.addresses[0]!);
        w.once('unexpected-response', (_req, res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d));
          res.on('end', () => resolve([res.statusCode ?? 0, b]));
        });
        w.once('error', () => {});
      });
      assert.equal(status, 503);
      assert.match(body, /server full/);
      first.close();
    } finally {
      await server.close();
    }
  });

  it('subprotocols and verifyClient over a real socket', T, async () => {
    const { server, url } = await echoServer({
      protocols: ['chat.v2', 'chat.v1'],
      verifyClient: async (info: { headers: Record<string, string> }) => info.headers['authorization'] === 'Bearer ok' || { status: 401, reason: 'bad token' },
    });
    try {
      const ws = await wsOpen(url, { headers: { Authorization: 'Bearer ok' }, protocol: undefined } as never);
      ws.close();
      const ws2 = await new Promise<WebSocket>((resolve, reject) => {
        const w = new WebSocket(url, ['chat.v1', 'chat.v2'], { headers: { Authorization: 'Bearer ok' } });
        w.once('open', () => resolve(w));
        w.once('error', reject);
      });
      assert.equal(ws2.protocol, 'chat.v1');
      ws2.close();
      const status = await new Promise<number>((resolve) => {
        const w = new WebSocket(url, { headers: { Authorization: 'Bearer no' } });
        w.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); w.terminate(); });
        w.once('error', () => {});
      });
      assert.equal(status, 401);
    } finally {
      await server.close();
    }
  });
});

describe('ws interop: our client against the ws package server', () => {
  for (const deflate of [false, true]) {
    it(`connect('ws://...') sends and receives text and binary (permessage-deflate ${deflate ? 'on' : 'off'})`, T, async () => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate ? { threshold: 0 } : false, handleProtocols: (p) => (p.has('echo') ? 'echo' : false) });
      await new Promise((r) => wss.once('listening', r));
      let extensions = '';
      const serverCloses: Array<[number, string]> = [];
      wss.on('connection', (sock, req) => {
        extensions = String(req.headers['sec-websocket-extensions'] ?? '');
        sock.on('message', (d, isBinary) => sock.send(d, { binary: isBinary }));
        sock.on('close', (code, reason) => serverCloses.push([code, reason.toString()]));
      });
      try {
        const port = (wss.address() as net.AddressInfo).port;
        const c = await connect(`ws://127.0.0.1:${port}/path?q=1`, { websocket: { protocols: ['echo'], perMessageDeflate: deflate } });
        assert.equal(extensions.includes('permessage-deflate'), deflate);
        const big = 'Hello, world! '.repeat(50_000);
        const sent: Message[] = ['one', Buffer.from([9, 8, 7]), big, '', 'two'];
        const got: Message[] = [];
        const done = new Promise<void>((resolve) => c.on('message', (m) => { got.push(m); if (got.length === sent.length) resolve(); }));
        for (const m of sent) c.send(m);
        await done;
        assert.deepEqual(got, sent);
        c.close(1000, 'client done');
        const info = await c.closed();
        assert.equal(info.code, 1000);
        await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(serverCloses, [[1000, 'client done']]);
      } finally {
        for (const s of wss.clients) s.terminate();
        await new Promise((r) => wss.close(r));
      }
    });
  }

  it('our client answers a server ping with a pong of the same payload', T, async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    const pong = new Promise<Buffer>((resolve) => wss.on('connection', (sock) => {
      sock.once('pong', resolve);
      sock.ping(Buffer.from('ping from ws'));
    }));
    try {
      const c = await connect(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`);
      assert.equal((await pong).toString(), 'ping from ws');
      c.close();
      await c.closed();
    } finally {
      for (const s of wss.clients) s.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it('a server that answers with a wrong Sec-WebSocket-Accept makes connect() fail', T, async () => {
    const srv = net.createServer((sock) => sock.once('data', () => {
      sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n');
    }));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      await assert.rejects(connect(`ws://127.0.0.1:${port}/`, { connectTimeout: 3000 }), (e: { code?: string; message: string }) => /Accept|handshake/i.test(e.message));
    } finally {
      srv.close();
    }
  });
});

const PY = '/usr/bin/python3';
const pyOk = existsSync(PY);

describe('ws interop: Python websockets as client of our server', { skip: pyOk ? false : 'no /usr/bin/python3' }, () => {
  let server: Server;
  let url: string;
  before(async () => {
    ({ server, url } = await echoServer({ perMessageDeflate: true }));
  });
  after(async () => {
    await server.close();
  });

  it('echoes text and binary with compression negotiated, and closes cleanly', T, async () => {
    const script = `
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1]) as ws:
        out = [ws.response_headers.get('Sec-WebSocket-Extensions', '')]
        for m in ['hello', 'κόσμε', 'x' * 5000]:
            await ws.send(m); r = await ws.recv(); out.append('T:%d:%s' % (len(r), r == m))
        await ws.send(bytes([0, 1, 2, 255])); r = await ws.recv(); out.append('B:%s' % (r == bytes([0, 1, 2, 255])))
        pong = await ws.ping(b'py'); await asyncio.wait_for(pong, 5); out.append('PONG')
        await ws.close(1000, 'py done')
        out.append('CLOSE:%s' % ws.close_code)
    print('|'.join(out))
asyncio.run(main())
`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(PY, ['-c', script, url], { timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout.trim())));
    });
    const parts = out.split('|');
    assert.match(parts[0]!, /^permessage-deflate/);
    assert.deepEqual(parts.slice(1), ['T:5:True', 'T:5:True', 'T:5000:True', 'B:True', 'PONG', 'CLOSE:1000']);
  });
});

describe('ws interop: one port for HTTP and WebSocket', () => {
  it('plain GETs get the httpHandler answer, upgrades at the path get a WebSocket', T, async () => {
    const server = new Server({
      listen: 'ws://127.0.0.1:0',
      websocket: { path: '/ws', httpHandler: (req: { url: string }) => (req.url === '/' ? { status: 200, headers: { 'Content-Type': 'text/html' }, body: '<h1>chat</h1>' } : { status: 404, body: 'not here' }) },
    });
    server.on('connection', (c) => c.on('message', (m) => c.send(m)));
    await server.listen();
    try {
      const base = server.addresses[0]!.replace('ws://', 'http://').replace(/\/ws$/, '');
      const get = (path: string): Promise<[number, string, string]> => new Promise((resolve, reject) => {
        http.get(base + path, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve([res.statusCode ?? 0, String(res.headers['content-type']), body]));
        }).on('error', reject);
      });
      assert.deepEqual(await get('/'), [200, 'text/html', '<h1>chat</h1>']);
      assert.equal((await get('/missing'))[0], 404);
      const ws = await wsOpen(base.replace('http://', 'ws://') + '/ws');
      ws.send('via /ws');
      assert.equal(await nextMessage(ws), 'via /ws');
      ws.close();
      await assert.rejects(wsOpen(base.replace('http://', 'ws://') + '/other'));
    } finally {
      await server.close();
    }
  });
});

describe('ws interop: bad input never crashes or hangs the server', () => {
  let server: Server;
  let url: string;
  before(async () => {
    ({ server, url } = await echoServer({}, { handshakeTimeout: 300, idleTimeout: 300, closeTimeout: 300, maxMessageSize: 1 << 16 }));
  });
  after(async () => {
    await server.close();
  });

  it('garbage instead of a handshake: 400 and closed', T, async () => {
    const { data, closedByServer } = await rawExchange(portOf(url), [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00])]);
    assert.ok(closedByServer);
    assert.match(data.toString('latin1'), /^HTTP\/1\.1 400/);
  });

  it('a partial handshake then silence: closed by the handshake timeout', T, async () => {
    const { closedByServer } = await rawExchange(portOf(url), [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n')], 3000);
    assert.ok(closedByServer);
  });

  it('a half-sent frame then silence: closed by the idle timeout', T, async () => {
    const f = frame({ opcode: 1, payload: 'x'.repeat(100) });
    const { data, closedByServer } = await rawExchange(portOf(url), [UPGRADE, f.subarray(0, 20)], 3000);
    assert.ok(closedByServer);
    assert.match(data.toString('latin1'), /^HTTP\/1\.1 101/);
  });

  it('an unmasked client frame: close 1002, then the socket closes', T, async () => {
    const { data, closedByServer } = await rawExchange(portOf(url), [UPGRADE, frame({ opcode: 1, payload: 'hi', mask: false })]);
    assert.ok(closedByServer);
    const frames = parseFrames(data.subarray(data.indexOf('\r\n\r\n') + 4));
    assert.equal(frames.at(-1)!.opcode, 8);
    assert.equal(frames.at(-1)!.payload.readUInt16BE(0), 1002);
  });

  it('a 2^63 length: close 1002; a length over the limit: close 1009', T, async () => {
    for (const [len, code] of [[1n << 63n, 1002], [1n << 40n, 1009]] as const) {
      const { data, closedByServer } = await rawExchange(portOf(url), [UPGRADE, frame({ opcode: 2, fakeLength: len, lenForm: 64 }).subarray(0, 14)]);
      assert.ok(closedByServer);
      const frames = parseFrames(data.subarray(data.indexOf('\r\n\r\n') + 4));
      assert.equal(frames.at(-1)!.payload.readUInt16BE(0), code);
    }
  });

  it('the server still serves after all that', T, async () => {
    const ws = await wsOpen(url);
    ws.send('still here');
    assert.equal(await nextMessage(ws), 'still here');
    ws.close();
  });
});
