/**
 * The redis hub against a real, private redis-server (started here, so it can be killed and
 * restarted): text and binary exactly once and in order, no echo to the publisher, unsubscribe,
 * an outage in the middle, and a second real process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Message } from '../src/codec/types.js';
import { createHub } from '../src/hubs/index.js';
import { RedisHub } from '../src/hubs/redis.js';
import { exitOf, LineReader, RedisProcess, spawnTs, waitFor } from './hub-support.js';

let redis: RedisProcess;
let prefixes = 0;
const uniquePrefix = (): string => `sbtest${process.pid}-${++prefixes}:`;

interface Received {
  topic: string;
  data: Message;
}

function hubWithInbox(url: string, prefix: string, logs: string[] = []): { hub: RedisHub; inbox: Received[] } {
  const hub = new RedisHub(url, { prefix, log: (m) => logs.push(m), maxRetryDelay: 100 });
  const inbox: Received[] = [];
  hub.setListener((topic, data) => inbox.push({ topic, data }));
  return { hub, inbox };
}

/** Every byte value, so nothing in the path may treat payloads as text. */
const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

before(async () => {
  redis = await RedisProcess.start();
});
after(async () => {
  await redis.stop();
});

describe('redis hub', () => {
  it('is what createHub() makes of a redis URL', { timeout: 5000 }, async () => {
    const hub = createHub(redis.url, { prefix: uniquePrefix(), log: () => undefined });
    assert.equal(hub.kind, 'redis');
    await hub.ready();
    await hub.close();
    await hub.close(); // twice is a no-op
  });

  it('carries text and binary between two hubs exactly once, in order, never back to the publisher', { timeout: 8000 }, async () => {
    const prefix = uniquePrefix();
    const a = hubWithInbox(redis.url, prefix);
    const b = hubWithInbox(redis.url, prefix);
    try {
      a.hub.subscribe('room');
      b.hub.subscribe('room');
      await Promise.all([a.hub.ready(), b.hub.ready()]);

      const N = 1000;
      const sent: Message[] = [];
      for (let i = 0; i < N; i++) {
        // Alternate text (with multi-byte UTF-8) and binary (all 256 byte values plus a counter).
        const msg: Message = i % 2 === 0 ? `a${i} ünï 😀` : Buffer.concat([allBytes, Buffer.from([i & 0xff, i >> 8])]);
        sent.push(msg);
        a.hub.publish('room', msg);
      }
      b.hub.publish('room', 'from b');
      await waitFor(() => b.inbox.length >= N && a.inbox.length >= 1, 'both inboxes');
      // Give a duplicate or an echo the time to show up, proven by a marker published after everything.
      b.hub.publish('room', 'marker');
      await waitFor(() => a.inbox.length >= 2, 'marker at a');

      assert.equal(b.inbox.length, N, 'b sees each of a\'s messages once, and none of its own');
      for (let i = 0; i < N; i++) {
        const got = b.inbox[i];
        assert.equal(got.topic, 'room');
        assert.equal(typeof got.data, typeof sent[i], `message ${i} keeps its type`);
        assert.deepEqual(got.data, sent[i], `message ${i} in order and intact`);
      }
      assert.ok(Buffer.isBuffer(b.inbox[1].data));
      assert.deepEqual(
        a.inbox.map((r) => r.data),
        ['from b', 'marker'],
        'a sees b\'s messages and none of its own 1000',
      );
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
    }
  });

  it('stops delivery on unsubscribe, locally at once and at redis', { timeout: 8000 }, async () => {
    const prefix = uniquePrefix();
    const a = hubWithInbox(redis.url, prefix);
    const b = hubWithInbox(redis.url, prefix);
    const probe = new Redis(redis.url);
    try {
      b.hub.subscribe('t1');
      b.hub.subscribe('t2');
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      a.hub.publish('t1', 'one');
      await waitFor(() => b.inbox.length === 1, 't1 message');

      b.hub.unsubscribe('t1');
      a.hub.publish('t1', 'after unsubscribe');
      a.hub.publish('t2', 'sync');
      // Same publisher connection, same subscriber connection: t2's message comes after t1's would.
      await waitFor(() => b.inbox.length === 2, 't2 message');
      assert.deepEqual(b.inbox.map((r) => `${r.topic}:${String(r.data)}`), ['t1:one', 't2:sync']);
      await waitFor(async () => {
        const reply = (await probe.pubsub('NUMSUB', `${prefix}t1`, `${prefix}t2`)) as Array<string | number>;
        return Number(reply[1]) === 0 && Number(reply[3]) === 1;
      }, 'redis to drop the t1 subscription');
    } finally {
      probe.disconnect();
      await Promise.all([a.hub.close(), b.hub.close()]);
    }
  });

  it('survives redis dying mid-stream: logs once, drops while down, resubscribes, delivers after', { timeout: 12000 }, async () => {
    const own = await RedisProcess.start();
    const prefix = uniquePrefix();
    const logsA: string[] = [];
    const logsB: string[] = [];
    const a = hubWithInbox(own.url, prefix, logsA);
    const b = hubWithInbox(own.url, prefix, logsB);
    try {
      b.hub.subscribe('room');
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      a.hub.publish('room', 'before');
      await waitFor(() => b.inbox.length === 1, 'delivery before the outage');

      await own.stop();
      await waitFor(() => logsA.length >= 1 && logsB.length >= 1, 'the outage to be logged');
      // While down: publishes are dropped (nothing queued), subscriptions may still change. The
      // outage line can come from A's subscriber connection a moment before its publisher notices;
      // a publish in that moment fails in ioredis and is counted when it does, so wait for the count.
      const droppedBefore = a.hub.dropped;
      a.hub.publish('room', 'while down');
      await waitFor(() => a.hub.dropped === droppedBefore + 1, 'the publish while down to be dropped');
      b.hub.subscribe('late'); // subscribed during the outage: must be in effect after it
      // Several reconnect attempts fail meanwhile; they must not log again.
      await new Promise((r) => setTimeout(r, 400));

      await own.start();
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      a.hub.publish('room', 'after');
      a.hub.publish('late', 'late topic');
      await waitFor(() => b.inbox.length === 3, 'delivery after recovery');
      assert.deepEqual(
        b.inbox.map((r) => String(r.data)),
        ['before', 'after', 'late topic'],
        'nothing published while down arrives later (no offline queue), all after recovery does',
      );

      for (const logs of [logsA, logsB]) {
        const lost = logs.filter((l) => l.includes('lost connection'));
        const back = logs.filter((l) => l.includes(' is back; '));
        assert.equal(lost.length, 1, `one outage line: ${JSON.stringify(logs)}`);
        assert.match(lost[0], /local delivery goes on, messages published to other processes are dropped until it is back/);
        assert.match(lost[0], new RegExp(`redis://127\\.0\\.0\\.1:${own.port}`));
        assert.equal(back.length, 1, `one recovery line: ${JSON.stringify(logs)}`);
        assert.equal(logs.length, 2, `nothing else logged: ${JSON.stringify(logs)}`);
      }
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
      await own.stop();
    }
  });

  it('ready() rejects with ERR_HUB when redis is unreachable, and close() leaves nothing running', { timeout: 5000 }, async () => {
    const dead = await RedisProcess.start();
    await dead.stop();
    const logs: string[] = [];
    const hub = new RedisHub(dead.url, { log: (m) => logs.push(m), readyTimeout: 300, maxRetryDelay: 50 });
    hub.publish('x', 'dropped');
    await assert.rejects(hub.ready(), (err: Error & { code?: string }) => err.code === 'ERR_HUB' && err.message.includes(dead.url));
    await hub.close();
    assert.equal(logs.filter((l) => l.includes('cannot reach')).length, 1, JSON.stringify(logs));
    // If close() left a reconnect timer, this test file's process would not exit and the runner would time out.
  });

  it('connects two real processes: each message once, in order, types kept, no echo', { timeout: 15000 }, async () => {
    const prefix = uniquePrefix();
    const peer = spawnTs(fileURLToPath(new URL('./hub-redis-peer.ts', import.meta.url)), {
      REDIS_URL: redis.url,
      HUB_PREFIX: prefix,
    });
    const out = new LineReader(peer.stdout!);
    let stderr = '';
    peer.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const me = hubWithInbox(redis.url, prefix);
    try {
      me.hub.subscribe('out');
      me.hub.subscribe('in'); // our own publishes on 'in' must not come back to us
      await me.hub.ready();
      await out.next(/^READY$/, 'the peer to be ready');

      const N = 1000;
      const sent: Message[] = [];
      for (let i = 0; i < N; i++) {
        const msg: Message = i % 3 === 0 ? Buffer.concat([Buffer.from([i & 0xff]), allBytes]) : `line ${i}\n\0 end`;
        sent.push(msg);
        me.hub.publish('in', msg);
      }
      me.hub.publish('in', 'DONE');
      const result = await out.next(/^RESULT (.*)$/, 'the peer\'s result');
      await waitFor(() => me.inbox.length >= N, 'the peer\'s relays');
      const report = JSON.parse(result[1]) as { received: number; echoes: number };
      assert.deepEqual(report, { received: N, echoes: 0 }, 'the peer got each message once and none of its own back');
      assert.equal(me.inbox.length, N, `we got each relay once and none of our own: ${stderr}`);
      me.inbox.forEach((r, i) => {
        assert.equal(r.topic, 'out');
        assert.deepEqual(r.data, sent[i], `relay ${i} in order, same type and bytes`);
      });
      assert.deepEqual(await exitOf(peer), { code: 0, signal: null });
    } finally {
      peer.kill('SIGKILL');
      await me.hub.close();
    }
  });
});
