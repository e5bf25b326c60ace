/** send and connect as a wscat/websocat user drives them, against real servers (the `ws` package, node:net). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { Cli, run } from './cli-support.js';

async function wsServer(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  await once(wss, 'listening');
  return { wss, url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/path` };
}

test('--header, --origin and --protocol reach the server; --oneshot prints the first reply only and exits 0', { timeout: 30000 }, async () => {
  const { wss, url } = await wsServer({ handleProtocols: (offered) => (offered.has('chat.v1') ? 'chat.v1' : false) });
  const requests: IncomingMessage[] = [];
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    requests.push(req);
    ws.on('message', (data) => {
      ws.send(`got ${String(data)} over ${ws.protocol}`);
      ws.send('a second reply');
    });
  });
  try {
    const r = await run(['send', url, 'hi', '--oneshot', '-H', 'X-Token: abc 123', '--header', 'Authorization: Bearer t0k',
      '--origin', 'https://example.com', '--protocol', 'chat.v2', '--protocol', 'chat.v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'got hi over chat.v1\n');
    assert.equal(requests.length, 1);
    const h = requests[0]!.headers;
    assert.equal(h['x-token'], 'abc 123');
    assert.equal(h['authorization'], 'Bearer t0k');
    assert.equal(h['origin'], 'https://example.com');
    assert.equal(h['sec-websocket-protocol'], 'chat.v2, chat.v1');
    assert.equal(requests[0]!.url, '/path');
    // connect --oneshot: the first input line, the first reply.
    const c = await run(['connect', url, '--oneshot', '--protocol', 'chat.v1'], 'first\nsecond\n');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, 'got first over chat.v1\n');
  } finally {
    wss.close();
  }
});

test('--oneshot exits 1 when the peer closes without a reply, or none comes within --timeout', { timeout: 30000 }, async () => {
  const closer = net.createServer((s) => s.once('data', () => s.end()));
  const silent = net.createServer((s) => s.on('data', () => {}));
  await Promise.all([once(closer.listen(0, '127.0.0.1'), 'listening'), once(silent.listen(0, '127.0.0.1'), 'listening')]);
  try {
    const closed = await run(['send', `text://127.0.0.1:${(closer.address() as net.AddressInfo).port}`, 'x', '--oneshot']);
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /no reply before the connection closed/);
    const quiet = await run(['send', `text://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 'x', '--oneshot', '--timeout', '300ms']);
    assert.equal(quiet.code, 1);
    assert.match(quiet.stderr, /no reply within 300 ms/);
  } finally {
    closer.close();
    silent.close();
  }
});

test('--ping-interval: pings go out and each pong\'s round trip is printed on stderr', { timeout: 30000 }, async () => {
  const { wss, url } = await wsServer();
  let pings = 0;
  wss.on('connection', (ws: WebSocket) => ws.on('ping', () => { pings++; }));
  try {
    const cli = new Cli(['connect', url, '--ping-interval', '100ms']);
    await cli.untilStderr(/pong 2: rtt \d+\.\d{3} ms\n/);
    cli.endInput();
    assert.equal(await cli.exited(), 0, cli.stderr);
    assert.ok(pings >= 2, `the server saw ${pings} pings`);
    assert.equal(cli.stdout, '');
  } finally {
    wss.close();
  }
});

test('--binary sends stdin as binary messages; binary replies print as-is, or as hex with --hex', { timeout: 30000 }, async () => {
  const { wss, url } = await wsServer();
  const got: { data: Buffer; isBinary: boolean }[] = [];
  wss.on('connection', (ws: WebSocket) => ws.on('message', (data: Buffer, isBinary) => {
    got.push({ data, isBinary });
    ws.send(Buffer.concat([Buffer.from([0xff, 0x00]), data]), { binary: true });
  }));
  try {
    const bytes = Buffer.from([0x00, 0x01, 0x0a, 0xfe]);
    const raw = await run(['send', url, '--binary', '--quiet-time', '300ms'], bytes);
    assert.equal(raw.code, 0, raw.stderr);
    assert.deepEqual(got.map((g) => [g.isBinary, [...g.data]]), [[true, [0, 1, 10, 254]]]);
    assert.deepEqual([...raw.raw], [0xff, 0x00, 0x00, 0x01, 0x0a, 0xfe]);
    const hex = await run(['send', url, 'AB', '--binary', '--hex', '--quiet-time', '300ms']);
    assert.equal(hex.code, 0, hex.stderr);
    assert.equal(hex.stdout, 'ff004142\n');
    assert.equal(got[1]!.isBinary, true);
    // The default (--text): each stdin line is a text message.
    got.length = 0;
    const lines = await run(['send', url, '--text', '--hex', '--quiet-time', '300ms'], 'one\ntwo\n');
    assert.equal(lines.code, 0, lines.stderr);
    assert.deepEqual(got.map((g) => [g.isBinary, String(g.data)]), [[false, 'one'], [false, 'two']]);
    assert.equal(lines.stdout, 'ff006f6e65\nff0074776f\n');
  } finally {
    wss.close();
  }
});

test('connect --reconnect comes back after the server drops it, with backoff; --max-attempts gives up with exit 1', { timeout: 40000 }, async () => {
  const { wss, url } = await wsServer();
  const seen: string[] = [];
  let connections = 0;
  wss.on('connection', (ws: WebSocket) => {
    const n = ++connections;
    ws.on('message', (data) => {
      seen.push(`${n}:${String(data)}`);
      ws.send(`ack ${String(data)}`);
      if (n === 1) ws.terminate(); // the first connection dies after one message
    });
  });
  try {
    const cli = new Cli(['connect', url, '--reconnect']);
    await cli.untilStderr(/^connected to /m);
    cli.write('before\n');
    await cli.untilStderr(/reconnecting in \d+ ms \(attempt 1\)/);
    await cli.untilStderr(/reconnected to /);
    cli.write('after\n');
    await cli.untilStdout(/ack after\n/);
    cli.endInput();
    assert.equal(await cli.exited(), 0, cli.stderr);
    assert.deepEqual(seen, ['1:before', '2:after']);
  } finally {
    wss.close();
  }
  const gone = await new Promise<number>((resolve) => {
    const t = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (t.address() as net.AddressInfo).port;
      t.close(() => resolve(p));
    });
  });
  const cli = new Cli(['connect', `ws://127.0.0.1:${gone}`, '--reconnect', '--max-attempts', '2']);
  assert.equal(await cli.exited(20000), 1, cli.stderr);
  assert.match(cli.stderr, /reconnecting in \d+ ms \(attempt 2\): connection refused/);
  assert.match(cli.stderr, /gave up on ws:\/\/127\.0\.0\.1:\d+ after 2 attempts/);
});

test('bad client options are usage errors (exit 2), before anything connects', { timeout: 60000 }, async () => {
  const cases: [string[], RegExp][] = [
    [['send', 'ws://127.0.0.1:1', 'x', '-H', 'no colon'], /--header: "no colon" is not a header/],
    [['send', 'ws://127.0.0.1:1', 'x', '-H', 'Sec-WebSocket-Key: x'], /written by the WebSocket handshake itself/],
    [['send', 'text://127.0.0.1:1', 'x', '--origin', 'https://a.example'], /are for ws:\/\/ and wss:\/\//],
    [['send', 'ws://127.0.0.1:1', 'x', '--protocol', 'a b'], /is not a subprotocol name/],
    [['send', 'text://127.0.0.1:1', 'x', '--binary'], /text:\/\/ carries lines/],
    [['connect', 'tcp://127.0.0.1:1', '--ping-interval', '1s'], /pings are WebSocket's/],
    [['connect', 'ws://127.0.0.1:1', '--reconnect', '--oneshot'], /choose one/],
    [['connect', 'ws://127.0.0.1:1', '--max-attempts', '3'], /goes with --reconnect/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});
