/**
 * Operating a server: the admin endpoint (/metrics as Prometheus text, /healthz, /status, the
 * bearer token), the staggered drain, JSON log lines, `switchboard status`, and the rolling
 * restart of --workers on SIGHUP. The CLI runs as a subprocess, the way an operator runs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import WebSocket from 'ws';
import { Server } from '../src/core/server.js';
import { SwitchboardError } from '../src/errors.js';
import { RedisHub } from '../src/hubs/index.js';
import { freePort, waitFor } from './helpers.js';
import { RedisProcess } from './hub-support.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

// ---- a strict reader of the Prometheus text format (0.0.4) ----

interface Sample { name: string; labels: Record<string, string>; value: number }

function parseProm(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const seenBlock = new Set<string>();
  let current = '';
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/.exec(line);
    if (t) {
      assert.ok(!types.has(t[1]!), `one TYPE line for ${t[1]}`);
      types.set(t[1]!, t[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    if (name !== current) {
      assert.ok(!seenBlock.has(name), `the samples of ${name} are together`);
      seenBlock.add(name);
      current = name;
    }
    assert.ok(types.has(name), `${name} has a TYPE line before its samples`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      assert.ok(l, `labels of ${JSON.stringify(line)}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
    samples.push({ name, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

function sum(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

async function scrape(url: string, token?: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseProm(await res.text()).samples;
}

function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function textClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function echoServer(options: Partial<ConstructorParameters<typeof Server>[0]> & { listen: string | string[] }): Server {
  const server = new Server(options);
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  return server;
}

test('/metrics is Prometheus text whose counters match the traffic; /status and /healthz agree', { timeout: 30000 }, async () => {
  const server = echoServer({ listen: ['ws://127.0.0.1:0', 'text://127.0.0.1:0'], admin: 'http://127.0.0.1:0', maxConnections: 6 });
  await server.listen();
  const admin = server.adminUrl!;
  assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const [wsUrl, textUrl] = server.addresses as [string, string];
  try {
    const clients = await Promise.all(Array.from({ length: 5 }, () => openWs(wsUrl)));
    let echoes = 0;
    for (const c of clients) c.on('message', () => echoes++);
    for (const c of clients) for (let i = 0; i < 10; i++) c.send(`message ${i}`); // 9 bytes each
    const text = await textClient(Number(new URL(textUrl.replace('text:', 'http:')).port));
    let textIn = '';
    text.on('data', (d) => { textIn += d; });
    text.write('one\ntwo\nthree\n');
    await waitFor(() => echoes === 50 && textIn === 'one\ntwo\nthree\n', 5000, 'the echoes');
    // The server is full (6): the seventh is refused.
    const refused = new WebSocket(wsUrl);
    await once(refused, 'error');

    let s = await scrape(admin);
    const ws = { listener: wsUrl, protocol: 'ws' };
    const line = { listener: textUrl, protocol: 'line' };
    assert.equal(sum(s, 'switchboard_connections', ws), 5);
    assert.equal(sum(s, 'switchboard_connections', line), 1);
    assert.equal(sum(s, 'switchboard_connections_accepted_total', ws), 5);
    assert.equal(sum(s, 'switchboard_messages_received_total', ws), 50);
    assert.equal(sum(s, 'switchboard_messages_sent_total', ws), 50);
    assert.equal(sum(s, 'switchboard_messages_received_total', line), 3);
    assert.equal(sum(s, 'switchboard_messages_sent_total', line), 3);
    // 50 masked frames of 9 bytes (6 bytes of header each) after the handshakes; 50 unmasked (2 bytes).
    assert.ok(sum(s, 'switchboard_bytes_received_total', ws) >= 50 * 15, 'bytes in');
    assert.ok(sum(s, 'switchboard_bytes_sent_total', ws) >= 50 * 11, 'bytes out');
    assert.equal(sum(s, 'switchboard_bytes_received_total', line), 14);
    assert.equal(sum(s, 'switchboard_bytes_sent_total', line), 14);
    assert.equal(sum(s, 'switchboard_connections_refused_total', { reason: 'server_full' }), 1);
    assert.equal(sum(s, 'switchboard_healthy'), 1);
    assert.ok(s.some((x) => x.name === 'switchboard_event_loop_delay_p99_seconds'), 'event-loop delay');

    // Closes, by reason: five normal WebSocket closes and one TCP end.
    for (const c of clients) c.close(1000);
    text.end();
    await waitFor(() => server.connections.size === 0, 5000, 'the closes');
    s = await scrape(admin);
    assert.equal(sum(s, 'switchboard_connections_closed_total', { ...ws, reason: '1000' }), 5);
    assert.equal(sum(s, 'switchboard_connections_closed_total', { ...line, reason: '1000' }), 1);
    assert.equal(sum(s, 'switchboard_connections', ws), 0);

    const status = await (await fetch(`${admin}/status`)).json() as { healthy: boolean; total: { listeners: { url: string; messagesIn: number }[] } };
    assert.equal(status.healthy, true);
    assert.equal(status.total.listeners.find((l) => l.url === wsUrl)?.messagesIn, 50);
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    assert.equal((await fetch(`${admin}/nothing`)).status, 404);
    assert.equal((await fetch(`${admin}/metrics`, { method: 'POST' })).status, 405);
  } finally {
    await server.close();
  }
  // Closed with the server.
  await assert.rejects(fetch(`${admin}/healthz`));
});

test('/metrics counts what the drop policy dropped, apart from what was sent', { timeout: 20000 }, async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0', admin: 'http://127.0.0.1:0', bufferPolicy: 'drop', maxBufferedAmount: 64 * 1024 });
  const line = 'x'.repeat(16 * 1024 - 1);
  let accepted = 0;
  server.on('connection', (c) => c.on('message', () => {
    // One round of 100 messages of 16 KiB to a peer that reads nothing: past 4 x 64 KiB they are dropped.
    for (let i = 0; i < 100; i++) if (c.send(line)) accepted++;
  }));
  await server.listen();
  const client = await textClient(Number(new URL(server.addresses[0]!.replace('text:', 'http:')).port));
  try {
    client.pause();
    client.write('go\n');
    await waitFor(() => server.snapshot().listeners[0]!.messagesIn === 1, 5000, 'the message');
    const s = await scrape(server.adminUrl!);
    const sent = sum(s, 'switchboard_messages_sent_total');
    const dropped = sum(s, 'switchboard_messages_dropped_total');
    assert.equal(sent + dropped, 100);
    assert.ok(dropped >= 50, `dropped ${dropped}`);
    assert.ok(sent >= accepted && sent >= 1, `sent ${sent}`);
  } finally {
    client.destroy();
    await server.close();
  }
});

test('/healthz is 503 while the Redis hub is down, 200 again when it is back; /metrics says switchboard_hub_up', { timeout: 40000 }, async () => {
  const redis = await RedisProcess.start();
  const logs: string[] = [];
  const server = echoServer({ listen: 'text://127.0.0.1:0', admin: 'http://127.0.0.1:0', hub: new RedisHub(redis.url, { log: (m) => logs.push(m), maxRetryDelay: 100 }) });
  try {
    await server.listen();
    const admin = server.adminUrl!;
    const health = async (): Promise<number> => (await fetch(`${admin}/healthz`)).status;
    assert.equal(await health(), 200);
    assert.equal(sum(await scrape(admin), 'switchboard_hub_up', { kind: 'redis' }), 1);
    await redis.stop();
    const deadline = Date.now() + 10000;
    while ((await health()) !== 503) {
      assert.ok(Date.now() < deadline, 'healthz did not turn 503');
      await new Promise((r) => setTimeout(r, 50));
    }
    const h = await fetch(`${admin}/healthz`);
    assert.match(await h.text(), /hub down \(redis\)/);
    assert.equal(sum(await scrape(admin), 'switchboard_hub_up', { kind: 'redis' }), 0);
    await redis.start();
    const back = Date.now() + 10000;
    while ((await health()) !== 200) {
      assert.ok(Date.now() < back, 'healthz did not turn 200 again');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await server.close();
    await redis.stop();
  }
});

test('the bearer token is enforced; off loopback a token is required', { timeout: 20000 }, async () => {
  const server = echoServer({ listen: 'text://127.0.0.1:0', admin: { url: 'http://127.0.0.1:0', token: 's3cret' } });
  await server.listen();
  const admin = server.adminUrl!;
  try {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 's3cret' }, { authorization: 'Bearer s3cret2' }] as Record<string, string>[]) {
      for (const path of ['/metrics', '/healthz', '/status']) {
        const res = await fetch(admin + path, { headers });
        assert.equal(res.status, 401, `${path} with ${JSON.stringify(headers)}`);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
        assert.doesNotMatch(await res.text(), /switchboard_/);
      }
    }
    const ok = await fetch(`${admin}/metrics`, { headers: { authorization: 'Bearer s3cret' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /switchboard_connections/);
  } finally {
    await server.close();
  }
  await assert.rejects(new Server({ listen: 'text://127.0.0.1:0', admin: 'http://0.0.0.0:0' }).listen(),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'ERR_INVALID_OPTION' && /token/.test(e.message));
  await assert.rejects(new Server({ listen: 'text://127.0.0.1:0', admin: 'ftp://127.0.0.1:1' }).listen(),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'ERR_INVALID_OPTION');
});

test('a drain of 1000 clients over 2 s spreads the closes; /healthz is 503 from the start', { timeout: 60000 }, async () => {
  const server = echoServer({ listen: 'ws://127.0.0.1:0', admin: 'http://127.0.0.1:0' });
  await server.listen();
  const admin = server.adminUrl!;
  const N = 1000;
  const clients: WebSocket[] = [];
  const closes: { at: number; code: number; reason: string }[] = [];
  try {
    for (let i = 0; i < N; i += 100) {
      clients.push(...await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => openWs(server.addresses[0]!))));
    }
    for (const c of clients) c.on('close', (code, reason) => closes.push({ at: Date.now(), code, reason: String(reason) }));
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    const closed = server.close({ drain: 2000 });
    const h = await fetch(`${admin}/healthz`);
    assert.equal(h.status, 503);
    assert.equal((await h.text()).trim(), 'draining');
    assert.equal(server.state, 'draining');
    await closed;
  } finally {
    for (const c of clients) c.terminate();
  }
  assert.equal(closes.length, N);
  assert.ok(closes.every((c) => c.code === 1001 && c.reason === 'server shutting down'), 'every client got 1001 with the reason');
  const times = closes.map((c) => c.at).sort((a, b) => a - b);
  assert.ok(times[N - 1]! - times[0]! >= 1000, `the closes span ${times[N - 1]! - times[0]!} ms`);
  let most = 0;
  for (let i = 0, j = 0; i < N; i++) {
    while (times[i]! - times[j]! >= 200) j++;
    most = Math.max(most, i - j + 1);
  }
  assert.ok(most <= N * 0.2, `at most 20% of the closes within any 200 ms (the most: ${most})`);
});

test('a server closed from a message handler while connects queue up answers every one of them: none hangs', { timeout: 30000 }, async () => {
  const server = echoServer({ listen: 'ws://127.0.0.1:0' });
  server.on('connection', (c) => c.on('message', (m) => { if (String(m) === 'quit') void server.close(); }));
  await server.listen();
  const first = await openWs(server.addresses[0]!);
  const outcomes: string[] = [];
  const N = 200;
  const settled = Array.from({ length: N }, () => new Promise<void>((resolve) => {
    const ws = new WebSocket(server.addresses[0]!);
    ws.once('close', (code) => { outcomes.push(`close ${code}`); resolve(); });
    ws.once('error', (err: NodeJS.ErrnoException) => { outcomes.push(err.code ?? err.message); });
  }));
  // The close comes while the kernel holds connects nobody has accepted yet (the native transport
  // takes them at unlisten(), inside the batch that delivered 'quit').
  setImmediate(() => first.send('quit'));
  const all = Promise.all(settled);
  const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15000).unref());
  assert.notEqual(await Promise.race([all.then(() => 'ok' as const), timeout]), 'hung', `settled ${outcomes.length} of ${N}`);
  assert.equal(outcomes.filter((o) => o.startsWith('close')).length, N);
  await server.closed();
});

// ---- the CLI ----

interface Serving { child: ChildProcess; output: () => string }

function serve(args: string[], env: Record<string, string> = {}): Serving {
  const child = spawn(process.execPath, [...CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return { child, output: () => out };
}

async function adminOf(s: Serving): Promise<string> {
  await waitFor(() => /admin endpoint on (http:\/\/\S+?)(?:"|\s)/.test(s.output()) || s.child.exitCode !== null, 20000, 'the admin endpoint');
  const m = /admin endpoint on (http:\/\/\S+?)(?:"|\s)/.exec(s.output());
  if (!m) throw new Error(`no admin endpoint: ${s.output()}`);
  return m[1]!;
}

async function stop(s: Serving): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 15000);
  await once(s.child, 'exit');
  clearTimeout(timer);
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.on('close', (code) => { clearTimeout(killer); resolve({ code, stdout, stderr }); });
  });
}

test('serve --admin --drain: /healthz turns 503 on SIGTERM while clients drain; switchboard status; the token', { timeout: 60000 }, async () => {
  const port = await freePort();
  const s = serve(['echo', '--bare', '--listen', `ws://127.0.0.1:${port}`, '--admin', 'http://127.0.0.1:0', '--admin-token', 'tok', '--drain', '3s']);
  try {
    const admin = await adminOf(s);
    const clients = await Promise.all(Array.from({ length: 4 }, () => openWs(`ws://127.0.0.1:${port}`)));
    const codes: number[] = [];
    for (const c of clients) c.on('close', (code) => codes.push(code));
    clients[0]!.send('hello');
    await once(clients[0]!, 'message');

    const st = await run(['status', admin, '--token', 'tok']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /healthy/);
    assert.match(st.stdout, new RegExp(`ws://127\\.0\\.0\\.1:${port}\\s+ws\\s+4\\s+4\\s+1\\s+1`));
    const denied = await run(['status', admin, '--token', 'nope']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /token/);
    assert.equal((await fetch(`${admin}/healthz`)).status, 401);

    const auth = { authorization: 'Bearer tok' };
    assert.equal((await fetch(`${admin}/healthz`, { headers: auth })).status, 200);
    s.child.kill('SIGTERM');
    await waitFor(() => /SIGTERM, closing over 3000 ms/.test(s.output()), 10000, 'the SIGTERM');
    const h = await fetch(`${admin}/healthz`, { headers: auth });
    assert.equal(h.status, 503);
    assert.ok(codes.length < 4, 'the drain is still running');
    const st2 = await run(['status', admin, '--token', 'tok']);
    assert.equal(st2.code, 1);
    assert.match(st2.stdout, /NOT healthy \(draining\)/);
    await waitFor(() => codes.length === 4, 15000, 'every client closed');
    assert.deepEqual(codes, [1001, 1001, 1001, 1001]);
    const [code] = s.child.exitCode !== null ? [s.child.exitCode] : await once(s.child, 'exit');
    assert.equal(code, 0);
  } finally {
    await stop(s);
  }
  const gone = await run(['status', `http://127.0.0.1:${port}`]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /cannot reach/);
  const bad = await run(['serve', 'echo', '--admin', 'http://0.0.0.0:9']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /token/);
});

test('switchboard status names the busiest topics (the chat room) and its members', { timeout: 30000 }, async () => {
  const port = await freePort();
  const s = serve(['chat', '--listen', `text://127.0.0.1:${port}`, '--admin', 'http://127.0.0.1:0', '--room', 'lobby']);
  const peers: net.Socket[] = [];
  try {
    const admin = await adminOf(s);
    for (let i = 0; i < 3; i++) peers.push(await textClient(port));
    await waitFor(() => (s.output().match(/\+ 127\.0\.0\.1:\d+ connected/g) ?? []).length === 3, 5000, 'three members');
    const st = await run(['status', admin]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /topics: 1 \(3 subscription\(s\)\); busiest: lobby \(3\)/);
    const json = await run(['status', admin, '--json']);
    const parsed = JSON.parse(json.stdout) as { total: { topTopics: { topic: string; subscribers: number }[] } };
    assert.deepEqual(parsed.total.topTopics, [{ topic: 'lobby', subscribers: 3 }]);
    const m = await scrape(admin);
    assert.equal(sum(m, 'switchboard_topics'), 1);
    assert.equal(sum(m, 'switchboard_subscribers'), 3);
  } finally {
    for (const p of peers) p.destroy();
    await stop(s);
  }
});

test('serve --log-format json: one JSON object per line with stable fields', { timeout: 30000 }, async () => {
  const port = await freePort();
  const s = serve(['echo', '--listen', `text://127.0.0.1:${port}`, '--log-format', 'json']);
  try {
    await waitFor(() => /"event":"listening"/.test(s.output()), 15000, 'listening');
    const c = await textClient(port);
    c.write('hi\n');
    await once(c, 'data');
    c.end();
    await waitFor(() => /"event":"disconnect"/.test(s.output()), 5000, 'the disconnect line');
  } finally {
    await stop(s);
  }
  const records = s.output().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const stdoutLines = s.output().trim().split('\n').filter((l) => !l.startsWith('switchboard:'));
  assert.equal(records.length, stdoutLines.length, `every line is JSON: ${s.output()}`);
  for (const r of records) {
    assert.match(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['info', 'warn', 'error'].includes(String(r.level)));
    assert.equal(typeof r.event, 'string');
    assert.equal(typeof r.message, 'string');
    assert.equal(r.app, 'echo');
  }
  const listening = records.find((r) => r.event === 'listening')!;
  assert.deepEqual(listening.addresses, [`text://127.0.0.1:${port}`]);
  const connect = records.find((r) => r.event === 'connect')!;
  assert.match(String(connect.remote), /^127\.0\.0\.1:\d+$/);
  const disconnect = records.find((r) => r.event === 'disconnect')!;
  assert.equal(disconnect.remote, connect.remote);
  assert.equal(disconnect.code, 1000);
  assert.equal(typeof disconnect.reason, 'string');
  const bad = await run(['serve', 'echo', '--log-format', 'xml']);
  assert.equal(bad.code, 2);
});

test('--workers 2: /metrics per worker; SIGHUP replaces one worker at a time, the other\'s clients stream on, the port never refuses', { timeout: 120000 }, async () => {
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  const s = serve(['echo', '--bare', '--listen', url, '--workers', '2', '--admin', 'http://127.0.0.1:0', '--drain', '1s']);
  const clients: { ws: WebSocket; worker: string; echoes: number[]; closed: { at: number; code: number; reason: string } | null; errors: number }[] = [];
  let probing = true;
  const probeFailures: string[] = [];
  let probes = 0;
  try {
    const admin = await adminOf(s);
    await waitFor(() => /2 workers started/.test(s.output()), 20000, 'the workers');
    // Clients until both workers hold at least three (who takes a connection is the kernel's or the primary's choice).
    for (let tries = 0; tries < 60; tries++) {
      const per = (w: string): number => clients.filter((c) => c.worker === w).length;
      if (per('w1') >= 3 && per('w2') >= 3) break;
      const ws = await openWs(url);
      const local = (ws as unknown as { _socket: net.Socket })._socket.localPort;
      const logged = new RegExp(`\\[(w\\d)\\] \\[echo\\] \\+ 127\\.0\\.0\\.1:${local} `);
      await waitFor(() => logged.test(s.output()), 5000, 'the connect log');
      const c = { ws, worker: logged.exec(s.output())![1]!, echoes: [] as number[], closed: null as { at: number; code: number; reason: string } | null, errors: 0 };
      ws.on('message', () => c.echoes.push(Date.now()));
      ws.on('close', (code, reason) => { c.closed = { at: Date.now(), code, reason: String(reason) }; });
      ws.on('error', () => c.errors++);
      clients.push(c);
    }
    const w1 = clients.filter((c) => c.worker === 'w1');
    const w2 = clients.filter((c) => c.worker === 'w2');
    assert.ok(w1.length >= 3 && w2.length >= 3, 'clients on both workers');
    // Every client streams: a message every 20 ms, echoed back.
    const streamer = setInterval(() => {
      for (const c of clients) if (c.closed === null && c.ws.readyState === WebSocket.OPEN) c.ws.send('tick');
    }, 20);
    await waitFor(() => clients.every((c) => c.echoes.length >= 3), 10000, 'the streams');

    // /metrics from the primary: per-worker series that add up to the traffic so far.
    const before = await scrape(admin);
    assert.equal(sum(before, 'switchboard_serving'), 2);
    assert.equal(sum(before, 'switchboard_connections', { worker: '1' }), w1.length);
    assert.equal(sum(before, 'switchboard_connections', { worker: '2' }), w2.length);
    assert.ok(sum(before, 'switchboard_messages_received_total') >= clients.length * 3);

    // The port is probed all along: every probe must complete a WebSocket handshake.
    const probe = async (): Promise<void> => {
      while (probing) {
        probes++;
        try {
          const ws = await openWs(url);
          ws.terminate();
        } catch (err) {
          probeFailures.push(err instanceof Error ? err.message : String(err));
        }
        await new Promise((r) => setTimeout(r, 15));
      }
    };
    const prober = probe();
    const mark = s.output().length;
    s.child.kill('SIGHUP');
    await waitFor(() => /rolling restart done/.test(s.output().slice(mark)), 60000, 'the rolling restart');
    await waitFor(() => clients.every((c) => c.closed !== null), 10000, 'every old client closed');
    probing = false;
    await prober;
    clearInterval(streamer);

    for (const c of clients) {
      assert.deepEqual({ code: c.closed!.code, reason: c.closed!.reason }, { code: 1012, reason: 'service restart' }, `${c.worker}'s client closed with 1012`);
      assert.equal(c.errors, 0);
    }
    // Worker 1 went first. While it drained, worker 2's clients were open and their echoes kept coming.
    const lastW1 = Math.max(...w1.map((c) => c.closed!.at));
    const firstW1 = Math.min(...w1.map((c) => c.closed!.at));
    for (const c of w2) {
      assert.ok(c.closed!.at > lastW1, 'worker 2\'s clients outlived worker 1\'s drain');
      assert.ok(c.echoes.some((t) => t > lastW1 && t < c.closed!.at), 'echoes after worker 1 was drained');
      assert.ok(c.echoes.some((t) => t >= firstW1 && t <= lastW1), 'echoes during worker 1\'s drain');
    }
    assert.ok(probes > 10, `the port was probed (${probes} times)`);
    assert.deepEqual(probeFailures, [], 'no connect failed during the restart');

    // New workers serve; /healthz says so.
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    const after = await openWs(url);
    after.send('still there');
    const [echo] = await once(after, 'message');
    assert.equal(String(echo), 'still there');
    after.close();
    const st = await run(['status', admin]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /primary pid \d+, 2 worker\(s\)/);
    assert.match(st.stdout, /^1\s+\d+\s+serving/m);
    assert.match(st.stdout, /^2\s+\d+\s+serving/m);
  } finally {
    probing = false;
    for (const c of clients) c.ws.terminate();
    await stop(s);
  }
  assert.equal(s.child.exitCode, 0, s.output());
});
