/**
 * TLS listeners under hostile peers: clients that leave before or during the handshake, stay
 * silent, trickle bytes or flood. The server's sockets must be freed at once or at the handshake
 * deadline (counted in /proc/self/fd and `ss`: these tests run in the server's process), pending
 * handshakes count against maxConnections, and other listeners of the same Server keep serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Server, connect, SwitchboardError } from '../src/index.js';
import { RawPeer, makeCertificate, portOf, waitFor } from './helpers.js';

const { key, cert } = makeCertificate();
const T = { timeout: 60_000 };

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Server-side sockets on local port `port` in a TCP state (`ss`: what the kernel holds, whatever the process thinks). */
function sockets(port: number, state: 'close-wait' | 'established'): number {
  const out = execFileSync('ss', ['-Htan', 'state', state, `( sport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** The first flight of a real TLS client (its ClientHello), caught by a plain TCP server. */
async function clientHello(): Promise<Buffer> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (s) => s.once('data', (d: Buffer) => { resolve(d); s.destroy(); })));
  const c = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  srv.close();
  assert.equal(hello[0], 0x16, 'a TLS handshake record');
  return hello;
}

type Leave = 'fin' | 'hello+fin' | 'reset' | 'hello+reset';

/** Connects and leaves before the handshake is done, as a port scanner or an impatient client does. */
function leaveEarly(port: number, how: Leave, hello: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.resume();
    // Our side is freed within a second whatever the server does (only the server's side is measured).
    const t = setTimeout(() => s.destroy(), 1000);
    s.on('close', () => { clearTimeout(t); resolve(); });
    s.once('connect', () => {
      if (how.startsWith('hello')) s.write(hello);
      if (how.endsWith('reset')) s.resetAndDestroy();
      else s.end();
    });
  });
}

async function inBatches(n: number, batch: number, one: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => one(i + j)));
  }
}

test('600 clients that leave before or during the TLS handshake leave no socket behind (fds back to baseline, no CLOSE-WAIT)', T, async () => {
  const hello = await clientHello();
  // A long handshake deadline: what is measured is the close at the peer's FIN or reset, not the timeout.
  const server = new Server({ listen: ['tls+text://127.0.0.1:0', 'wss://127.0.0.1:0'], tls: { key, cert }, handshakeTimeout: 60_000 });
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  const failures: string[] = [];
  server.on('tlsClientError', (err) => failures.push(err.code));
  let errors = 0;
  server.on('error', () => errors++);
  await server.listen();
  try {
    const ports = server.addresses.map(portOf);
    const baseline = openFds();
    const ways: Leave[] = ['fin', 'hello+fin', 'reset', 'hello+reset'];
    await inBatches(600, 100, (i) => leaveEarly(ports[i % 2]!, ways[Math.floor(i / 2) % 4]!, hello));
    await waitFor(() => openFds() <= baseline + 2, 5000, `open fds back to the baseline ${baseline} (now ${openFds()})`);
    for (const port of ports) assert.equal(sockets(port, 'close-wait'), 0, `no CLOSE-WAIT on port ${port}`);
    assert.equal(server.sweeper.size, 0, 'no pending handshake left');
    // Each one is reported once, as an event (never as 'error').
    await waitFor(() => failures.length === 600, 5000, `600 tlsClientError events (got ${failures.length})`);
    assert.ok(failures.every((c) => typeof c === 'string' && c.length > 0));
    assert.equal(errors, 0);
    // The listeners still serve.
    const c = await connect(server.addresses[0]!.replace('127.0.0.1', 'localhost'), { tls: { ca: cert } });
    c.send('still here');
    assert.equal((await c[Symbol.asyncIterator]().next()).value, 'still here');
    c.close();
  } finally {
    await server.close();
  }
});

test('a bare TCP connect, a ClientHello then silence, a truncated record and a trickled ClientHello are closed at handshakeTimeout', T, async () => {
  const hello = await clientHello();
  const server = new Server({ listen: ['tls+text://127.0.0.1:0', 'wss://127.0.0.1:0'], tls: { key, cert }, handshakeTimeout: 300 });
  const failures: SwitchboardError[] = [];
  server.on('tlsClientError', (err) => failures.push(err));
  await server.listen();
  const trickles: NodeJS.Timeout[] = [];
  try {
    const peers: RawPeer[] = [];
    for (const url of server.addresses) {
      const port = portOf(url);
      const bare = await RawPeer.connect(port);
      const silent = await RawPeer.connect(port);
      silent.write(hello);
      // A record header that announces 16 KiB, then nothing.
      const truncated = await RawPeer.connect(port);
      truncated.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]));
      // One byte of the ClientHello every 50 ms: activity does not move the deadline.
      const trickle = await RawPeer.connect(port);
      let i = 0;
      trickles.push(setInterval(() => { if (i < hello.length && !trickle.closed) trickle.write(hello.subarray(i, ++i)); }, 50));
      peers.push(bare, silent, truncated, trickle);
    }
    const started = Date.now();
    // Generous: the bound is 300 ms plus a sweep tick; a loaded machine is slow, never 5 s slow.
    for (const p of peers) await p.untilClosed(5000);
    assert.ok(Date.now() - started < 5000);
    await waitFor(() => server.sweeper.size === 0, 3000, 'no handshake held');
    await waitFor(() => failures.length === peers.length, 3000, 'one tlsClientError per peer');
    assert.ok(failures.every((e) => e instanceof SwitchboardError && e.code === 'ERR_HANDSHAKE_TIMEOUT'), failures.map((e) => e.code).join());
    // The trickled ClientHello was cut short by the deadline, not finished.
    assert.ok(failures.every((e) => /within 300 ms/.test(e.message)));
  } finally {
    for (const t of trickles) clearInterval(t);
    await server.close();
  }
});

test('the deadline runs from the TCP accept: the TLS handshake and the WebSocket upgrade share one handshakeTimeout', T, async () => {
  const server = new Server({ listen: 'wss://127.0.0.1:0', tls: { key, cert }, handshakeTimeout: 4000 });
  await server.listen();
  try {
    // TCP now, TLS after 2.4 s (well within the deadline), then the HTTP upgrade never comes.
    const tcp = net.connect({ port: portOf(server.addresses[0]!), host: '127.0.0.1' });
    await once(tcp, 'connect');
    await new Promise((r) => setTimeout(r, 2400));
    const s = tls.connect({ socket: tcp, servername: 'localhost', ca: cert });
    s.on('error', () => {});
    await once(s, 'secureConnect');
    const secured = Date.now();
    s.resume(); // reads what the server says before it closes (a 408 for the request head that never came)
    await once(s, 'close');
    const after = Date.now() - secured;
    // What is left of the 4 s (1.6 s and a sweep tick), not 4 s more: a bound with a second of slack.
    assert.ok(after < 3600, `closed ${after} ms after the TLS handshake`);
  } finally {
    await server.close();
  }
});

test('pending TLS handshakes count against maxConnections; over the limit they are refused without a handshake', T, async () => {
  const hello = await clientHello();
  const server = new Server({ listen: ['tls+text://127.0.0.1:0', 'text://127.0.0.1:0'], tls: { key, cert }, maxConnections: 5, handshakeTimeout: 30_000 });
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  const refused: string[] = [];
  server.on('refused', (r) => refused.push(r.reason));
  await server.listen();
  const [tlsPort, textPort] = server.addresses.map(portOf) as [number, number];
  const pending: RawPeer[] = [];
  try {
    for (let i = 0; i < 5; i++) pending.push(await RawPeer.connect(tlsPort));
    await waitFor(() => sockets(tlsPort, 'established') === 5, 3000, 'five pending handshakes held');
    // The sixth TLS client: closed at once, not one byte of TLS sent back to its ClientHello.
    const sixth = await RawPeer.connect(tlsPort);
    sixth.write(hello);
    const answer = await sixth.untilClosed(3000).catch(() => null);
    assert.ok(answer !== null, 'the sixth TLS client is closed at once');
    assert.equal(answer.length, 0, 'and sent no TLS bytes');
    // A plain listener of the same server is full too (the limit is the server's).
    const plain = await RawPeer.connect(textPort);
    assert.match(await plain.untilClosed(3000), /server full/);
    assert.equal(refused.length, 2);
    // Once the pending ones leave, there is room again.
    for (const p of pending) p.destroy();
    await waitFor(() => sockets(tlsPort, 'established') === 0, 3000, 'pending handshakes gone');
    const c = await connect(server.addresses[0]!.replace('127.0.0.1', 'localhost'), { tls: { ca: cert } });
    c.send('room again');
    assert.equal((await c[Symbol.asyncIterator]().next()).value, 'room again');
    c.close();
  } finally {
    for (const p of pending) p.destroy();
    await server.close();
  }
});

test('server.close() ends pending TLS handshakes at once', T, async () => {
  const hello = await clientHello();
  const server = new Server({ listen: ['tls+text://127.0.0.1:0', 'wss://127.0.0.1:0'], tls: { key, cert }, handshakeTimeout: 60_000, closeTimeout: 60_000 });
  const failures: string[] = [];
  server.on('tlsClientError', (err) => failures.push(err.code));
  await server.listen();
  const peers: RawPeer[] = [];
  for (const url of server.addresses) {
    peers.push(await RawPeer.connect(portOf(url)));
    const p = await RawPeer.connect(portOf(url));
    p.write(hello);
    peers.push(p);
  }
  // Each handshake is under way: ServerHello came back, or the server holds the bare connect.
  for (const p of peers.filter((_, i) => i % 2 === 1)) await p.until((t) => t.length > 0);
  await waitFor(() => server.addresses.reduce((n, u) => n + sockets(portOf(u), 'established'), 0) === peers.length, 3000, 'pending handshakes held');
  const closed = server.close();
  for (const p of peers) await p.untilClosed(3000);
  // Far sooner than handshakeTimeout or closeTimeout.
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('close() did not resolve')), 5000))]);
  // Ended by the server: not reported as the clients' failures.
  assert.deepEqual(failures, []);
});

test('tls+text:// still answers a client that half-closes after its request', T, async () => {
  const server = new Server({ listen: 'tls+text://127.0.0.1:0', tls: { key, cert } });
  server.on('connection', (c) => c.on('message', (m) => c.send(`echo ${String(m)}`)));
  await server.listen();
  try {
    // A half-open TCP socket under it: our FIN does not end our reading.
    const tcp = net.connect({ port: portOf(server.addresses[0]!), host: '127.0.0.1', allowHalfOpen: true });
    const s = tls.connect({ socket: tcp, servername: 'localhost', ca: cert });
    await once(s, 'secureConnect');
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString('utf8'); });
    s.end('one\ntwo\n');
    await once(s, 'end');
    assert.equal(got, 'echo one\necho two\n');
    s.destroy();
  } finally {
    await server.close();
  }
});

test('client certificates are still checked: none or an unknown one is refused and reported, a trusted one is served', T, async () => {
  const client = makeCertificate();
  const stranger = makeCertificate();
  const server = new Server({ listen: 'tls+text://127.0.0.1:0', tls: { key, cert, requestCert: true, rejectUnauthorized: true, ca: client.cert } });
  let served = 0;
  server.on('connection', (c) => { served++; c.on('message', (m) => c.send(`hello ${String(m)}`)); });
  const failures: string[] = [];
  server.on('tlsClientError', (err) => failures.push(err.code));
  await server.listen();
  try {
    const url = server.addresses[0]!.replace('127.0.0.1', 'localhost');
    const c = await connect(url, { tls: { ca: cert, key: client.key, cert: client.cert } });
    c.send('trusted');
    assert.equal((await c[Symbol.asyncIterator]().next()).value, 'hello trusted');
    c.close();
    for (const tlsOptions of [{ ca: cert }, { ca: cert, key: stranger.key, cert: stranger.cert }]) {
      // TLS 1.3: the client may finish first and learn of the refusal from the close.
      await connect(url, { tls: tlsOptions, connectTimeout: 3000 }).then((conn) => {
        // Served by mistake: counted below; do not wait for it forever.
        const t = setTimeout(() => conn.close(), 2000);
        return conn.closed().finally(() => clearTimeout(t));
      }, () => undefined);
    }
    await waitFor(() => failures.length === 2, 3000, 'two refused client certificates reported');
    assert.equal(served, 1, 'only the trusted client reached the application');
  } finally {
    await server.close();
  }
});

test('client side: connect() to a listener that never completes TLS fails within connectTimeout and frees its socket', T, async () => {
  // Accepts TCP and says nothing.
  const accepted: net.Socket[] = [];
  const silent = net.createServer((s) => { accepted.push(s); s.on('error', () => {}); s.resume(); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    for (const url of [`tls+text://127.0.0.1:${port}`, `wss://127.0.0.1:${port}/`]) {
      const started = Date.now();
      await assert.rejects(connect(url, { connectTimeout: 300 }), (err: SwitchboardError) => err.code === 'ERR_CONNECT_TIMEOUT');
      assert.ok(Date.now() - started < 3000);
    }
    // The client closed its sockets: the silent server sees both go.
    await waitFor(() => accepted.length === 2 && accepted.every((s) => s.destroyed || s.readableEnded), 3000, 'client sockets closed');
  } finally {
    for (const s of accepted) s.destroy();
    silent.close();
  }
});

test('a flood of early-leaving TLS clients cannot exhaust the fds: the plain ws:// listener of the same Server still serves', T, async () => {
  // A server process with few fds (256), so that the flood exhausts them when sockets leak.
  const fixture = fileURLToPath(new URL('./tls-flood-fixture.ts', import.meta.url));
  const child = spawn('bash', ['-c', 'ulimit -n 256 && exec node --import tsx "$0"', fixture], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SB_KEY: key.toString('utf8'), SB_CERT: cert.toString('utf8') },
  });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
    await waitFor(() => out.includes('\n'), 15_000, 'the fixture server to listen');
    const [tlsUrl, wsUrl] = JSON.parse(out.split('\n')[0]!) as [string, string];
    const hello = await clientHello();
    const ways: Leave[] = ['fin', 'hello+fin', 'reset'];
    // Over twice the fd limit.
    await inBatches(600, 50, (i) => leaveEarly(portOf(tlsUrl), ways[i % 3]!, hello));
    const { default: WebSocket } = await import('ws');
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(wsUrl);
      await once(ws, 'open');
      ws.send(`after the flood ${i}`);
      const [data] = await once(ws, 'message') as [Buffer];
      assert.equal(String(data), `after the flood ${i}`);
      ws.close();
      await once(ws, 'close');
    }
    const c = await connect(tlsUrl.replace('127.0.0.1', 'localhost'), { tls: { ca: cert } });
    c.send('tls too');
    assert.equal((await c[Symbol.asyncIterator]().next()).value, 'tls too');
    c.close();
  } finally {
    child.kill();
    await once(child, 'exit').catch(() => {});
  }
});

test('the accept hook refuses a TLS client before its handshake: not one TLS byte is sent back', T, async () => {
  const hello = await clientHello();
  const seen: string[] = [];
  const server = new Server({ listen: 'tls+text://127.0.0.1:0', tls: { key, cert }, accept: (remote) => { seen.push(remote.address); return false; } });
  const refused: string[] = [];
  server.on('refused', (r) => refused.push(r.reason));
  await server.listen();
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    peer.write(hello);
    const answer = await peer.untilClosed(3000);
    assert.equal(answer.length, 0, 'no ServerHello');
    assert.deepEqual(seen, ['127.0.0.1']);
    assert.deepEqual(refused, ['refused by the accept hook']);
  } finally {
    await server.close();
  }
});
