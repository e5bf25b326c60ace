// The native TCP transport (native/tcp.c + src/transport/native.ts) at its edges: backpressure
// and drain, the buffer bound, half-close, resets, slot reuse, large reads, many clients in one
// batch, and a handler that throws in the middle of a batch. Peers are plain node:net sockets.
// Every other test file runs over the native transport too (`npm run test:unit`), and again over
// node:net (`npm run test:net`, SWITCHBOARD_NATIVE=0); these cases pass under both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { Server, type Connection } from '../src/index.js';
import { NativeSocket, nativeAvailable } from '../src/transport/native.js';
import { portOf, waitFor } from './helpers.js';

const wantNative = process.env.SWITCHBOARD_NATIVE !== '0';

async function serve(listen: string | string[], extra: Partial<ConstructorParameters<typeof Server>[0]> = {},
  onConn: (c: Connection) => void = (c) => c.on('message', (m) => c.send(m))): Promise<Server> {
  const server = new Server({ listen, ...extra });
  server.on('connection', onConn);
  return server.listen();
}

function dial(url: string): Promise<net.Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port), allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

function readAll(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d) => parts.push(d));
  return new Promise((resolve) => s.once('end', () => resolve(Buffer.concat(parts))));
}

test('the native transport is built and serves plain TCP listeners (TLS and Unix stay on node:net)', async () => {
  assert.equal(nativeAvailable, wantNative, wantNative
    ? 'build/switchboard_tcp.node is missing or failed to load: run `npm run build:native -- --strict` to see why'
    : 'SWITCHBOARD_NATIVE=0 must turn the native transport off');
  const seen: Connection[] = [];
  const server = await serve(['text://127.0.0.1:0', 'ws://127.0.0.1:0'], {}, (c) => seen.push(c));
  const optOut = await serve('text://127.0.0.1:0', { native: false }, (c) => seen.push(c));
  try {
    const a = await dial(server.addresses[0]!);
    const b = await dial(optOut.addresses[0]!);
    await waitFor(() => seen.length === 2);
    const kinds = seen.map((c) => c.socket instanceof NativeSocket);
    assert.deepEqual(kinds, [wantNative, false]);
    assert.equal(seen[0]!.remoteAddress, '127.0.0.1');
    assert.equal(seen[0]!.remotePort, a.localPort);
    assert.equal(seen[0]!.localPort, portOf(server.addresses[0]!));
    a.destroy();
    b.destroy();
  } finally {
    await server.close();
    await optOut.close();
  }
});

test('IPv6 loopback and a host name listen natively; EADDRINUSE is an error with its code', async () => {
  const server = await serve(['text://[::1]:0', 'text://localhost:0']);
  try {
    for (const url of server.addresses) {
      const s = await dial(url);
      s.write('ping\n');
      const got = await new Promise<string>((resolve) => s.once('data', (d) => resolve(String(d))));
      assert.equal(got, 'ping\n');
      s.destroy();
    }
    const clash = new Server({ listen: `text://[::1]:${portOf(server.addresses[0]!)}` });
    await assert.rejects(clash.listen(), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE' && /address already in use/.test(err.message));
  } finally {
    await server.close();
  }
});

test('a peer that does not read: send() turns false, bufferedAmount grows, and drain comes once it reads', { timeout: 10000 }, async () => {
  let conn: Connection | undefined;
  const server = await serve('tcp://127.0.0.1:0', { maxBufferedAmount: 64 * 1024 * 1024 }, (c) => { conn = c; });
  try {
    const peer = await dial(server.addresses[0]!);
    peer.pause();
    await waitFor(() => conn !== undefined);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    // Keep sending until the kernel's buffers (a few MB on loopback) are full and bytes stay with us.
    while (sent < 32 * 1024 * 1024 && conn!.bufferedAmount < 1024 * 1024) {
      conn!.send(chunk);
      sent += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(conn!.bufferedAmount >= 1024 * 1024, `bytes never stayed with us (${conn!.bufferedAmount})`);
    assert.equal(conn!.send(Buffer.from('x')), false, 'send() must ask to wait for drain');
    sent += 1;
    const drained = new Promise<void>((r) => conn!.once('drain', () => r()));
    let received = 0;
    peer.on('data', (d) => { received += d.length; });
    peer.resume();
    await drained;
    await waitFor(() => received === sent, 5000, `all ${sent} bytes received (got ${received})`);
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('over maxBufferedAmount a slow reader is closed with ERR_BUFFER_FULL; the server stays responsive', { timeout: 10000 }, async () => {
  let conn: Connection | undefined;
  const server = await serve('tcp://127.0.0.1:0', { maxBufferedAmount: 256 * 1024 }, (c) => {
    conn ??= c;
    c.on('message', (m) => c.send(m));
  });
  try {
    const peer = await dial(server.addresses[0]!);
    peer.pause();
    await waitFor(() => conn !== undefined);
    const closed = conn!.closed();
    const chunk = Buffer.alloc(64 * 1024, 2);
    for (let i = 0; i < 400 && conn!.readyState === 'open'; i++) {
      conn!.send(chunk);
      await new Promise((r) => setImmediate(r));
    }
    const info = await closed;
    assert.equal(info.error?.code, 'ERR_BUFFER_FULL');
    const other = await dial(server.addresses[0]!);
    other.write('still here');
    assert.equal(String(await new Promise<Buffer>((r) => other.once('data', r))), 'still here');
    other.destroy();
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('half-close: a line and FIN get their answer, then the server ends its side too', { timeout: 5000 }, async () => {
  const server = await serve('text://127.0.0.1:0');
  try {
    const s = await dial(server.addresses[0]!);
    const all = readAll(s);
    s.end('first\nsecond\nno newline');
    assert.equal(String(await all), 'first\nsecond\nno newline\n');
    await waitFor(() => server.connections.size === 0);
  } finally {
    await server.close();
  }
});

test('a reset peer closes its connection with the socket error', { timeout: 5000 }, async () => {
  let conn: Connection | undefined;
  const server = await serve('text://127.0.0.1:0', {}, (c) => { conn = c; });
  try {
    const s = await dial(server.addresses[0]!);
    await waitFor(() => conn !== undefined);
    const closed = conn!.closed();
    s.resetAndDestroy();
    const info = await closed;
    assert.equal(info.code, 1006);
    assert.equal(info.error?.code, 'ECONNRESET');
  } finally {
    await server.close();
  }
});

test('slots are reused: 300 connections one after another, then 200 at once, each gets only its own bytes', { timeout: 20000 }, async () => {
  const server = await serve('text://127.0.0.1:0');
  try {
    for (let i = 0; i < 300; i++) {
      const s = await dial(server.addresses[0]!);
      const all = readAll(s);
      s.end(`conn ${i}\n`);
      assert.equal(String(await all), `conn ${i}\n`);
    }
    const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const s = await dial(server.addresses[0]!);
      const all = readAll(s);
      const lines = Array.from({ length: 20 }, (_, k) => `client ${i} line ${k}`);
      s.end(lines.join('\n') + '\n');
      return [String(await all), lines.join('\n') + '\n'];
    }));
    for (const [got, want] of results) assert.equal(got, want);
    await waitFor(() => server.connections.size === 0, 5000);
  } finally {
    await server.close();
  }
});

test('a 24 MB stream arrives whole and in order across many reads and batches', { timeout: 15000 }, async () => {
  const parts: Buffer[] = [];
  let conn: Connection | undefined;
  const server = await serve('tcp://127.0.0.1:0', {}, (c) => {
    conn = c;
    c.on('message', (m) => parts.push(m as Buffer));
  });
  try {
    const s = await dial(server.addresses[0]!);
    const data = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    s.end(data);
    await waitFor(() => conn !== undefined);
    await conn!.closed();
    const got = Buffer.concat(parts);
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data), 'received bytes differ from those sent');
    assert.ok(parts.length > 1);
  } finally {
    await server.close();
  }
});

test('many sends in one round (over 64 KiB, one writev) arrive whole and in order, also when the kernel takes only part', { timeout: 10000 }, async () => {
  let conn: Connection | undefined;
  const server = await serve('frame://127.0.0.1:0', {}, (c) => { conn = c; });
  try {
    const peer = await dial(server.addresses[0]!);
    peer.pause(); // the first rounds fill the kernel's buffers: later writev calls are partial and queue the rest
    await waitFor(() => conn !== undefined);
    const want: Buffer[] = [];
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 50; i++) {
        const m = Buffer.alloc(4096 + i, (round * 50 + i) & 0xff);
        m.writeUInt32BE(round * 50 + i, 0);
        want.push(m);
        conn!.send(m);
      }
      await new Promise((r) => setImmediate(r));
    }
    const expected = Buffer.concat(want.map((m) => { const h = Buffer.alloc(4); h.writeUInt32BE(m.length); return Buffer.concat([h, m]); }));
    const parts: Buffer[] = [];
    let got = 0;
    peer.on('data', (d: Buffer) => { parts.push(d); got += d.length; });
    peer.resume();
    await waitFor(() => got >= expected.length, 8000, `all ${expected.length} bytes (got ${got})`);
    assert.ok(Buffer.concat(parts).equals(expected), 'frames differ or are out of order');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('chaos: peers that reset at random moments while the server broadcasts large messages', { timeout: 20000 }, async () => {
  // Seeded, so a failure repeats: write errors, cancelled queued writes and slot reuse under churn.
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const server = await serve('ws://127.0.0.1:0', { maxBufferedAmount: 1024 * 1024 }, (c) => c.on('message', (m) => c.send(m)));
  const big = Buffer.alloc(48 * 1024, 7);
  const pump = setInterval(() => server.broadcast(big), 2);
  try {
    const { default: WebSocket } = await import('ws');
    for (let wave = 0; wave < 6; wave++) {
      await Promise.all(Array.from({ length: 40 }, async () => {
        const ws = new WebSocket(server.addresses[0]!);
        ws.on('error', () => {});
        await new Promise((r) => { ws.once('open', r); ws.once('close', r); });
        if (rand() < 0.5) ws.send(Buffer.alloc(Math.floor(rand() * 200_000)));
        await new Promise((r) => setTimeout(r, rand() * 30));
        const how = rand();
        if (how < 0.4) (ws as unknown as { _socket: net.Socket })._socket?.resetAndDestroy();
        else if (how < 0.7) ws.terminate();
        else ws.close();
      }));
    }
    clearInterval(pump);
    await waitFor(() => server.connections.size === 0, 8000, 'every connection closed');
    // Still serving.
    const s = await dial(server.addresses[0]!.replace('ws://', 'http://'));
    s.write('GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(String(await new Promise<Buffer>((r) => s.once('data', r))), /^HTTP\/1\.1 (404|426)/);
    s.destroy();
  } finally {
    clearInterval(pump);
    await server.close();
  }
});

test('async iteration that lags pauses reading and resumes it; nothing is lost or reordered', { timeout: 10000 }, async () => {
  const lines: string[] = [];
  const server = await serve('text://127.0.0.1:0', {}, (c) => {
    void (async () => {
      for await (const m of c) {
        lines.push(m as string);
        if (lines.length % 100 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
  });
  try {
    const s = await dial(server.addresses[0]!);
    const want = Array.from({ length: 3000 }, (_, i) => `line ${i}`);
    s.write(want.join('\n') + '\n');
    await waitFor(() => lines.length === want.length, 8000, 'all lines');
    assert.deepEqual(lines, want);
    s.destroy();
  } finally {
    await server.close();
  }
});

test('a handler that throws does not lose the other connections\' input of the same batch', { timeout: 15000 }, () => {
  // In a child process: the throw must surface as an uncaught exception there, not in this runner.
  const script = `
    import net from 'node:net';
    import { Server } from './src/index.ts';
    const errors = [];
    process.on('uncaughtException', (e) => errors.push(e.message));
    const server = new Server({ listen: 'text://127.0.0.1:0' });
    server.on('connection', (c) => c.on('message', (m) => { if (m === 'boom') throw new Error('boom'); c.send('ok ' + m); }));
    await server.listen();
    const port = Number(new URL(server.addresses[0]).port);
    const socks = await Promise.all(Array.from({ length: 20 }, () => new Promise((r) => { const s = net.connect(port, '127.0.0.1', () => r(s)); })));
    const replies = socks.map((s) => new Promise((r) => s.once('data', (d) => r(String(d)))));
    socks.forEach((s, i) => s.write(i === 7 ? 'boom\\n' : 'n' + i + '\\n'));
    const got = await Promise.race([Promise.all(replies.filter((_, i) => i !== 7)), new Promise((r) => setTimeout(() => r('timeout'), 5000))]);
    console.log(JSON.stringify({ got, errors }));
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 12000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { got: string[] | string; errors: string[] };
  assert.deepEqual(out.errors, ['boom']);
  assert.deepEqual(out.got, Array.from({ length: 20 }, (_, i) => `ok n${i}\n`).filter((_, i) => i !== 7));
});
