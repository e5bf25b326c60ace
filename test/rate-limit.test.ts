/**
 * Per-connection rate limits (ServerOptions.rateLimit), from the caller's side over real sockets:
 * a flooder is slowed to the rate ('pause') or closed with the reason ('close'), and the other
 * clients are served meanwhile. Counts are asserted against bounds computed from the measured
 * time, so a loaded machine only makes them easier to meet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import WebSocket from 'ws';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, SwitchboardError, connect, type Connection, type Message } from '../src/index.js';
import { RawPeer, makeCertificate, portOf, waitFor } from './helpers.js';

/** A server that records what each connection delivered (and when), and answers "ping" with "pong". */
async function recorder(listen: string, rateLimit: ConstructorParameters<typeof Server>[0]['rateLimit']): Promise<{
  server: Server; got: Map<Connection, Message[]>; firstAt: Map<Connection, number>;
}> {
  const server = new Server({ listen, rateLimit });
  const got = new Map<Connection, Message[]>();
  const firstAt = new Map<Connection, number>();
  server.on('connection', (conn) => {
    got.set(conn, []);
    conn.on('message', (m) => {
      if (!firstAt.has(conn)) firstAt.set(conn, Date.now());
      got.get(conn)!.push(m);
      if (String(m) === 'ping') conn.send('pong');
    });
  });
  await server.listen();
  return { server, got, firstAt };
}

const lines = (n: number, prefix = 'm'): string => Array.from({ length: n }, (_, i) => `${prefix}${i}\n`).join('');

test("rateLimit 'pause': a text flooder is slowed to the rate, gets everything through in order, and others are served meanwhile", { timeout: 20_000 }, async () => {
  const { server, got, firstAt } = await recorder('text://127.0.0.1:0', { messages: 50, per: 1000 });
  try {
    const port = portOf(server.addresses[0]!);
    const other = await RawPeer.connect(port);
    const flooder = await RawPeer.connect(port);
    await waitFor(() => got.size === 2, 3000, 'two connections');
    const flooderConn = [...got.keys()].find((c) => c.remotePort === flooder.socket.localPort)!;
    const N = 200;
    flooder.write(lines(N));
    await waitFor(() => firstAt.has(flooderConn), 3000, 'the first line');
    const start = firstAt.get(flooderConn)!;

    // While the flooder is held back, the other client's pings are answered at once.
    for (let i = 1; i <= 3; i++) {
      other.write('ping\n');
      await other.until((t) => t.split('pong').length - 1 === i, 2000);
    }
    assert.ok(got.get(flooderConn)!.length < N, 'the pings were answered while the flood was still held back');

    await new Promise((r) => setTimeout(r, 1000));
    const delivered = got.get(flooderConn)!.length;
    const elapsed = (Date.now() - start) / 1000;
    // Burst of 50, then 50 per second; 15 of slack for timer rounding.
    assert.ok(delivered <= 50 + 50 * elapsed + 15, `${delivered} lines in ${elapsed.toFixed(2)} s: over the rate`);
    assert.ok(delivered < N, 'the flood is not delivered at once');
    assert.ok(server.limitStats.rateLimitPauses >= 1);

    // Everything arrives, in order: (200 - 50) / 50 = 3 s more at most.
    await waitFor(() => got.get(flooderConn)!.length === N, 10_000, 'every flooded line');
    assert.deepEqual(got.get(flooderConn), Array.from({ length: N }, (_, i) => `m${i}`));
    // Reading resumed: the flooder is served like anyone once it is under the rate.
    flooder.write('ping\n');
    await flooder.until((t) => t.includes('pong'), 3000);
    other.destroy();
    flooder.destroy();
  } finally {
    await server.close();
  }
});

test("rateLimit 'pause': ten flooders at once are each held to the rate by the one shared timer, and each gets everything through", { timeout: 20_000 }, async () => {
  const { server, got, firstAt } = await recorder('text://127.0.0.1:0', { messages: 40, per: 1000, burst: { messages: 10 } });
  try {
    const port = portOf(server.addresses[0]!);
    const peers = await Promise.all(Array.from({ length: 10 }, () => RawPeer.connect(port)));
    await waitFor(() => got.size === 10, 3000, 'ten connections');
    const N = 60;
    for (const [i, p] of peers.entries()) p.write(lines(N, `c${i}-`));
    await waitFor(() => firstAt.size === 10, 3000, 'a first line from each');
    await new Promise((r) => setTimeout(r, 500));
    const now = Date.now();
    for (const [conn, msgs] of got) {
      const elapsed = (now - firstAt.get(conn)!) / 1000;
      assert.ok(msgs.length <= 10 + 40 * elapsed + 10, `${msgs.length} lines in ${elapsed.toFixed(2)} s: over the rate`);
    }
    // (60 - 10) / 40 = 1.25 s each, all at once.
    await waitFor(() => [...got.values()].every((m) => m.length === N), 10_000, 'every line of every flooder');
    for (const [i, p] of peers.entries()) {
      const conn = [...got.keys()].find((c) => c.remotePort === p.socket.localPort)!;
      assert.deepEqual(got.get(conn), Array.from({ length: N }, (_, j) => `c${i}-${j}`));
      p.destroy();
    }
  } finally {
    await server.close();
  }
});

test("rateLimit 'pause': a connection held back longer than idleTimeout is not closed as idle", { timeout: 15_000 }, async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0', idleTimeout: 1000, rateLimit: { messages: 5, burst: { messages: 1 } } });
  const got: string[] = [];
  const states = new Set<string>();
  server.on('connection', (conn) => {
    conn.on('message', (m) => { got.push(String(m)); states.add(conn.readyState); });
  });
  await server.listen();
  try {
    const p = await RawPeer.connect(portOf(server.addresses[0]!));
    // Sent at once, delivered over ~2.6 s: longer than idleTimeout, with nothing new read meanwhile.
    p.write(lines(14));
    await waitFor(() => got.length === 14, 10_000, 'every line');
    // An idle close would have set the connection closing while the held lines were delivered.
    assert.deepEqual([...states], ['open']);
    assert.equal(server.connections.size, 1);
    assert.deepEqual(got, Array.from({ length: 14 }, (_, i) => `m${i}`));
    p.destroy();
  } finally {
    await server.close();
  }
});

test("rateLimit 'pause' on bytes: a tcp:// flooder's bytes are read at the byte rate, all of them, in order", { timeout: 20_000 }, async () => {
  const MiB = 1024 * 1024;
  const { server, got, firstAt } = await recorder('tcp://127.0.0.1:0', { bytes: MiB, per: 1000, burst: { bytes: 256 * 1024 } });
  try {
    const flooder = await RawPeer.connect(portOf(server.addresses[0]!));
    await waitFor(() => got.size === 1, 3000, 'the connection');
    const conn = [...got.keys()][0]!;
    const payload = Buffer.alloc(5 * MiB);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    flooder.write(payload);
    await waitFor(() => firstAt.has(conn), 3000, 'the first bytes');
    const start = firstAt.get(conn)!;
    const size = (): number => got.get(conn)!.reduce((n, b) => n + (b as Buffer).length, 0);
    await new Promise((r) => setTimeout(r, 1000));
    const n = size();
    const elapsed = (Date.now() - start) / 1000;
    // The burst, the rate, and what one read round can take before reading pauses (1 MiB) plus slack.
    assert.ok(n <= 256 * 1024 + MiB * elapsed + 1.5 * MiB, `${n} bytes in ${elapsed.toFixed(2)} s: over the rate`);
    await waitFor(() => size() === payload.length, 12_000, 'every byte');
    assert.ok(Buffer.concat(got.get(conn) as Buffer[]).equals(payload), 'the bytes arrive whole and in order');
    flooder.destroy();
  } finally {
    await server.close();
  }
});

test("rateLimit 'close': a text flooder is told and closed with ERR_RATE_LIMIT; the other client stays open", { timeout: 10_000 }, async () => {
  const { server, got } = await recorder('text://127.0.0.1:0', { messages: 20, policy: 'close' });
  try {
    const port = portOf(server.addresses[0]!);
    const other = await RawPeer.connect(port);
    const flooder = await RawPeer.connect(port);
    await waitFor(() => got.size === 2, 3000, 'two connections');
    const flooderConn = [...got.keys()].find((c) => c.remotePort === flooder.socket.localPort)!;
    flooder.write(lines(500));
    const text = await flooder.untilClosed(5000);
    assert.match(text, /^rate limit exceeded\n$/);
    const info = await flooderConn.closed();
    assert.equal(info.error?.code, 'ERR_RATE_LIMIT');
    assert.equal(info.error?.message, 'rate limit exceeded: over 20 messages/s');
    assert.equal(info.code, 1006, 'text:// has no close codes: an end for an error is 1006');
    assert.ok(info.error instanceof SwitchboardError);
    // The burst (20, plus what refilled while the lines arrived) was delivered, nothing after the limit.
    const delivered = got.get(flooderConn)!.length;
    assert.ok(delivered >= 20 && delivered <= 30, `${delivered} lines delivered`);
    assert.equal(server.limitStats.rateLimitCloses, 1);
    other.write('ping\n');
    await other.until((t) => t === 'pong\n', 3000);
    assert.equal(server.connections.size, 1);
    other.destroy();
  } finally {
    await server.close();
  }
});

test("rateLimit over WebSocket: 'close' sends 1008 'rate limit exceeded'; 'pause' delivers everything in order at the rate", { timeout: 20_000 }, async () => {
  const closing = await recorder('ws://127.0.0.1:0', { messages: 20, policy: 'close' });
  try {
    const url = closing.server.addresses[0]!;
    const other = new WebSocket(url);
    const flooder = new WebSocket(url);
    await Promise.all([other, flooder].map((ws) => new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); })));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => flooder.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    for (let i = 0; i < 300; i++) flooder.send(`m${i}`);
    assert.deepEqual(await closed, { code: 1008, reason: 'rate limit exceeded' });
    const pong = new Promise((resolve) => other.once('message', (m) => resolve(m.toString())));
    other.send('ping');
    assert.equal(await pong, 'pong');
    assert.equal(other.readyState, WebSocket.OPEN);
    other.close();
  } finally {
    await closing.server.close();
  }

  const pausing = await recorder('ws://127.0.0.1:0', { messages: 50 });
  try {
    const flooder = new WebSocket(pausing.server.addresses[0]!);
    await new Promise((resolve, reject) => { flooder.once('open', resolve); flooder.once('error', reject); });
    await waitFor(() => pausing.got.size === 1, 3000, 'the connection');
    const conn = [...pausing.got.keys()][0]!;
    const N = 150;
    for (let i = 0; i < N; i++) flooder.send(`m${i}`);
    await waitFor(() => pausing.firstAt.has(conn), 3000, 'the first message');
    const start = pausing.firstAt.get(conn)!;
    await new Promise((r) => setTimeout(r, 1000));
    const delivered = pausing.got.get(conn)!.length;
    const elapsed = (Date.now() - start) / 1000;
    assert.ok(delivered <= 50 + 50 * elapsed + 15, `${delivered} messages in ${elapsed.toFixed(2)} s: over the rate`);
    await waitFor(() => pausing.got.get(conn)!.length === N, 10_000, 'every message');
    assert.deepEqual(pausing.got.get(conn), Array.from({ length: N }, (_, i) => `m${i}`));
    flooder.close();
  } finally {
    await pausing.server.close();
  }
});

test("rateLimit 'close' over frame://, unix+text:// and tls+text://: the flooder gets the reason as a message and is closed", { timeout: 15_000 }, async () => {
  const { key, cert } = makeCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-rate-'));
  const server = new Server({
    listen: ['frame://127.0.0.1:0', `unix+text://${join(dir, 's.sock')}`, 'tls+text://127.0.0.1:0'],
    tls: { key, cert },
    rateLimit: { messages: 5, policy: 'close' },
  });
  const infos: Promise<{ code: number; error?: SwitchboardError }>[] = [];
  server.on('connection', (conn) => infos.push(conn.closed()));
  await server.listen();
  try {
    for (const url of server.addresses) {
      const c = await connect(url.startsWith('tls') ? url.replace('127.0.0.1', 'localhost') : url, { tls: { ca: cert } });
      const received: string[] = [];
      c.on('message', (m) => received.push(String(m)));
      for (let i = 0; i < 100; i++) c.send(`m${i}`);
      await c.closed();
      assert.deepEqual(received, ['rate limit exceeded'], url);
    }
    const closed = await Promise.all(infos);
    assert.deepEqual(closed.map((i) => i.error?.code), ['ERR_RATE_LIMIT', 'ERR_RATE_LIMIT', 'ERR_RATE_LIMIT']);
    assert.equal(server.limitStats.rateLimitCloses, 3);
  } finally {
    await server.close();
  }
});

test('rateLimit over UDP: datagrams over the rate are dropped and counted', { timeout: 10_000 }, async () => {
  const { server, got, firstAt } = await recorder('udp://127.0.0.1:0', { messages: 10, per: 1000 });
  const client = dgram.createSocket('udp4');
  try {
    const port = portOf(server.addresses[0]!);
    const start = Date.now();
    for (let i = 0; i < 100; i++) client.send(`d${i}`, port, '127.0.0.1');
    await waitFor(() => got.size === 1 && server.limitStats.datagramsDropped + [...got.values()][0]!.length >= 100, 5000, 'every datagram handled');
    const conn = [...got.keys()][0]!;
    const delivered = got.get(conn)!.length;
    const elapsed = (Date.now() - (firstAt.get(conn) ?? start)) / 1000;
    assert.ok(delivered >= 10, 'the burst passes');
    assert.ok(delivered <= 10 + 10 * elapsed + 3, `${delivered} datagrams in ${elapsed.toFixed(2)} s: over the rate`);
    assert.equal(server.limitStats.datagramsDropped, 100 - delivered);
    // The ones that passed are the first ones, in order.
    assert.deepEqual(got.get(conn)!.slice(0, 10).map(String), Array.from({ length: 10 }, (_, i) => `d${i}`));
  } finally {
    client.close();
    await server.close();
  }
});

test('rateLimit options are checked (ERR_INVALID_OPTION)', () => {
  const bad: unknown[] = [
    {}, { messages: 0 }, { messages: -1 }, { bytes: Number.NaN }, { messages: 10, per: 0 }, { messages: 10, policy: 'drop' },
    { messages: 10, burst: { messages: 0.5 } }, { bytes: 10, burst: { messages: 5 } }, { messages: 10, burst: 5 }, { messages: 10, rate: 1 },
  ];
  for (const rateLimit of bad) {
    assert.throws(() => new Server({ listen: 'text://127.0.0.1:0', rateLimit: rateLimit as never }),
      (err: SwitchboardError) => err.code === 'ERR_INVALID_OPTION', JSON.stringify(rateLimit));
  }
  // A valid one builds.
  new Server({ listen: 'text://127.0.0.1:0', rateLimit: { messages: 10, bytes: 1000, per: 500, burst: { messages: 20, bytes: 4000 }, policy: 'close' } });
});
