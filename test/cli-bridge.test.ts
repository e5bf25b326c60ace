/** switchboard bridge FROM TO as a subprocess: ws:// in front of a text:// service, the reverse, and a slow side. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket, { WebSocketServer } from 'ws';
import { RawPeer, portOf, until } from './helpers.js';
import { Cli, run } from './cli-support.js';


/** A raw line service: answers each line upper-cased, and can push a line or close on its own. */
async function lineService(): Promise<{ server: net.Server; port: number; sockets: net.Socket[]; received: string[] }> {
  const sockets: net.Socket[] = [];
  const received: string[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        received.push(line);
        s.write(line.toUpperCase() + '\n');
      }
    });
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, sockets, received };
}

test('bridge ws:// text://: a WebSocket client talks to a line service, both ways; either side closing closes the other', { timeout: 30000 }, async () => {
  const svc = await lineService();
  const { cli, url } = await Cli.listening(['bridge', 'ws://127.0.0.1:0/', `text://127.0.0.1:${svc.port}`]);
  try {
    const ws = new WebSocket(url);
    const got: [string, boolean][] = [];
    ws.on('message', (d, isBinary) => got.push([String(d), isBinary]));
    await once(ws, 'open');
    ws.send('hello bridge');
    ws.send('ünïcode');
    await until(() => got.length === 2, 'two answers');
    assert.deepEqual(got, [['HELLO BRIDGE', false], ['ÜNÏCODE', false]]);
    assert.deepEqual(svc.received, ['hello bridge', 'ünïcode']);
    svc.sockets[0]!.write('pushed by the service\n');
    await until(() => got.length === 3, 'the pushed line');
    assert.deepEqual(got[2], ['pushed by the service', false]);
    // The service closes: the WebSocket client is closed.
    const closed = once(ws, 'close');
    svc.sockets[0]!.end();
    await closed;
    // The client closes: the service sees its connection end.
    const ws2 = new WebSocket(url);
    await once(ws2, 'open');
    await until(() => svc.sockets.length === 2, 'the second upstream connection');
    const ended = once(svc.sockets[1]!, 'close');
    ws2.close();
    await ended;
  } finally {
    assert.equal(await cli.stop(), 0);
    svc.server.close();
  }
});

test('bridge text:// ws://: a line client talks to a WebSocket server (the `ws` package) through it, both ways', { timeout: 30000 }, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has('v1') ? 'v1' : false) });
  await once(wss, 'listening');
  const upstreamUrl = `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/up`;
  const seen: string[] = [];
  const clients: WebSocket[] = [];
  let header: string | undefined;
  wss.on('connection', (ws, req) => {
    clients.push(ws);
    header = req.headers['x-bridge'] as string | undefined;
    ws.on('message', (d) => {
      seen.push(String(d));
      ws.send(`echo ${String(d)} (${ws.protocol})`);
    });
  });
  const { cli, url } = await Cli.listening(['bridge', 'text://127.0.0.1:0', upstreamUrl, '--protocol', 'v1', '-H', 'X-Bridge: yes']);
  try {
    const p = await RawPeer.connect(portOf(url));
    p.write('one\r\ntwo\n');
    await p.until((t) => t === 'echo one (v1)\necho two (v1)\n');
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(header, 'yes');
    clients[0]!.close(1000, 'bye');
    assert.equal(await p.untilClosed(), 'echo one (v1)\necho two (v1)\n');
  } finally {
    assert.equal(await cli.stop(), 0);
    wss.close();
  }
  // An upstream that is not there: the client is closed, the bridge goes on.
  const { cli: lonely, url: lonelyUrl } = await Cli.listening(['bridge', 'text://127.0.0.1:0', 'ws://127.0.0.1:1/']);
  try {
    const p = await RawPeer.connect(portOf(lonelyUrl));
    await p.untilClosed();
    await lonely.untilStderr(/cannot connect to ws:\/\/127\.0\.0\.1:1\/: connection refused/);
  } finally {
    assert.equal(await lonely.stop(), 0);
  }
});

test('bridge tcp:// tcp://: a side that does not read slows the other down; nothing is dropped, every byte arrives', { timeout: 60000 }, async (t) => {
  let upstream: net.Socket | null = null;
  const hash = createHash('sha256');
  let received = 0;
  const server = net.createServer((s) => {
    upstream = s;
    s.pause(); // reads nothing until told
    s.on('data', (d) => { hash.update(d); received += d.length; });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { cli, url } = await Cli.listening(['bridge', 'tcp://127.0.0.1:0', `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`]);
  const total = 64 * 1024 * 1024; // 16 times the bridge's 4 MiB send buffer bound
  const chunk = Buffer.alloc(1024 * 1024);
  const sent = createHash('sha256');
  try {
    const client = net.connect(portOf(url), '127.0.0.1');
    await once(client, 'connect');
    await until(() => upstream, 'the upstream connection');
    let written = 0;
    let blocked = false;
    const writer = (async () => {
      while (written < total) {
        chunk.fill(written / chunk.length);
        sent.update(chunk);
        written += chunk.length;
        if (!client.write(Buffer.from(chunk))) {
          blocked = true;
          await once(client, 'drain');
        }
      }
      client.end();
    })();
    // The writer is held back: the bridge stopped reading it because the upstream does not read.
    await until(() => blocked && client.writableLength > 0, 'the client to be held back');
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readProc(cli.child.pid!))?.[1] ?? 0) * 1024;
    await new Promise((r) => setTimeout(r, 500));
    // Kernel buffers on both hops, one read and the send buffer's high-water mark: a few MiB, not all of it.
    assert.ok(written <= total / 2, `the client wrote ${written} bytes while the upstream read nothing`);
    const held = rss();
    t.diagnostic(`bridge RSS while stalled: ${(held / 1048576).toFixed(1)} MiB; the client got ${written / 1048576} MiB written`);
    upstream!.resume();
    await writer;
    await until(() => received === total, `all ${total} bytes (got ${received})`, 40000);
    assert.equal(hash.digest('hex'), sent.digest('hex'));
    // The bridge held at most a bounded amount while stalled (its own memory, not the 64 MiB offered).
    assert.ok(held < 400 * 1024 * 1024, `bridge RSS ${held}`);
    assert.doesNotMatch(cli.stderr, /not reading|ERR_BUFFER_FULL/);
  } finally {
    assert.equal(await cli.stop(), 0);
    server.close();
  }
});

function readProc(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}

test('bridge: bad usage exits 2', { timeout: 30000 }, async () => {
  for (const [args, re] of [
    [['bridge', 'ws://127.0.0.1:0'], /which two URLs/],
    [['bridge', 'udp://127.0.0.1:0', 'text://127.0.0.1:1'], /udp:\/\/ has no connection/],
    [['bridge', 'ws://127.0.0.1:0', 'text://127.0.0.1:1', '--origin', 'x'], /are for ws:\/\/ and wss:\/\//],
  ] as [string[], RegExp][]) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});
