/**
 * Messages that arrive before the application listens (a server that speaks first: its first
 * frame comes in the same read as the 101 answer, before `await connect()` returns) reach the
 * first 'message' listener or the iterator, in order; and a valid message that precedes a
 * protocol error in the same read still reaches the application, whose reply goes out before
 * the close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { Server, connect, type Connection, type Message } from '../src/index.js';
import { waitFor } from './helpers.js';

async function speaksFirst(url: string, greeting: Message[]): Promise<Server> {
  const server = new Server({ listen: url });
  server.on('connection', (c) => {
    for (const m of greeting) c.send(m);
    c.on('message', (m) => c.send(m));
  });
  return server.listen();
}

for (const scheme of ['ws', 'text', 'frame'] as const) {
  const msg = (s: string): Message => (scheme === 'frame' ? Buffer.from(s) : s);
  const text = (m: Message): string => String(m);

  test(`${scheme}://: a listener attached after await connect() gets what the server sent first, in order`, { timeout: 5000 }, async () => {
    const server = await speaksFirst(`${scheme}://127.0.0.1:0`, [msg('welcome'), msg('second')]);
    try {
      const c = await connect(server.addresses[0]!);
      const got: string[] = [];
      // The user's code runs after the await: the greeting may already have been read.
      c.on('message', (m) => got.push(text(m)));
      c.send(msg('echo me'));
      await waitFor(() => got.length >= 3, 3000, 'three messages');
      assert.deepEqual(got, ['welcome', 'second', 'echo me']);
      c.close();
    } finally {
      await server.close();
    }
  });

  test(`${scheme}://: a listener attached much later still gets the greeting, before later messages`, { timeout: 5000 }, async () => {
    const server = await speaksFirst(`${scheme}://127.0.0.1:0`, [msg('one'), msg('two')]);
    try {
      const c = await connect(server.addresses[0]!);
      c.send(msg('three'));
      await new Promise((r) => setTimeout(r, 100)); // everything has arrived by now
      const first: string[] = [];
      const second: string[] = [];
      c.on('message', (m) => first.push(text(m)));
      c.on('message', (m) => second.push(text(m)));
      c.send(msg('four'));
      await waitFor(() => first.length >= 4, 3000, 'four messages');
      assert.deepEqual(first, ['one', 'two', 'three', 'four']);
      assert.deepEqual(second, first, 'listeners attached in the same tick both get the held messages');
      c.close();
    } finally {
      await server.close();
    }
  });

  test(`${scheme}://: the async iterator, started late, gets the greeting`, { timeout: 5000 }, async () => {
    const server = await speaksFirst(`${scheme}://127.0.0.1:0`, [msg('hello')]);
    try {
      const c = await connect(server.addresses[0]!);
      await new Promise((r) => setTimeout(r, 50));
      const it = c[Symbol.asyncIterator]();
      assert.equal(text((await it.next()).value as Message), 'hello');
      c.close();
    } finally {
      await server.close();
    }
  });
}

test('server side: a connection handler that awaits before listening loses nothing the client sent at once', { timeout: 5000 }, async () => {
  const server = new Server({ listen: ['ws://127.0.0.1:0', 'text://127.0.0.1:0'] });
  server.on('connection', async (c: Connection) => {
    await new Promise((r) => setTimeout(r, 50)); // e.g. a database lookup
    c.on('message', (m) => c.send(`got ${String(m)}`));
  });
  await server.listen();
  try {
    for (const url of server.addresses) {
      const c = await connect(url);
      c.send('a');
      c.send('b');
      const it = c[Symbol.asyncIterator]();
      assert.equal((await it.next()).value, 'got a', url);
      assert.equal((await it.next()).value, 'got b', url);
      c.close();
    }
  } finally {
    await server.close();
  }
});

test('while nobody listens, reading pauses after 256 held messages, and resumes once a listener takes them', { timeout: 8000 }, async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0' });
  server.on('connection', (c) => {
    for (let i = 0; i < 2000; i++) c.send(`line ${i}`);
  });
  await server.listen();
  try {
    const c = await connect(server.addresses[0]!);
    await new Promise((r) => setTimeout(r, 200));
    const got: string[] = [];
    c.on('message', (m) => got.push(String(m)));
    await waitFor(() => got.length === 2000, 5000, '2000 lines');
    assert.deepEqual(got.slice(0, 3), ['line 0', 'line 1', 'line 2']);
    assert.equal(got[1999], 'line 1999');
    c.close();
  } finally {
    await server.close();
  }
});

// ---- a valid message before a protocol error, in the same read ----

/** Server frame (unmasked). */
function frame(opcode: number, payload: Buffer, rsv = 0): Buffer {
  return Buffer.concat([Buffer.from([0x80 | (rsv << 4) | opcode, payload.length]), payload]);
}

/** Client frames received by a raw server: unmasked payloads with their opcodes. */
function parseClientFrames(buf: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const opcode = buf[i]! & 0x0f;
    let len = buf[i + 1]! & 0x7f;
    let p = i + 2;
    if (len === 126) { len = buf.readUInt16BE(p); p += 2; }
    if (p + 4 + len > buf.length) break;
    const mask = buf.subarray(p, p + 4);
    const payload = Buffer.from(buf.subarray(p + 4, p + 4 + len));
    for (let k = 0; k < payload.length; k++) payload[k]! ^= mask[k & 3]!;
    out.push({ opcode, payload });
    i = p + 4 + len;
  }
  return out;
}

/** A raw WebSocket server that answers the upgrade with 101 and `after` in one write, and records what the client sends. */
async function rawWsServer(after: Buffer): Promise<{ url: string; received: () => Buffer; close: () => void }> {
  let received = Buffer.alloc(0);
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    let head = '';
    let upgraded = false;
    s.on('data', (d) => {
      if (upgraded) { received = Buffer.concat([received, d]); return; }
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      upgraded = true;
      const key = /sec-websocket-key: *(.+)\r\n/i.exec(head)![1]!.trim();
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      s.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`), after]));
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}/`, received: () => received, close: () => { for (const s of sockets) s.destroy(); srv.close(); } };
}

test('ws client: a text message then a frame with a reserved bit in one read: the echo goes out, then close 1002', { timeout: 5000 }, async () => {
  const peer = await rawWsServer(Buffer.concat([frame(1, Buffer.from('Hello, world!')), frame(1, Buffer.from('bad'), 2), frame(9, Buffer.alloc(0))]));
  try {
    const c = await connect(peer.url, { websocket: { perMessageDeflate: false } });
    const sent: boolean[] = [];
    c.on('message', (m) => sent.push(c.send(m)));
    const info = await c.closed();
    assert.deepEqual(sent, [true], 'the reply was accepted');
    assert.equal(info.code, 1002);
    await waitFor(() => parseClientFrames(peer.received()).length >= 2, 3000, 'echo and close');
    const frames = parseClientFrames(peer.received());
    assert.equal(frames[0]!.opcode, 1);
    assert.equal(frames[0]!.payload.toString(), 'Hello, world!');
    assert.equal(frames[1]!.opcode, 8);
    assert.equal(frames[1]!.payload.readUInt16BE(0), 1002);
    assert.equal(frames.length, 2, 'nothing after the close (the ping after the bad frame is not answered)');
  } finally {
    peer.close();
  }
});

test('ws client: messages then the server\'s close in one read: every echo goes out before the close echo', { timeout: 5000 }, async () => {
  const close = Buffer.from([0x03, 0xe8]);
  const peer = await rawWsServer(Buffer.concat([frame(1, Buffer.from('one')), frame(2, Buffer.from([1, 2, 3])), frame(8, close)]));
  try {
    const c = await connect(peer.url, { websocket: { perMessageDeflate: false } });
    c.on('message', (m) => c.send(m));
    const info = await c.closed();
    assert.equal(info.code, 1000);
    const frames = parseClientFrames(peer.received());
    assert.deepEqual(frames.map((f) => f.opcode), [1, 2, 8]);
    assert.equal(frames[0]!.payload.toString(), 'one');
    assert.deepEqual([...frames[1]!.payload], [1, 2, 3]);
  } finally {
    peer.close();
  }
});

test('text client: a line then an over-long line in one read: the line is handled and answered before the close', { timeout: 5000 }, async () => {
  let received = '';
  const srv = net.createServer((s) => {
    s.on('data', (d) => { received += d.toString(); });
    s.on('error', () => {});
    s.write(`hello\n${'x'.repeat(200)}\n`);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const c = await connect(`text://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, { maxMessageSize: 100 });
    await new Promise((r) => setTimeout(r, 50)); // both lines have arrived: the error is already known
    c.on('message', (m) => c.send(`echo ${String(m)}`));
    const info = await c.closed();
    assert.equal(info.error?.code, 'ERR_LINE_TOO_LONG');
    await waitFor(() => received.includes('echo hello\n'), 3000, 'the reply');
  } finally {
    srv.close();
  }
});
