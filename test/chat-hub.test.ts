/** The chat room across processes: two servers sharing a real Redis, and --workers on one port. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import WebSocket from 'ws';
import { nativeAvailable } from '../src/transport/native.js';
import { RawPeer, portOf, waitFor } from './helpers.js';
import { RedisProcess, freePort } from './hub-support.js';
import { serveChat, stop } from './cli-support.js';

/** Lines of `peer` that match `re`, for "seen exactly once, in order" checks. */
function lines(peer: RawPeer, re: RegExp): string[] {
  return peer.text.split('\n').filter((l) => re.test(l));
}

test('two chat servers sharing Redis form one room for text and WebSocket users; Redis restart recovers', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const prefix = `--room=room-${process.pid}`;
  const A = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', redis.url, prefix]);
  const B = serveChat(['--listen', 'text://127.0.0.1:0', '--listen', 'ws://127.0.0.1:0', '--hub', redis.url, prefix]);
  let ws: WebSocket | undefined;
  try {
    await waitFor(() => /listening on/.test(A.output()) && /listening on/.test(B.output()), 10000, 'servers');
    const aUrl = /listening on (\S+)/.exec(A.output())![1]!;
    const [bText, bWs] = /listening on (\S+) (\S+)/.exec(B.output())!.slice(1) as [string, string];

    const a1 = await RawPeer.connect(portOf(aUrl));
    const a2 = await RawPeer.connect(portOf(aUrl));
    const b1 = await RawPeer.connect(portOf(bText));
    ws = new WebSocket(bWs);
    const wsGot: string[] = [];
    ws.on('message', (d) => wsGot.push(String(d)));
    await once(ws, 'open');
    for (const p of [a1, a2, b1]) await p.until((t) => t.includes('you are'));
    a1.write('/nick ann\n');
    await b1.until((t) => /is now ann/.test(t));

    for (let i = 1; i <= 20; i++) a1.write(`msg ${i}\n`);
    const expected = Array.from({ length: 20 }, (_, i) => `ann: msg ${i + 1}`);
    await b1.until((t) => t.includes('ann: msg 20\n'), 5000);
    await waitFor(() => wsGot.includes('ann: msg 20'), 5000, 'ws user');
    await a2.until((t) => t.includes('ann: msg 20\n'));
    assert.deepEqual(lines(b1, /^ann: msg/), expected, 'text user on the other server: each once, in order');
    assert.deepEqual(wsGot.filter((m) => m.startsWith('ann: msg')), expected, 'browser-style user on the other server');
    assert.deepEqual(lines(a2, /^ann: msg/), expected, 'user on the same server');
    assert.deepEqual(lines(a1, /^ann: msg/), [], 'no echo to the sender');

    ws.send('from the web');
    await a1.until((t) => /guest\d+: from the web\n/.test(t));

    // Redis goes away: local delivery goes on, the outage is logged once, and after the restart
    // the room spans both servers again.
    await redis.stop();
    await waitFor(() => /lost connection to redis/.test(A.output()), 5000, 'outage logged');
    a1.write('while down\n');
    await a2.until((t) => t.includes('ann: while down\n'));
    await redis.start();
    // (The outage line ends "until it is back"; the recovery line is "connection to ... is back;".)
    const back = /connection to \S+ is back;/;
    await waitFor(() => back.test(A.output()) && back.test(B.output()), 10000, 'recovery logged');
    a1.write('after recovery\n');
    await b1.until((t) => t.includes('ann: after recovery\n'), 5000);
    assert.equal((A.output().match(/lost connection to redis/g) ?? []).length, 1, 'outage logged once');
    assert.equal(A.child.exitCode, null, 'server A still running');
    for (const p of [a1, a2, b1]) p.destroy();
  } finally {
    ws?.terminate();
    await stop(A);
    await stop(B);
    await redis.stop();
  }
});

test('--workers 2: clients on different workers share one room, no Redis', { timeout: 60000 }, async () => {
  const port = await freePort();
  const W = serveChat(['--workers', '2', '--listen', `text://127.0.0.1:${port}`]);
  try {
    await waitFor(() => /2 workers started/.test(W.output()), 15000, 'workers');
    // Native transport: each worker listens on the port itself (SO_REUSEPORT); node:net: the primary's one socket.
    const listening = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n').length;
    assert.equal(listening, nativeAvailable ? 2 : 1, 'listening sockets on the port');
    // Which worker took which client: the workers log "[wN] [chat] + 127.0.0.1:PORT connected".
    const workerOf = async (p: RawPeer): Promise<string> => {
      const logged = new RegExp(`\\[(w\\d)\\] \\[chat\\] \\+ 127\\.0\\.0\\.1:${p.socket.localPort} `);
      await waitFor(() => logged.test(W.output()), 5000, 'the connect log');
      return logged.exec(W.output())![1]!;
    };
    // Four clients, both workers among them. Who takes a connection is the kernel's choice (SO_REUSEPORT
    // hashes the addresses) or the primary's (round robin): clients are tried until both workers have one.
    const peers: RawPeer[] = [];
    const seen = new Set<string>();
    for (let tries = 0; peers.length < 4 && tries < 40; tries++) {
      const p = await RawPeer.connect(port);
      await p.until((t) => t.includes('you are'));
      const w = await workerOf(p);
      if (peers.length < 3 || seen.size === 2 || !seen.has(w)) {
        peers.push(p);
        seen.add(w);
      } else p.destroy();
    }
    assert.equal(peers.length, 4);
    assert.equal(seen.size, 2, 'the clients landed on both workers');

    peers.forEach((p, i) => p.write(`/nick p${i}\n`));
    for (const p of peers) await p.until((t) => t.includes('you are now'));
    peers.forEach((p, i) => p.write(`hello from p${i}\n`));
    for (const [i, p] of peers.entries()) {
      const others = [0, 1, 2, 3].filter((j) => j !== i).map((j) => `p${j}: hello from p${j}`);
      await p.until((t) => others.every((o) => t.includes(o + '\n')), 5000);
      for (const o of others) assert.equal(lines(p, new RegExp(`^${o}$`)).length, 1, `${o} seen once by p${i}`);
      assert.equal(lines(p, new RegExp(`^p${i}: hello`)).length, 0, 'no echo');
    }
    for (const p of peers) p.destroy();
  } finally {
    await stop(W);
  }
  assert.equal(W.child.exitCode, 0);
});

test('a flood on one server and a Redis pause do not get the reading members of the other server dropped', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const room = `--room=flood-${process.pid}`;
  const A = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', redis.url, room]);
  const B = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', redis.url, room]);
  try {
    await waitFor(() => /listening on/.test(A.output()) && /listening on/.test(B.output()), 10000, 'servers');
    const aUrl = /listening on (\S+)/.exec(A.output())![1]!;
    const bUrl = /listening on (\S+)/.exec(B.output())![1]!;
    const readers = await Promise.all([1, 2, 3].map(() => RawPeer.connect(portOf(bUrl))));
    for (const r of readers) await r.until((t) => t.includes('you are'));
    const flooder = await RawPeer.connect(portOf(aUrl));
    await flooder.until((t) => t.includes('you are'));
    flooder.write('/nick flood\n');
    await readers[0]!.until((t) => t.includes('is now flood'), 5000);
    // Redis stops answering for 1.5 s (CLIENT PAUSE) while the flood is sent: what queued meanwhile arrives as one burst.
    const ctl = await RawPeer.connect(redis.port);
    ctl.write('*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$4\r\n1500\r\n$3\r\nALL\r\n');
    await ctl.until((t) => t.includes('+OK'));
    flooder.write(Array.from({ length: 20000 }, (_, i) => `flood line ${i} ${'x'.repeat(100)}`).join('\n') + '\n');
    await new Promise((r) => setTimeout(r, 3000));
    for (const r of readers) {
      assert.equal(r.closed, false, 'a reading member of the other server was not dropped');
      assert.ok((r.text.match(/^flood: flood line/gm) ?? []).length >= 100, 'the burst arrived');
    }
    assert.doesNotMatch(B.output(), /dropped slow reader/);
    readers[1]!.write('still here\n');
    await readers[2]!.until((t) => t.includes('still here'), 5000);
    ctl.destroy();
    flooder.destroy();
    for (const r of readers) r.destroy();
  } finally {
    await stop(A);
    await stop(B);
    await redis.stop();
  }
});
