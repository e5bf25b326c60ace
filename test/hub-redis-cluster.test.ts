/**
 * The redis+cluster hub (sharded pub/sub) on a 3-node Redis Cluster started here, and plain
 * messages from other programs (`redis-cli PUBLISH` / `SPUBLISH`, no switchboard header) reaching
 * a text:// user on the redis and redis+cluster hubs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../src/codec/types.js';
import { chatServer } from '../src/apps/index.js';
import type { Server } from '../src/core/server.js';
import { createHub } from '../src/hubs/index.js';
import { keySlot, RedisClusterHub, parseClusterUrl, type RedisClusterHubOptions } from '../src/hubs/redis-cluster.js';
import { decodePayload, encodePayload } from '../src/hubs/redis.js';
import { portOf, quiet, RawPeer } from './helpers.js';
import { freePort, RedisProcess, waitFor } from './hub-support.js';
import { RedisClusterProcess, redisCli } from './engine-support.js';

let cluster: RedisClusterProcess;
let prefixes = 0;
const uniquePrefix = (): string => `sbtest${process.pid}-${++prefixes}:`;

function hubWithInbox(prefix: string, logs: string[] = [], options: RedisClusterHubOptions = {}): { hub: RedisClusterHub; inbox: Message[] } {
  const hub = new RedisClusterHub(cluster.spec, { prefix, log: (m) => logs.push(m), maxRetryDelay: 100, ...options });
  const inbox: Message[] = [];
  hub.setListener((_topic, data) => inbox.push(data));
  return { hub, inbox };
}

async function chatPair(hubSpec: string, room: string): Promise<{ servers: Server[]; onA: RawPeer; onB: RawPeer }> {
  const servers: Server[] = [];
  const hubs = [createHub(hubSpec, { log: quiet }), createHub(hubSpec, { log: quiet })];
  for (const hub of hubs) servers.push(await chatServer({ listen: 'text://127.0.0.1:0', log: quiet, room, noticeInterval: 0, hub }));
  const onA = await RawPeer.connect(portOf(servers[0]!.addresses[0]!));
  const onB = await RawPeer.connect(portOf(servers[1]!.addresses[0]!));
  for (const p of [onA, onB]) await p.until((t) => t.includes('you are'));
  // The room is subscribed when its first member joins: ready() resolves once that is in effect.
  await Promise.all(hubs.map((h) => h.ready()));
  return { servers, onA, onB };
}

before(async () => {
  cluster = await RedisClusterProcess.start();
});
after(async () => {
  await cluster.stop();
});

describe('payload framing shared by the redis hubs', () => {
  it('tells its own header from any text another program publishes', () => {
    const origin = Buffer.from('12345678');
    const other = Buffer.from('abcdefgh');
    assert.equal(decodePayload(encodePayload(origin, 'hi'), origin), null, 'own publish');
    assert.equal(decodePayload(encodePayload(other, 'hi ünï'), origin), 'hi ünï');
    assert.deepEqual(decodePayload(encodePayload(other, Buffer.from('bin')), origin), Buffer.from('bin'));
    // The old 9-byte header began with 't': a plain text such as this one must stay text.
    assert.equal(decodePayload(Buffer.from('this is plain text'), origin), 'this is plain text');
    assert.deepEqual(decodePayload(Buffer.from([0xff, 0x00]), origin), Buffer.from([0xff, 0x00]), 'not UTF-8: bytes');
  });
});

describe('redis hub: plain PUBLISH from another program', () => {
  it('redis-cli PUBLISH to switchboard:<room> reaches an nc-style text:// user as a line', { timeout: 15000 }, async () => {
    const redis = await RedisProcess.start();
    const room = `room-${process.pid}`;
    let pair: Awaited<ReturnType<typeof chatPair>> | undefined;
    try {
      pair = await chatPair(redis.url, room);
      await redisCli('-p', String(redis.port), 'PUBLISH', `switchboard:${room}`, 'maintenance at noon');
      await pair.onA.until((t) => t.includes('maintenance at noon\n'));
      await pair.onB.until((t) => t.includes('maintenance at noon\n'));
    } finally {
      pair?.onA.socket.destroy();
      pair?.onB.socket.destroy();
      await Promise.all((pair?.servers ?? []).map((s) => s.close()));
      await redis.stop();
    }
  });
});

describe('redis+cluster hub', () => {
  it('parses its spec and checks its bounds', () => {
    assert.deepEqual(parseClusterUrl('redis+cluster://a:7000,b:7001').seeds, [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }]);
    assert.equal(parseClusterUrl('redis+cluster://:secret@a:7000').safe, 'redis+cluster://:***@a:7000');
    assert.throws(() => createHub('redis+cluster://', { log: quiet }), { code: 'ERR_INVALID_OPTION' });
    assert.throws(() => createHub(cluster.spec, { log: quiet, maxPendingPublishes: 0 }), { code: 'ERR_INVALID_OPTION' });
  });

  it('computes the slot of a channel as the cluster does (hash tags too)', async () => {
    for (const key of ['switchboard:chat', 'a{b}c', '{}x', 'foo{}{bar}', 'ünï', 'x'.repeat(300)]) {
      const slot = Number((await redisCli('-p', String(cluster.ports[0]), 'CLUSTER', 'KEYSLOT', key)).trim());
      assert.equal(keySlot(key), slot, key);
    }
  });

  it('carries text and binary on many shards exactly once, in order, never back to the publisher', { timeout: 15000 }, async () => {
    const prefix = uniquePrefix();
    const a = hubWithInbox(prefix);
    const b = hubWithInbox(prefix);
    // Topics whose channels hash to slots on every master.
    const topics = Array.from({ length: 12 }, (_, i) => `t${i}`);
    try {
      assert.equal(a.hub.kind, 'redis+cluster');
      for (const t of topics) {
        a.hub.subscribe(t);
        b.hub.subscribe(t);
      }
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      const masters = new Set(await Promise.all(topics.map((t) => cluster.portOf(prefix + t))));
      assert.equal(masters.size, 3, 'the topics span all three masters');
      for (let i = 0; i < 600; i++) {
        const topic = topics[i % topics.length]!;
        const m = i % 2 === 0 ? `${topic} m${i} ünï` : Buffer.from([0xff, i & 0xff]);
        a.hub.publish(topic, m);
      }
      b.hub.publish('t0', 'from b');
      await waitFor(() => b.inbox.length >= 600 && a.inbox.length >= 1, 'deliveries', 10000);
      b.hub.publish('t0', 'marker');
      await waitFor(() => a.inbox.length >= 2, 'marker');
      assert.equal(b.inbox.length, 600);
      assert.deepEqual(a.inbox, ['from b', 'marker'], 'no echo');
      // Order holds per topic (one shard per topic): compare each topic's sequence.
      const got = new Map<string, Message[]>();
      const want = new Map<string, Message[]>();
      for (let i = 0; i < 600; i++) {
        const topic = topics[i % topics.length]!;
        want.set(topic, [...(want.get(topic) ?? []), i % 2 === 0 ? `${topic} m${i} ünï` : Buffer.from([0xff, i & 0xff])]);
      }
      // The inbox keeps no topic; text messages name theirs.
      for (const m of b.inbox) {
        const topic = typeof m === 'string' ? m.split(' ')[0]! : null;
        if (topic !== null) got.set(topic, [...(got.get(topic) ?? []), m]);
      }
      for (const t of topics) {
        assert.deepEqual(got.get(t) ?? [], want.get(t)!.filter((m) => typeof m === "string"), `topic ${t} in order: ${JSON.stringify(got.get(t))}`);
      }
      assert.equal(b.inbox.filter((m) => Buffer.isBuffer(m)).length, 300, 'binary stays binary');
      assert.equal(a.hub.pendingPublishes, 0);
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
    }
  });

  it('two chat servers on the cluster hub are one room; redis-cli SPUBLISH reaches an nc-style user', { timeout: 20000 }, async () => {
    const room = `room-${process.pid}`;
    let pair: Awaited<ReturnType<typeof chatPair>> | undefined;
    try {
      pair = await chatPair(cluster.spec, room);
      pair.onA.write('/nick ann\n');
      await pair.onB.until((t) => t.includes('is now ann'));
      pair.onA.write('hello across shards\n');
      await pair.onB.until((t) => t.includes('ann: hello across shards\n'));
      const port = await cluster.portOf(`switchboard:${room}`);
      await redisCli('-c', '-p', String(port), 'SPUBLISH', `switchboard:${room}`, 'sharded announcement');
      await pair.onB.until((t) => t.includes('sharded announcement\n'));
      await pair.onA.until((t) => t.includes('sharded announcement\n'));
      assert.equal(pair.onB.text.split('\n').filter((l) => l === 'ann: hello across shards').length, 1);
    } finally {
      pair?.onA.socket.destroy();
      pair?.onB.socket.destroy();
      await Promise.all((pair?.servers ?? []).map((s) => s.close()));
    }
  });

  it('a master killed and restarted mid-test: logged once, publishes to it dropped, then delivery resumes', { timeout: 40000 }, async () => {
    const prefix = uniquePrefix();
    const logsA: string[] = [];
    const logsB: string[] = [];
    const a = hubWithInbox(prefix, logsA, { answerTimeout: 1000 });
    const b = hubWithInbox(prefix, logsB, { answerTimeout: 1000 });
    try {
      b.hub.subscribe('room');
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      a.hub.publish('room', 'before');
      await waitFor(() => b.inbox.length === 1, 'delivery before the restart');

      const node = cluster.node(await cluster.portOf(`${prefix}room`));
      await node.stop();
      await waitFor(() => !a.hub.up && !b.hub.up, 'both hubs to see the master down', 10000).catch((e: unknown) => {
        throw new Error(`${String(e)}: a ${a.hub.up} b ${b.hub.up} ${JSON.stringify([logsA, logsB])}`);
      });
      const dropped = a.hub.dropped;
      a.hub.publish('room', 'while down');
      await waitFor(() => a.hub.dropped === dropped + 1, 'the publish while down to be dropped', 10000);

      await node.start();
      await cluster.waitHealthy(20000);
      await waitFor(() => a.hub.up && b.hub.up, 'both hubs up again', 20000);
      // The shard's subscriber connection comes back on ioredis's own schedule after the slot map
      // refresh: probe until one probe arrives, then everything after it must arrive in order.
      let probes = 0;
      await waitFor(() => {
        if (b.inbox.some((m) => typeof m === 'string' && m.startsWith('probe'))) return true;
        a.hub.publish('room', `probe ${probes++}`);
        return false;
      }, 'delivery after the restart', 20000, 200);
      const from = b.inbox.length;
      for (let i = 0; i < 50; i++) a.hub.publish('room', `after ${i}`);
      await waitFor(() => b.inbox.length >= from + 50, 'the messages after the restart', 10000);
      const after = b.inbox.slice(from).filter((m) => typeof m === 'string' && m.startsWith('after'));
      assert.deepEqual(after, Array.from({ length: 50 }, (_, i) => `after ${i}`), 'each once, in order');
      assert.ok(!b.inbox.includes('while down'), 'what was published while the master was down is not delivered later');
      for (const logs of [logsA, logsB]) {
        assert.equal(logs.filter((l) => /is not answering|lost connection/.test(l)).length, 1, JSON.stringify(logs));
        assert.equal(logs.filter((l) => /answers again|is back/.test(l)).length, 1, JSON.stringify(logs));
      }
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
    }
  });

  it('ready() rejects with ERR_HUB when no node answers', { timeout: 8000 }, async () => {
    const port = await freePort();
    const logs: string[] = [];
    const hub = new RedisClusterHub(`redis+cluster://127.0.0.1:${port}`, { log: (m) => logs.push(m), readyTimeout: 1000, maxRetryDelay: 50 });
    hub.publish('x', 'dropped');
    const err = await hub.ready().then(() => null, (e: unknown) => e as Error & { code?: string });
    await hub.close();
    assert.equal(err?.code, 'ERR_HUB');
    assert.match(err.message, /^redis\+cluster hub: cannot reach redis\+cluster:\/\/127\.0\.0\.1:\d+: .*\(tried for 1000 ms; is the cluster running there\?\)$/);
    assert.deepEqual(logs, []);
    assert.equal(hub.dropped, 1);
  });
});
