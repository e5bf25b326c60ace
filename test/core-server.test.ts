import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, connect, type Connection } from '../src/index.js';
import { RawPeer, makeCertificate, portOf, waitFor } from './helpers.js';

async function echo(listen: string | string[], extra: Partial<ConstructorParameters<typeof Server>[0]> = {}): Promise<Server> {
  const server = new Server({ listen, ...extra });
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  return server.listen();
}

test('text, frame and raw round trips on one server; addresses report the bound port', { timeout: 5000 }, async () => {
  const server = await echo(['text://127.0.0.1:0', 'frame://127.0.0.1:0', 'tcp://127.0.0.1:0']);
  try {
    assert.equal(server.addresses.length, 3);
    assert.ok(server.addresses.every((a) => portOf(a) > 0));
    const t = await connect(server.addresses[0]!);
    t.send('héllo');
    const it = t[Symbol.asyncIterator]();
    assert.equal((await it.next()).value, 'héllo');
    const f = await connect(server.addresses[1]!);
    f.send(Buffer.from([0, 1, 2, 255]));
    assert.deepEqual((await f[Symbol.asyncIterator]().next()).value, Buffer.from([0, 1, 2, 255]));
    const r = await connect(server.addresses[2]!);
    r.send('raw bytes');
    assert.equal(String((await r[Symbol.asyncIterator]().next()).value), 'raw bytes');
    for (const c of [t, f, r]) c.close();
  } finally {
    await server.close();
  }
});

test('IPv6 and Unix socket round trips (lines, and WebSocket over a Unix socket)', { timeout: 5000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-'));
  const server = await echo(['text://[::1]:0', `unix+text://${join(dir, 's.sock')}`, `unix+ws://${join(dir, 'ws.sock')}`]);
  try {
    for (const url of server.addresses) {
      const c = await connect(url);
      c.send('ping over ' + url);
      assert.equal((await c[Symbol.asyncIterator]().next()).value, 'ping over ' + url);
      if (url.startsWith('text://')) assert.equal(c.remoteFamily, 'IPv6');
      c.close();
    }
  } finally {
    await server.close();
  }
});

test('TLS round trip with a certificate made in the test', { timeout: 10000 }, async () => {
  const { key, cert } = makeCertificate();
  const server = await echo('tls+text://127.0.0.1:0', { tls: { key, cert } });
  try {
    const c = await connect(server.addresses[0]!.replace('127.0.0.1', 'localhost'), { tls: { ca: cert } });
    c.send('secret');
    assert.equal((await c[Symbol.asyncIterator]().next()).value, 'secret');
    c.close();
    await assert.rejects(connect(server.addresses[0]!), /self-signed|unable to verify|certificate/i);
  } finally {
    await server.close();
  }
  await assert.rejects(new Server({ listen: 'tls://127.0.0.1:0' }).listen(), /needs a certificate/);
});

test('a multi-byte character split across two writes arrives whole', { timeout: 5000 }, async () => {
  const got: string[] = [];
  const server = new Server({ listen: 'text://127.0.0.1:0' });
  server.on('connection', (c) => c.on('message', (m) => got.push(m as string)));
  await server.listen();
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    const bytes = Buffer.from('世界👍🏽\n');
    peer.write(bytes.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 50));
    peer.write(bytes.subarray(2, 9));
    await new Promise((r) => setTimeout(r, 50));
    peer.write(bytes.subarray(9));
    await waitFor(() => got.length === 1);
    assert.deepEqual(got, ['世界👍🏽']);
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('an over-long line closes only its own connection, with a clear error', { timeout: 5000 }, async () => {
  const closes: string[] = [];
  const server = new Server({ listen: 'text://127.0.0.1:0', maxMessageSize: 16 });
  server.on('connection', (c) => {
    c.on('message', (m) => c.send(m));
    c.on('close', (info) => closes.push(info.error?.code ?? 'clean'));
  });
  await server.listen();
  try {
    const port = portOf(server.addresses[0]!);
    const good = await RawPeer.connect(port);
    const bad = await RawPeer.connect(port);
    bad.write('x'.repeat(100) + '\n');
    const said = await bad.untilClosed();
    assert.match(said, /error: line longer than the limit of 16 bytes/);
    good.write('still here\n');
    assert.equal(await good.until((t) => t.includes('\n')), 'still here\n');
    assert.deepEqual(closes, ['ERR_LINE_TOO_LONG']);
    good.destroy();
  } finally {
    await server.close();
  }
});

test('max connections: the next client gets a one-line reason and is closed', { timeout: 5000 }, async () => {
  const server = await echo('text://127.0.0.1:0', { maxConnections: 2 });
  try {
    const port = portOf(server.addresses[0]!);
    const a = await RawPeer.connect(port);
    const b = await RawPeer.connect(port);
    await waitFor(() => server.connections.size === 2);
    const c = await RawPeer.connect(port);
    assert.match(await c.untilClosed(), /^server full: 2 connections already.*\n$/);
    a.destroy();
    await waitFor(() => server.connections.size === 1);
    const d = await RawPeer.connect(port);
    d.write('in\n');
    assert.equal(await d.until((t) => t.endsWith('\n')), 'in\n');
    for (const p of [b, d]) p.destroy();
  } finally {
    await server.close();
  }
});

test('max accepts: the server stops listening after N connections and closes when they are done', { timeout: 5000 }, async () => {
  const server = await echo('text://127.0.0.1:0', { maxAccepts: 2 });
  const port = portOf(server.addresses[0]!);
  const a = await RawPeer.connect(port);
  const b = await RawPeer.connect(port);
  await waitFor(() => server.connections.size === 2);
  await assert.rejects(RawPeer.connect(port), /ECONNREFUSED/);
  let closed = false;
  void server.closed().then(() => { closed = true; });
  a.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(closed, false);
  b.destroy();
  await waitFor(() => closed, 2000, 'server close');
});

test('idle timeout closes a quiet connection and not a talking one', { timeout: 5000 }, async () => {
  const server = await echo('text://127.0.0.1:0', { idleTimeout: 200 });
  try {
    const port = portOf(server.addresses[0]!);
    const quiet = await RawPeer.connect(port);
    const talker = await RawPeer.connect(port);
    const started = Date.now();
    const timer = setInterval(() => talker.write('.\n'), 50);
    await quiet.untilClosed(2000);
    clearInterval(timer);
    assert.ok(Date.now() - started >= 180);
    assert.equal(talker.closed, false);
    talker.destroy();
  } finally {
    await server.close();
  }
});

test('a slow reader is dropped once its send buffer is over the bound; others go on', { timeout: 10000 }, async () => {
  const closes: (string | undefined)[] = [];
  const server = new Server({ listen: 'text://127.0.0.1:0', maxBufferedAmount: 64 * 1024 });
  server.on('connection', (c) => c.on('close', (i) => closes.push(i.error?.code)));
  await server.listen();
  try {
    const port = portOf(server.addresses[0]!);
    const slow = await RawPeer.connect(port);
    slow.socket.pause(); // never reads
    const fast = await RawPeer.connect(port);
    await waitFor(() => server.connections.size === 2);
    const line = 'x'.repeat(1000);
    // 20 KB a round, then a pause in which the fast reader catches up; the slow one never does.
    for (let i = 0; i < 20000 && !closes.includes('ERR_BUFFER_FULL'); i++) {
      server.broadcast(line);
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => closes.includes('ERR_BUFFER_FULL'), 5000, 'slow reader dropped');
    assert.equal(server.connections.size, 1);
    assert.equal(fast.closed, false);
    fast.destroy();
  } finally {
    await server.close();
  }
});

test('close(): stops accepting, flushes queued writes, closes connections', { timeout: 5000 }, async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0' });
  let conn: Connection | undefined;
  server.on('connection', (c) => { conn = c; });
  await server.listen();
  const port = portOf(server.addresses[0]!);
  const peer = await RawPeer.connect(port);
  await waitFor(() => conn !== undefined);
  const big = 'y'.repeat(200_000);
  conn!.send(big);
  await server.close();
  const got = await peer.untilClosed();
  assert.equal(got, big + '\n');
  await assert.rejects(RawPeer.connect(port), /ECONNREFUSED/);
});

test('topics: publish encodes once per wire format and skips `except`', { timeout: 5000 }, async () => {
  const server = new Server({ listen: ['text://127.0.0.1:0', 'frame://127.0.0.1:0'] });
  server.on('connection', (c) => c.subscribe('room'));
  await server.listen();
  try {
    const a = await connect(server.addresses[0]!);
    const b = await connect(server.addresses[1]!);
    const c = await connect(server.addresses[0]!);
    await waitFor(() => server.subscribers('room').size === 3);
    const sender = [...server.subscribers('room')][0]!;
    const n = server.publish('room', 'hi all', { except: sender });
    assert.equal(n, 2);
    const got = await Promise.race([
      Promise.all([a, b, c].filter((x) => x.localPort !== sender.remotePort).map(async (x) => String((await x[Symbol.asyncIterator]().next()).value))),
      new Promise((_, rej) => setTimeout(() => rej(new Error('no delivery')), 2000)),
    ]);
    assert.deepEqual(got, ['hi all', 'hi all']);
    assert.deepEqual(server.topics(), ['room']);
    for (const x of [a, b, c]) x.close();
    await waitFor(() => server.subscribers('room').size === 0);
    assert.deepEqual(server.topics(), []);
  } finally {
    await server.close();
  }
});

test('invalid options and URLs fail before any socket opens', () => {
  assert.throws(() => new Server({ listen: ['text://127.0.0.1:0', 'nope://x'] }), { code: 'ERR_UNKNOWN_SCHEME' });
  assert.throws(() => new Server({ listen: 'text://127.0.0.1:0', idleTimeout: -1 }), /idleTimeout must be a number >= 0/);
  assert.throws(() => new Server({ listen: [] }), /at least one address/);
});

test('connect: refused connections reject with ECONNREFUSED', { timeout: 5000 }, async () => {
  const server = await echo('text://127.0.0.1:0');
  const url = server.addresses[0]!;
  await server.close();
  await assert.rejects(connect(url), { code: 'ECONNREFUSED' });
});

test('listen backlog: 4096 by default (capped by somaxconn), or the backlog option, on native and node:net listeners', { timeout: 5000 }, async () => {
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  // For a listening socket, ss's Send-Q column is the backlog the kernel applies.
  const backlogOf = (url: string): number => {
    const row = execFileSync('ss', ['-Hltn', `sport = :${portOf(url)}`], { encoding: 'utf8' }).trim().split(/\s+/);
    return Number(row[2]);
  };
  for (const native of [true, false]) {
    const byDefault = await echo('ws://127.0.0.1:0', { native });
    const chosen = await echo('text://127.0.0.1:0', { native, backlog: 100 });
    try {
      assert.equal(backlogOf(byDefault.addresses[0]!), Math.min(4096, somaxconn), `default backlog (native: ${native})`);
      assert.equal(backlogOf(chosen.addresses[0]!), 100, `backlog option (native: ${native})`);
    } finally {
      await byDefault.close();
      await chosen.close();
    }
  }
});

test('text sent in one round is joined and encoded once: order kept, text and bytes mixed, UTF-8, bufferedAmount in bytes', { timeout: 5000 }, async () => {
  const amounts: number[] = [];
  const server = new Server({ listen: ['text://127.0.0.1:0', 'tcp://127.0.0.1:0'] });
  server.on('connection', (c) => {
    if (c.address.protocol === 'line') {
      // One synchronous burst: all of it waits for the same flush.
      for (const m of ['héllo', Buffer.from('raw'), '测试', '', 'end']) c.send(m);
      amounts.push(c.bufferedAmount);
    } else {
      c.send('ab');
      c.send(Buffer.from('cd'));
      c.send('é!');
    }
  });
  await server.listen();
  try {
    const text = await connect(server.addresses[0]!);
    const lines: unknown[] = [];
    for await (const line of text) {
      lines.push(line);
      if (line === 'end') break;
    }
    assert.deepEqual(lines, ['héllo', 'raw', '测试', '', 'end']);
    // héllo\n 7 + raw\n 4 + 测试\n 7 + \n 1 + end\n 4
    assert.deepEqual(amounts, [23]);

    const raw = await connect(server.addresses[1]!);
    let got = Buffer.alloc(0);
    for await (const chunk of raw) {
      got = Buffer.concat([got, chunk as Buffer]);
      if (got.length >= 7) break;
    }
    assert.equal(got.toString('utf8'), 'abcdé!');
  } finally {
    await server.close();
  }
});

test('joined text and the limits: a long burst arrives whole and in order, send() turns false past the high-water mark, the drop ceiling counts exact bytes', { timeout: 10000 }, async () => {
  const results: { falseAt: number; drained: Promise<void> }[] = [];
  const kept: boolean[] = [];
  const burst = new Server({ listen: 'text://127.0.0.1:0' });
  burst.on('connection', (c) => {
    // 3000 lines of 21 bytes (63 KB) in one round: past the text join size and past the 16 KiB high-water mark.
    let falseAt = -1;
    for (let i = 0; i < 3000; i++) if (!c.send(`line ${String(i).padStart(15, '0')}`) && falseAt < 0) falseAt = i;
    results.push({ falseAt, drained: new Promise((r) => c.once('drain', () => r())) });
  });
  // maxBufferedAmount 1000: one round may queue 4000 bytes. Lines of 49 é (2 bytes each), a digit and the newline are
  // 100 bytes, so exactly 40 fit (counted as 50 UTF-16 units each, 80 would seem to fit) and the rest are dropped.
  const ceiling = new Server({ listen: 'text://127.0.0.1:0', maxBufferedAmount: 1000, bufferPolicy: 'drop' });
  ceiling.on('connection', (c) => {
    for (let i = 0; i < 60; i++) kept.push(c.send('é'.repeat(49) + String(i % 10)));
    c.send('late'); // dropped too: the ceiling holds for the whole round
  });
  await burst.listen();
  await ceiling.listen();
  try {
    const a = await connect(burst.addresses[0]!);
    let n = 0;
    for await (const line of a) {
      assert.equal(line, `line ${String(n).padStart(15, '0')}`);
      if (++n === 3000) break;
    }
    const [{ falseAt, drained }] = results;
    // 16 KiB / 21 bytes: the 781st line (index 780) reaches the high-water mark.
    assert.equal(falseAt, 780);
    await drained;

    const b = await connect(ceiling.addresses[0]!);
    const got: unknown[] = [];
    const it = b[Symbol.asyncIterator]();
    for (let i = 0; i < 40; i++) got.push((await it.next()).value);
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => 'é'.repeat(49) + String(i % 10)));
    assert.deepEqual(kept.slice(0, 41), [...Array(40).fill(true), false]);
    assert.ok(kept.slice(40).every((k) => !k), 'every line past the ceiling is refused');
  } finally {
    await burst.close();
    await ceiling.close();
  }
});
