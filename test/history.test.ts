/**
 * History and recovery (issue 15, item 1): offsets on deliveries, subscribe({ since | last }) with
 * an exact switch from replay to live, gaps reported, on the memory hub and on Redis Streams
 * (a private redis-server per test), and `serve chat --history N` across two servers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Server, type Connection, type Hub, type ReplayInfo } from '../src/index.js';
import { MemoryHub } from '../src/hubs/memory.js';
import { RedisStreamsHub } from '../src/hubs/redis-streams.js';
import { LocalHistory } from '../src/hubs/history.js';
import { RawPeer, portOf } from './helpers.js';
import { RedisProcess, freePort, waitFor } from './hub-support.js';
import { serveChat, stop } from './cli-support.js';

const TOPIC = 't';

/**
 * A server that speaks offsets over text://: the first line is "live", "since OFFSET" or
 * "last N"; every delivery comes as "OFFSET DATA", the replay outcome as "# replay {json}";
 * later lines "pub TEXT" publish TEXT (to everyone but the sender).
 */
async function offsetServer(hub: Hub | string): Promise<Server> {
  const server = new Server({ listen: 'text://127.0.0.1:0', hub, rateLimit: false });
  server.on('connection', (conn: Connection) => {
    conn.deliverWith((_topic, data, offset) => conn.send(`${offset ?? '-'} ${String(data)}`));
    conn.on('replay', (info: ReplayInfo) => conn.send(`# replay ${JSON.stringify(info)}`));
    let first = true;
    conn.on('message', (m) => {
      const line = String(m);
      if (first) {
        first = false;
        const [how, arg] = line.split(' ');
        conn.subscribe(TOPIC, how === 'since' ? { since: arg } : how === 'last' ? { last: Number(arg) } : undefined);
        conn.send('# subscribed');
        return;
      }
      if (line.startsWith('pub ')) server.publish(TOPIC, line.slice(4), { except: conn });
    });
  });
  return server.listen();
}

/** The deliveries a peer got: [offset, data] in arrival order. */
function deliveries(peer: RawPeer): Array<[string, string]> {
  return peer.text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const i = l.indexOf(' ');
    return [l.slice(0, i), l.slice(i + 1)];
  });
}

function replays(peer: RawPeer): ReplayInfo[] {
  return peer.text.split('\n').filter((l) => l.startsWith('# replay ')).map((l) => JSON.parse(l.slice(9)) as ReplayInfo);
}

async function client(server: Server, first: string): Promise<RawPeer> {
  const p = await RawPeer.connect(portOf(server.addresses[0]!));
  p.write(first + '\n');
  await p.until((t) => t.includes('# subscribed\n'));
  return p;
}

test('in-process history: per-topic and total bounds, offsets, retention and foreign offsets reported', () => {
  const h = new LocalHistory({ messages: 3, bytes: 100 });
  const offs = ['a', 'b', 'c', 'd', 'e'].map((m) => h.append('x', m));
  assert.deepEqual(h.query('x', { last: 10 }).entries.map((e) => e.data), ['c', 'd', 'e'], 'three kept per topic');
  assert.deepEqual(h.query('x', { since: offs[2]! }), { entries: [{ offset: offs[3], data: 'd' }, { offset: offs[4], data: 'e' }] });
  assert.equal(h.query('x', { since: offs[0]! }).gap, 'retention', 'b was trimmed after a');
  assert.equal(h.query('x', { since: offs[1]! }).gap, undefined, 'nothing after b was trimmed');
  assert.equal(h.query('x', { since: '1-1' }).gap, 'unknown-offset');
  assert.equal(h.query('x', { since: 'nonsense' }).gap, 'unknown-offset');
  // The byte bound (text counts 2 bytes per unit) takes from the topic appended to longest ago.
  h.append('y', 'y'.repeat(40));
  h.append('y', 'y'.repeat(40));
  assert.ok(h.size <= 100, `bytes kept ${h.size} <= 100`);
  assert.equal(h.query('x', { last: 10 }).entries.length, 0, 'the quiet topic gave way');
  assert.equal(h.query('y', { last: 10 }).entries.length, 1);
  assert.equal(h.query('x', { since: offs[3]! }).gap, 'retention', 'an evicted topic is not reported complete');
});

test('memory hub: bound respected, replay then live with no gap and no duplicate, gaps told', async () => {
  const server = await offsetServer(new MemoryHub({ history: { messages: 5 } }));
  try {
    const speaker = await client(server, 'live');
    const watcher = await client(server, 'live');
    for (let i = 1; i <= 8; i++) speaker.write(`pub m${i}\n`);
    await watcher.until((t) => t.includes(' m8\n'));
    const listener = await client(server, 'last 100');
    await listener.until((t) => t.includes('# replay'));
    assert.deepEqual(deliveries(listener).map((d) => d[1]), ['m4', 'm5', 'm6', 'm7', 'm8'], 'only the bound is kept');
    assert.deepEqual(replays(listener)[0], { topic: TOPIC, last: 100, replayed: 5, complete: true, offset: deliveries(listener)[4]![0] });
    const offsets = deliveries(listener).map((d) => d[0]);

    // A client back from offset m6: m7, m8, then live, exactly once each.
    const back = await client(server, `since ${offsets[2]}`);
    for (let i = 9; i <= 12; i++) speaker.write(`pub m${i}\n`);
    await back.until((t) => t.includes(' m12\n'));
    assert.deepEqual(deliveries(back).map((d) => d[1]), ['m7', 'm8', 'm9', 'm10', 'm11', 'm12']);
    assert.equal(replays(back)[0]!.complete, true);

    // Asking from before the retention: told so, and given what is kept.
    const late = await client(server, `since ${offsets[0]}`);
    await late.until((t) => t.includes('# replay'));
    const info = replays(late)[0]!;
    assert.equal(info.complete, false);
    assert.equal(info.gap, 'retention');
    assert.deepEqual(deliveries(late).map((d) => d[1]), ['m8', 'm9', 'm10', 'm11', 'm12']);
    const bogus = await client(server, 'since 12-34');
    await bogus.until((t) => t.includes('# replay'));
    assert.equal(replays(bogus)[0]!.gap, 'unknown-offset');
    for (const p of [speaker, watcher, listener, back, late, bogus]) p.destroy();
  } finally {
    await server.close();
  }
});

test('a server without a hub has no history and says so', async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0' });
  server.on('connection', (conn) => {
    conn.on('replay', (info) => conn.send(`# replay ${JSON.stringify(info)}`));
    conn.subscribe(TOPIC, { since: '1-1' });
  });
  await server.listen();
  try {
    const p = await RawPeer.connect(portOf(server.addresses[0]!));
    await p.until((t) => t.includes('# replay'));
    assert.equal(replays(p)[0]!.gap, 'no-history');
    p.destroy();
  } finally {
    await server.close();
  }
});

function streamsHub(redis: RedisProcess, messages = 1000): RedisStreamsHub {
  return new RedisStreamsHub(redis.url, { prefix: `sb-test-${process.pid}:`, history: { messages }, log: () => {} });
}

test('redis+streams: a client away for 2 s resumes on the other server with every message once, in order', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const A = await offsetServer(streamsHub(redis));
  const B = await offsetServer(streamsHub(redis));
  try {
    const speaker = await client(A, 'live');
    const first = await client(B, 'live');
    // The speaker publishes on A the whole time, one line every 10 ms, while the client comes and goes on B.
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < 400) speaker.write(`pub n${++sent}\n`);
    }, 10);
    try {
      await first.until((t) => / n20\n/.test(t), 10000);
      first.destroy();
      await new Promise((r) => setTimeout(r, 2000));
      const got = deliveries(first);
      const last = got[got.length - 1]!;
      // Reconnects with the last offset it saw; publishing goes on during the replay.
      const again = await client(B, `since ${last[0]}`);
      await waitFor(() => sent >= 400, 'all published', 20000);
      await again.until((t) => / n400\n/.test(t), 10000);
      const all = [...got, ...deliveries(again)];
      assert.deepEqual(all.map((d) => d[1]), Array.from({ length: 400 }, (_, i) => `n${i + 1}`), 'every message once, in order');
      const offsets = all.map((d) => d[0]);
      assert.ok(offsets.every((o) => /^\d+-\d+$/.test(o)), 'every delivery carried its offset');
      assert.equal(new Set(offsets).size, 400, 'distinct offsets');
      const info = replays(again)[0]!;
      assert.equal(info.complete, true);
      assert.ok(info.replayed > 100, `replayed ${info.replayed} missed while away`);
      assert.equal(speaker.text.match(/ n\d+\n/g), null, 'the publisher got no echo of its own lines');
      again.destroy();
    } finally {
      clearInterval(timer);
    }
    speaker.destroy();
  } finally {
    await A.close();
    await B.close();
    await redis.stop();
  }
});

test('redis+streams: asking for more than is retained is reported (MAXLEN ~)', { timeout: 30000 }, async () => {
  const redis = await RedisProcess.start();
  const A = await offsetServer(streamsHub(redis, 10));
  try {
    const speaker = await client(A, 'live');
    const watcher = await client(A, 'live');
    speaker.write('pub first\n');
    await watcher.until((t) => t.includes(' first\n'));
    const firstOffset = deliveries(watcher)[0]![0];
    for (let i = 0; i < 500; i++) speaker.write(`pub x${i}\n`);
    await watcher.until((t) => t.includes(' x499\n'), 10000);
    const late = await client(A, `since ${firstOffset}`);
    await late.until((t) => t.includes('# replay'), 5000);
    const info = replays(late)[0]!;
    assert.equal(info.complete, false);
    assert.equal(info.gap, 'retention');
    const kept = deliveries(late);
    // MAXLEN ~ trims in whole nodes (100 entries each): at least 10 kept, far fewer than 500.
    assert.ok(kept.length >= 10 && kept.length < 500, `${kept.length} kept`);
    assert.equal(kept[kept.length - 1]![1], 'x499');
    const bogus = await client(A, 'since 5-5');
    await bogus.until((t) => t.includes('# replay'));
    assert.equal(replays(bogus)[0]!.complete, false);
    for (const p of [speaker, watcher, late, bogus]) p.destroy();
  } finally {
    await A.close();
    await redis.stop();
  }
});

test('redis+streams: Redis restarted (no persistence): live delivery resumes, history from before is reported lost', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const A = await offsetServer(streamsHub(redis));
  const B = await offsetServer(streamsHub(redis));
  try {
    const speaker = await client(A, 'live');
    const reader = await client(B, 'live');
    speaker.write('pub before\n');
    await reader.until((t) => t.includes(' before\n'));
    const before = deliveries(reader)[0]![0];
    await redis.stop();
    // While Redis is down, A's own subscribers still get its publishes (without an offset); B does not.
    const local = await client(A, 'live');
    speaker.write('pub while down\n');
    await local.until((t) => t.includes('- while down\n'));
    await redis.start();
    await waitFor(() => A.snapshot().hub?.up === true && B.snapshot().hub?.up === true, 'hubs back', 15000);
    speaker.write('pub after\n');
    await reader.until((t) => t.includes(' after\n'), 10000);
    assert.deepEqual(deliveries(reader).map((d) => d[1]), ['before', 'after'], 'the line published while Redis was down never reached B');
    // The restarted Redis has none of the old stream: a resume from before the restart is told so.
    const resumed = await client(B, `since ${before}`);
    await resumed.until((t) => t.includes('# replay'), 5000);
    const info = replays(resumed)[0]!;
    assert.equal(info.complete, false);
    assert.equal(info.gap, 'unknown-offset');
    assert.deepEqual(deliveries(resumed).map((d) => d[1]), ['after'], 'what the new Redis holds is replayed');
    for (const p of [speaker, reader, local, resumed]) p.destroy();
  } finally {
    await A.close();
    await B.close();
    await redis.stop();
  }
});

test('serve chat --history on redis+streams: a newcomer on server B sees what a user on server A said, and that user in /who', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const hub = `redis+streams://127.0.0.1:${redis.port}`;
  const room = `--room=hist-${process.pid}`;
  const A = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', hub, '--history', '20', room]);
  const B = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', hub, '--history', '20', room]);
  try {
    await waitFor(() => /listening on/.test(A.output()) && /listening on/.test(B.output()), 'servers', 10000);
    const aUrl = /listening on (\S+)/.exec(A.output())![1]!;
    const bUrl = /listening on (\S+)/.exec(B.output())![1]!;
    const ann = await RawPeer.connect(portOf(aUrl));
    await ann.until((t) => t.includes('you are'));
    ann.write('/nick ann\n');
    await ann.until((t) => t.includes('you are now ann'));
    for (const l of ['one', 'two', 'three', 'four']) ann.write(`${l}\n`);
    // Lines reach the stream in order; wait until B's room has them before the newcomer comes.
    const watcher = await RawPeer.connect(portOf(bUrl));
    await watcher.until((t) => t.includes('ann: four\n'), 10000);
    const newcomer = await RawPeer.connect(portOf(bUrl));
    await newcomer.until((t) => t.includes('earlier line(s) above'), 10000);
    // The history block: after the banner lines, up to the marker (join notices are lines of the room too).
    const shown = newcomer.text.split('\n');
    const block = shown.slice(shown.findIndex((l) => l.startsWith('* you are')) + 1, shown.findIndex((l) => l.endsWith('earlier line(s) above')));
    assert.deepEqual(block.filter((l) => l.startsWith('ann: ')), ['ann: one', 'ann: two', 'ann: three', 'ann: four'], 'what ann said on A, in order');
    // The same servers share presence through the streams hub: B's newcomer sees ann (on A) in /who,
    // and cannot take her name.
    newcomer.write('/who\n');
    await newcomer.until((t) => /\* online[^\n]*\n/.test(t.slice(t.indexOf('earlier line(s) above'))), 10000);
    const who = /\* online[^\n]*/.exec(newcomer.text.slice(newcomer.text.indexOf('earlier line(s) above')))![0];
    assert.match(who, /\bann\b/, `A's user in B's /who: ${who}`);
    newcomer.write('/nick ann\n');
    await newcomer.until((t) => t.includes('the name ann is taken'), 10000);
    ann.write('live now\n');
    await newcomer.until((t) => t.includes('ann: live now\n'), 5000);
    assert.equal(newcomer.text.split('\n').filter((l) => l === 'ann: four').length, 1, 'no duplicate at the switch to live');
    assert.equal(ann.text.includes('ann: one'), false, 'no echo to the speaker');
    for (const p of [ann, watcher, newcomer]) p.destroy();
  } finally {
    await stop(A);
    await stop(B);
    await redis.stop();
  }
});

test('serve chat --history in one process (memory hub) and its usage errors', { timeout: 30000 }, async () => {
  const A = serveChat(['--listen', 'text://127.0.0.1:0', '--history', '2', '--room', 'r']);
  try {
    await waitFor(() => /listening on/.test(A.output()), 'server', 10000);
    const url = /listening on (\S+)/.exec(A.output())![1]!;
    const ann = await RawPeer.connect(portOf(url));
    await ann.until((t) => t.includes('you are'));
    ann.write('/nick ann\n');
    await ann.until((t) => t.includes('you are now ann'));
    // After the join and rename notices (published within noticeInterval): the last 2 lines are ann's.
    await new Promise((r) => setTimeout(r, 1200));
    ann.write('a\nb\nc\n');
    const first = await RawPeer.connect(portOf(url));
    await first.until((t) => t.includes('earlier line(s) above'));
    first.destroy();
    const watcher = await RawPeer.connect(portOf(url));
    await watcher.until((t) => t.includes('earlier line(s) above'));
    const shown = watcher.text.split('\n');
    const block = shown.slice(shown.findIndex((l) => l.startsWith('* you are')) + 1, shown.findIndex((l) => l.endsWith('earlier line(s) above')));
    assert.equal(block.length, 2, 'the bound asked for');
    assert.ok(block.every((l) => /^ann: [bc]$|^\* /.test(l)), JSON.stringify(block));
    ann.destroy();
    watcher.destroy();
  } finally {
    await stop(A);
  }
  const bad = serveChat(['--hub', 'redis://127.0.0.1:1', '--history', '5']);
  const [code] = await once(bad.child, 'exit') as [number];
  assert.equal(code, 2);
  assert.match(bad.output(), /--history needs a hub that keeps history: redis\+streams/);
});

test('redis+streams: a hung Redis (SIGSTOP) keeps the pub/sub hub\'s bounds; local subscribers get each message once', { timeout: 30000 }, async () => {
  const redis = await RedisProcess.start();
  const logged: string[] = [];
  const hub = new RedisStreamsHub(redis.url, { prefix: `sb-hang-${process.pid}:`, maxPendingPublishes: 100, answerTimeout: 300, log: (m) => logged.push(m) });
  const got: Array<[string, string | undefined]> = [];
  hub.setListener((_t, data, offset) => got.push([String(data), offset]));
  try {
    hub.subscribe('h');
    await hub.ready();
    redis.pause();
    try {
      for (let i = 0; i < 1000; i++) hub.publish('h', `p${i}`);
      assert.ok(hub.pendingPublishes <= 100, `pending ${hub.pendingPublishes} <= 100`);
      assert.ok(hub.dropped >= 900, `dropped ${hub.dropped}`);
      assert.equal((await hub.history('h', { last: 10 })).gap, 'unavailable', 'no history while it does not answer');
      await waitFor(() => logged.some((l) => /is not answering/.test(l)), 'the stall logged', 5000);
    } finally {
      redis.resume();
    }
    // What was sent before the stall comes back through the stream, with offsets; the rest was delivered at once, without.
    await waitFor(() => got.length >= 1000, 'every message delivered locally', 10000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.length, 1000, 'each once');
    assert.deepEqual(new Set(got.map((g) => g[0])).size, 1000);
    assert.ok(got.filter((g) => g[1] !== undefined).length <= 100, 'at most the pending ones were kept');
    await waitFor(() => logged.some((l) => /answers again/.test(l)), 'the end of the stall logged', 10000);
    hub.publish('h', 'after');
    await waitFor(() => got.some((g) => g[0] === 'after' && g[1] !== undefined), 'kept again', 5000);
  } finally {
    redis.resume();
    await hub.close();
    await redis.stop();
  }
});

test('serve chat --workers 2 --history: each worker keeps the room\'s lines (cluster hub history)', { timeout: 60000 }, async () => {
  const p = await freePort();
  const W = serveChat(['--workers', '2', '--listen', `text://127.0.0.1:${p}`, '--history', '10']);
  try {
    await waitFor(() => /2 workers started/.test(W.output()), 'workers', 15000);
    const workerOf = async (peer: RawPeer): Promise<string> => {
      const logged = new RegExp(`\\[(w\\d)\\] \\[chat\\] \\+ 127\\.0\\.0\\.1:${peer.socket.localPort} `);
      await waitFor(() => logged.test(W.output()), 'the connect log', 5000);
      return logged.exec(W.output())![1]!;
    };
    // Two members on different workers, so that both workers are in the room when ann speaks.
    const ann = await RawPeer.connect(p);
    await ann.until((t) => t.includes('you are'));
    const annWorker = await workerOf(ann);
    let other: RawPeer | undefined;
    for (let tries = 0; other === undefined && tries < 40; tries++) {
      const c = await RawPeer.connect(p);
      await c.until((t) => t.includes('you are'));
      if ((await workerOf(c)) !== annWorker) other = c;
      else c.destroy();
    }
    assert.ok(other, 'a member on the other worker');
    ann.write('/nick ann\n');
    await ann.until((t) => t.includes('you are now ann'));
    ann.write('c1\nc2\n');
    await other.until((t) => t.includes('ann: c2\n'), 15000); // a bound, not a timing: generous for a loaded machine
    // Newcomers on both workers see ann's lines in their history block.
    const seen = new Set<string>();
    for (let tries = 0; seen.size < 2 && tries < 40; tries++) {
      const n = await RawPeer.connect(p);
      await n.until((t) => t.includes('earlier line(s) above'), 5000);
      const shown = n.text.split('\n');
      const block = shown.slice(shown.findIndex((l) => l.startsWith('* you are')) + 1, shown.findIndex((l) => l.endsWith('earlier line(s) above')));
      assert.deepEqual(block.filter((l) => l.startsWith('ann: ')), ['ann: c1', 'ann: c2']);
      seen.add(await workerOf(n));
      n.destroy();
    }
    assert.equal(seen.size, 2, 'newcomers on both workers');
    ann.destroy();
    other.destroy();
  } finally {
    await stop(W);
  }
});
