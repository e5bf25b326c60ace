/**
 * Presence across processes on real engines: a private redis-server, chat servers as separate
 * processes (one SIGKILLed), and `serve chat --workers 2` with the cluster hub.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { chatServer } from '../src/apps/chat.js';
import { Server } from '../src/core/server.js';
import type { Connection } from '../src/core/connection.js';
import { createHub } from '../src/hubs/index.js';
import { RawPeer, portOf, waitFor } from './helpers.js';
import { LineReader, RedisProcess, freePort, spawnTs } from './hub-support.js';
import { serveChat, stop } from './cli-support.js';

/** Sends /who and returns the answer line. */
async function who(peer: RawPeer): Promise<string> {
  const count = (): number => peer.text.split('\n').filter((l) => l.startsWith('* online here')).length;
  const before = count();
  peer.write('/who\n');
  await peer.until(() => count() > before, 5000);
  return peer.text.split('\n').filter((l) => l.startsWith('* online here'))[before]!;
}

/** The names a /who line lists. */
function names(line: string): string[] {
  return line.replace(/^\* online here \(\d+\)[^:]*: /, '').replace(/, and \d+ more$/, '').split(', ').filter((n) => n !== '').sort();
}

/** Sends /nick NAME and returns the answer line. */
async function nick(peer: RawPeer, name: string): Promise<string> {
  const answers = (): string[] => peer.text.split('\n').filter((l) => l.startsWith('* you are now') || l.startsWith('* the name') || l.startsWith('* names cannot'));
  const before = answers().length;
  peer.write(`/nick ${name}\n`);
  await peer.until(() => answers().length > before, 5000);
  return answers()[before]!;
}

/** Asks /who until its names satisfy `ok` (each answer is a fresh listing), bounded by `ms`. */
async function untilWho(peer: RawPeer, ok: (names: string[]) => boolean, what: string, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = await who(peer);
    if (ok(names(line))) return line;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${line}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function joined(port: number): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  await p.until((t) => t.includes('* you are guest'));
  return p;
}

test('two chat servers on one Redis: /who lists both servers\' users, a name held on A cannot be taken on B until A\'s user leaves', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const room = `--room=presence-${process.pid}`;
  const A = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', redis.url, room]);
  const B = serveChat(['--listen', 'text://127.0.0.1:0', '--hub', redis.url, room]);
  try {
    await waitFor(() => /listening on/.test(A.output()) && /listening on/.test(B.output()), 10000, 'servers');
    const aPort = portOf(/listening on (\S+)/.exec(A.output())![1]!);
    const bPort = portOf(/listening on (\S+)/.exec(B.output())![1]!);
    const ann = await joined(aPort);
    assert.equal(await nick(ann, 'ann'), '* you are now ann');
    const newcomer = await joined(bPort);
    assert.equal(await nick(newcomer, 'bob'), '* you are now bob');
    const line = await who(newcomer);
    assert.match(line, /^\* online here \(2\): /);
    assert.deepEqual(names(line), ['ann', 'bob'], 'the newcomer on B sees the user on A');
    assert.deepEqual(names(await who(ann)), ['ann', 'bob'], 'and A sees B\'s');

    // Held on A: refused on B, lookalikes too; at the same time two B users race for one free name.
    assert.equal(await nick(newcomer, 'ann'), '* the name ann is taken');
    assert.equal(await nick(newcomer, 'ANN'), '* the name ANN is taken');
    const b2 = await joined(bPort);
    const a2 = await joined(aPort);
    const race = await Promise.all([nick(b2, 'zed'), nick(a2, 'zed')]);
    assert.deepEqual(race.sort(), ['* the name zed is taken', '* you are now zed'], `exactly one server got the name: ${race.join(' | ')}`);

    // ann leaves: she leaves /who and the name is free (her server gives both back on her close).
    ann.destroy();
    await untilWho(newcomer, (n) => !n.includes('ann'), 'ann to leave /who');
    let answer = '';
    for (let i = 0; i < 50 && answer !== '* you are now ann'; i++) answer = await nick(newcomer, 'ann');
    assert.equal(answer, '* you are now ann', 'the name is free once its holder left');
    const after = await who(b2);
    assert.match(after, /^\* online here \(3\): /);
    assert.ok(names(after).includes('ann') && names(after).includes('zed'), after);
    for (const p of [newcomer, b2, a2]) p.destroy();
  } finally {
    await stop(A);
    await stop(B);
    await redis.stop();
  }
});

test('a chat server killed with SIGKILL leaves presence within its TTL, and its names become free', { timeout: 60000 }, async () => {
  const redis = await RedisProcess.start();
  const room = `kill-${process.pid}`;
  const TTL = 1500;
  const fixture = spawnTs(fileURLToPath(new URL('./presence-fixture.ts', import.meta.url)), {
    REDIS_URL: redis.url, PRESENCE_TTL: String(TTL), PRESENCE_INTERVAL: '200', ROOM: room,
  });
  const out = new LineReader(fixture.stdout!);
  const B = await chatServer({ listen: 'text://127.0.0.1:0', hub: createHub(redis.url, { presenceTtl: TTL, presenceInterval: 200 }), room, log: () => {} });
  try {
    const [, url] = await out.next(/^LISTENING (\S+)$/, 'the fixture listening', 10000);
    const kim = await joined(portOf(url!));
    assert.equal(await nick(kim, 'kim'), '* you are now kim');
    const watcher = await joined(portOf(B.addresses[0]!));
    assert.equal(await nick(watcher, 'wes'), '* you are now wes');
    // Refreshed past its first TTL: kim stays listed while her server lives.
    await new Promise((r) => setTimeout(r, 2 * TTL));
    assert.deepEqual(names(await who(watcher)), ['kim', 'wes'], 'a live server\'s members stay listed');
    assert.equal(await nick(watcher, 'kim'), '* the name kim is taken', 'and its claims held');

    fixture.kill('SIGKILL');
    await once(fixture, 'exit');
    // A bound, with slack for a loaded machine: it lapses TTL after its last refresh.
    const line = await untilWho(watcher, (n) => !n.includes('kim'), 'the killed server\'s member to lapse', 5 * TTL);
    assert.match(line, /^\* online here \(1\): wes$/);
    let answer = '';
    for (let i = 0; i < 100 && answer !== '* you are now kim'; i++) answer = await nick(watcher, 'kim');
    assert.equal(answer, '* you are now kim', 'the crashed holder\'s claim lapsed');
    kim.destroy();
    watcher.destroy();
  } finally {
    fixture.kill('SIGKILL');
    await B.close();
    await redis.stop();
  }
});

test('--workers 2: /who lists the members of both workers, and a name held on one worker is refused on the other', { timeout: 60000 }, async () => {
  const port = await freePort();
  const W = serveChat(['--workers', '2', '--listen', `text://127.0.0.1:${port}`]);
  try {
    await waitFor(() => /2 workers started/.test(W.output()), 15000, 'workers');
    const workerOf = async (p: RawPeer): Promise<string> => {
      const logged = new RegExp(`\\[(w\\d)\\] \\[chat\\] \\+ 127\\.0\\.0\\.1:${p.socket.localPort} `);
      await waitFor(() => logged.test(W.output()), 5000, 'the connect log');
      return logged.exec(W.output())![1]!;
    };
    // One client on each worker (the kernel or the primary picks: clients are tried until both have one).
    const byWorker = new Map<string, RawPeer>();
    for (let tries = 0; byWorker.size < 2 && tries < 40; tries++) {
      const p = await joined(port);
      const w = await workerOf(p);
      if (byWorker.has(w)) p.destroy();
      else byWorker.set(w, p);
    }
    assert.equal(byWorker.size, 2, 'clients on both workers');
    const [one, two] = [byWorker.get('w1')!, byWorker.get('w2')!];
    assert.equal(await nick(one, 'uno'), '* you are now uno');
    assert.equal(await nick(two, 'dos'), '* you are now dos');
    assert.deepEqual(names(await who(one)), ['dos', 'uno']);
    assert.deepEqual(names(await who(two)), ['dos', 'uno']);
    assert.equal(await nick(two, 'uno'), '* the name uno is taken');
    // Worker 1 is killed: the primary sees it exit and drops its members and claims (no TTL to wait for).
    const pids = /2 workers started: pids (\d+) (\d+)/.exec(W.output())!;
    process.kill(Number(pids[1]), 'SIGKILL');
    await untilWho(two, (n) => !n.includes('uno'), 'the killed worker\'s member to go');
    assert.equal(await nick(two, 'uno'), '* you are now uno', 'and its claim');
    one.destroy();
    two.destroy();
  } finally {
    await stop(W);
  }
});

test('Server presence API on Redis: metadata, local flags, bounds, and a claim race won by exactly one', { timeout: 30000 }, async () => {
  const redis = await RedisProcess.start();
  const make = (): Promise<Server> => new Server({ listen: 'text://127.0.0.1:0', hub: createHub(redis.url), presence: { maxEntryBytes: 64, maxListed: 3 } }).listen();
  const [s1, s2] = await Promise.all([make(), make()]);
  const peers: RawPeer[] = [];
  try {
    // Five members: two on s1, three on s2, each [server, its connection].
    const members: Array<[Server, Connection<Record<string, unknown>>]> = [];
    for (const s of [s1, s1, s2, s2, s2]) {
      const got = new Promise<Connection<Record<string, unknown>>>((resolve) => s.once('connection', resolve));
      peers.push(await RawPeer.connect(portOf(s.addresses[0]!)));
      members.push([s, await got]);
    }
    members.forEach(([s, c], i) => {
      s.setPresence(c, { name: `u${i}`, n: i });
      c.subscribe('room');
    });
    const [s0, c0] = members[0]!;
    assert.throws(() => s0.setPresence(c0, { name: 'x'.repeat(100) }), { code: 'ERR_INVALID_OPTION' }, 'bytes per entry are bounded');
    assert.throws(() => s0.setPresence(c0, { nested: {} as unknown as string }), { code: 'ERR_INVALID_OPTION' });
    const all = await s2.presence('room', { limit: 100 });
    assert.equal(all.total, 5, 'every member of both servers is counted');
    assert.equal(all.members.length, 3, 'maxListed bounds a listing');
    assert.equal((await s1.presence('room', { limit: 2 })).members.length, 2);
    for (const m of (await s1.presence('room', { limit: 3 })).members) assert.equal(m.local, Number(m.meta.n) < 2, `local flag of ${String(m.meta.name)}`);
    assert.equal((await s1.presence('elsewhere')).total, 0);
    // Leaving the topic leaves its presence; metadata null takes a member out too.
    members[4]![1].unsubscribe('room');
    s2.setPresence(members[3]![1], null);
    assert.equal((await s1.presence('room')).total, 3);

    const contenders = [members[0]!, members[2]!, members[3]!];
    const race = await Promise.all(contenders.map(([s, c]) => s.claim('seat-1', c)));
    assert.equal(race.filter(Boolean).length, 1, `one winner: ${race.join(',')}`);
    const [ws, wc] = contenders[race.indexOf(true)]!;
    assert.equal(await ws.claim('seat-1', wc), true, 'the holder may claim it again');
    ws.release('seat-1', wc);
    const [ls, lc] = members[4]!;
    let retaken = false;
    for (let i = 0; i < 50 && !retaken; i++) retaken = await ls.claim('seat-1', lc);
    assert.ok(retaken, 'released, it is free');
    await assert.rejects(ls.claim('k'.repeat(65), lc), { code: 'ERR_INVALID_OPTION' }, 'claim keys are bounded');
  } finally {
    for (const p of peers) p.destroy();
    await s1.close();
    await s2.close();
    await redis.stop();
  }
});

test('a claim found taken by another process is given up and the user told; with Redis down /who says it is partial and /nick cannot be checked', { timeout: 30000 }, async () => {
  const redis = await RedisProcess.start();
  const room = `lost-${process.pid}`;
  const server = await chatServer({ listen: 'text://127.0.0.1:0', hub: createHub(redis.url, { presenceTtl: 3000, presenceInterval: 100, log: () => {} }), room, log: () => {} });
  const peers: RawPeer[] = [];
  try {
    const lee = await joined(portOf(server.addresses[0]!));
    const other = await joined(portOf(server.addresses[0]!));
    peers.push(lee, other);
    assert.equal(await nick(lee, 'lee'), '* you are now lee');
    // What another server's claim looks like once this one's lapsed while it was cut off: the key holds someone else.
    const ctl = await RawPeer.connect(redis.port);
    peers.push(ctl);
    const key = `switchboard:claim:chat:${room}:nick:lee`;
    ctl.write(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$9\r\nsomeone:1\r\n`);
    await ctl.until((t) => t.includes('+OK'));
    await lee.until((t) => t.includes('* the name lee was taken on another server while this one was cut off; you are now guest'), 5000);
    const line = await who(other);
    assert.ok(!names(line).includes('lee') && names(line).length === 2, `lee is a guest again: ${line}`);
    assert.equal(await nick(other, 'lee'), '* the name lee is taken', 'the other holder keeps it');

    await redis.stop();
    await untilWho(other, () => true, 'any answer');
    const partial = await who(other);
    assert.match(partial, /^\* online here \(2\) \(this server only: the other servers cannot be asked now\): /);
    assert.equal(await nick(other, 'newname'), '* names cannot be checked across the servers right now; try again soon');
  } finally {
    for (const p of peers) p.destroy();
    await server.close();
    await redis.stop();
  }
});

test('Redis restarted empty: each server writes its members and claims again', { timeout: 30000 }, async () => {
  const redis = await RedisProcess.start();
  const make = (): Promise<Server> => new Server({ listen: 'text://127.0.0.1:0', hub: createHub(redis.url, { presenceTtl: 3000, presenceInterval: 100, log: () => {} }) }).listen();
  const [s1, s2] = await Promise.all([make(), make()]);
  const peers: RawPeer[] = [];
  try {
    const members: Array<[Server, Connection<Record<string, unknown>>]> = [];
    for (const s of [s1, s2, s2]) {
      const got = new Promise<Connection<Record<string, unknown>>>((resolve) => s.once('connection', resolve));
      peers.push(await RawPeer.connect(portOf(s.addresses[0]!)));
      members.push([s, await got]);
    }
    members.forEach(([s, c], i) => {
      s.setPresence(c, { name: `r${i}` });
      c.subscribe('room');
    });
    assert.equal(await s1.claim('seat', members[0]![1]), true);
    assert.equal((await s1.presence('room')).total, 3);
    await redis.stop();
    await redis.start();
    let total = 0;
    for (let i = 0; i < 200 && total !== 3; i++) {
      total = await s1.presence('room').then((p) => p.total, () => -1);
      if (total !== 3) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(total, 3, 'every member is back');
    assert.deepEqual((await s2.presence('room')).members.map((m) => m.meta.name).sort(), ['r0', 'r1', 'r2']);
    assert.equal(await s2.claim('seat', members[1]![1]), false, 'the claim was taken again by its holder');
  } finally {
    for (const p of peers) p.destroy();
    await s1.close();
    await s2.close();
    await redis.stop();
  }
});
