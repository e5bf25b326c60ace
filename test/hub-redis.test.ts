/**
 * The redis hub against a real, private redis-server (started here, so it can be killed and
 * restarted): text and binary exactly once and in order, no echo to the publisher, unsubscribe,
 * an outage in the middle, and a second real process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Message } from '../src/codec/types.js';
import { createHub } from '../src/hubs/index.js';
import { RedisHub, type RedisHubOptions } from '../src/hubs/redis.js';
import { exitOf, freePort, LineReader, RedisProcess, spawnTs, waitFor } from './hub-support.js';

let redis: RedisProcess;
let prefixes = 0;
const uniquePrefix = (): string => `sbtest${process.pid}-${++prefixes}:`;

interface Received {
  topic: string;
  data: Message;
}

function hubWithInbox(url: string, prefix: string, logs: string[] = [], options: RedisHubOptions = {}): { hub: RedisHub; inbox: Received[] } {
  const hub = new RedisHub(url, { prefix, log: (m) => logs.push(m), maxRetryDelay: 100, ...options });
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
      // The recovery line counts what this outage dropped, in the outage line's words.
      assert.equal(logsA[1], `redis hub: connection to ${own.url} is back; 0 topic(s) resubscribed, ` +
        'delivery across processes resumes (1 message(s) dropped while it was down)');
      assert.equal(logsB[1], `redis hub: connection to ${own.url} is back; 2 topic(s) resubscribed, ` +
        'delivery across processes resumes (0 message(s) dropped while it was down)');
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
      await own.stop();
    }
  });

  it('checks its bounds: a limit that is not a positive number is ERR_INVALID_OPTION', () => {
    for (const bad of [{ maxPendingPublishes: 0 }, { maxPendingBytes: -1 }, { answerTimeout: Number.NaN }]) {
      assert.throws(() => createHub(redis.url, { log: () => undefined, ...bad }), (err: Error & { code?: string }) =>
        err.code === 'ERR_INVALID_OPTION' && err.message.includes(Object.keys(bad)[0]!));
    }
  });

  it('ready() rejects with ERR_HUB when redis is unreachable, saying so once, and close() leaves nothing running', { timeout: 5000 }, async () => {
    const dead = await RedisProcess.start();
    await dead.stop();
    const logs: string[] = [];
    const hub = new RedisHub(dead.url, { log: (m) => logs.push(m), readyTimeout: 1000, maxRetryDelay: 50 });
    hub.publish('x', 'dropped');
    const err = await hub.ready().then(() => null, (e: unknown) => e as Error & { code?: string });
    await hub.close();
    assert.equal(err?.code, 'ERR_HUB');
    assert.equal(err.message,
      `redis hub: cannot reach ${dead.url}: connect ECONNREFUSED 127.0.0.1:${dead.port} (tried for 1000 ms; is redis running there?)`);
    // The rejection is the one report: no "retrying" line before it that it would contradict.
    assert.deepEqual(logs, []);
    // If close() left a reconnect timer, this test file's process would not exit and the runner would time out.
  });

  it('without a ready() caller, an unreachable redis is logged once after readyTimeout, and its arrival once', { timeout: 8000 }, async () => {
    const late = new RedisProcess(await freePort());
    const logs: string[] = [];
    const hub = new RedisHub(late.url, { log: (m) => logs.push(m), readyTimeout: 1000, maxRetryDelay: 50 });
    try {
      hub.subscribe('room');
      await waitFor(() => logs.length >= 1, 'the start-up line');
      assert.deepEqual(logs, [
        `redis hub: cannot reach ${late.url}: connect ECONNREFUSED 127.0.0.1:${late.port}; retrying; ` +
          'until then only local subscribers get messages and publishes to other processes are dropped',
      ]);
      hub.publish('room', 'dropped');
      await late.start();
      await waitFor(() => logs.length >= 2, 'the arrival line');
      assert.deepEqual(logs.slice(1), [
        `redis hub: connected to ${late.url}; 1 topic(s) subscribed, delivery across processes starts (1 message(s) dropped before)`,
      ]);
    } finally {
      await hub.close();
      await late.stop();
    }
  });

  it('the command line says once that redis cannot be reached and exits 1', { timeout: 20000 }, async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', 'echo', '--listen', 'tcp://127.0.0.1:0',
      '--hub', `redis://127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = await exitOf(child, 15000);
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.equal(stderr, `switchboard serve: redis hub: cannot reach redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} ` +
      '(tried for 5000 ms; is redis running there?)\n');
    assert.equal(stdout, '');
  });

  it('bounds what waits for a redis that hangs (SIGSTOP): drops with a count, logs once, resumes on SIGCONT', { timeout: 30000 }, async () => {
    const own = await RedisProcess.start();
    const prefix = uniquePrefix();
    const logsA: string[] = [];
    const logsB: string[] = [];
    const maxPendingBytes = 1024 * 1024;
    const a = new RedisHub(own.url, { prefix, log: (m) => logsA.push(m), maxRetryDelay: 100, answerTimeout: 500, maxPendingBytes });
    const b = hubWithInbox(own.url, prefix, logsB, { answerTimeout: 500 });
    try {
      b.hub.subscribe('room');
      await Promise.all([a.ready(), b.hub.ready()]);
      a.publish('room', 'before');
      await waitFor(() => b.inbox.length === 1, 'delivery before the hang');

      const memory = (): number => process.memoryUsage().heapUsed + process.memoryUsage().external;
      const base = memory();
      own.pause();
      const N = 200_000;
      const payload = 'x'.repeat(1024);
      let peak = 0;
      let peakPending = 0;
      for (let i = 0; i < N; i++) {
        a.publish('room', payload);
        if (i % 1000 === 999) {
          peak = Math.max(peak, memory() - base);
          peakPending = Math.max(peakPending, a.pendingBytes);
          await new Promise((r) => setImmediate(r));
        }
      }
      // Unbounded, 200k publishes of 1 KiB hold over 200 MB waiting for Redis; bounded, about 1 MiB.
      assert.ok(peak < 64 * 1024 * 1024, `memory grew by ${peak} bytes while redis hung`);
      assert.ok(peakPending <= maxPendingBytes, `pending ${peakPending} bytes`);
      const sent = N - a.dropped;
      assert.ok(a.dropped > N - 2000, `dropped ${a.dropped} of ${N}`);
      assert.ok(sent > 0);
      assert.equal(logsA.length, 1, JSON.stringify(logsA));
      assert.match(logsA[0]!, new RegExp(`^redis hub: redis://127\\.0\\.0\\.1:${own.port} is not answering \\(\\d+ publish\\(es\\), \\d+ bytes, ` +
        'wait for an answer\\); local delivery goes on, messages published to other processes are dropped until it answers$'));
      // B publishes nothing: its unanswered PING is what tells it.
      await waitFor(() => logsB.length >= 1, 'B to notice the hang', 5000);
      assert.match(logsB[0]!, /is not answering \(no answer for \d+ ms\); local delivery goes on/);

      own.resume();
      await waitFor(() => logsA.length >= 2 && logsB.length >= 2, 'both to see redis answer again', 10000);
      assert.equal(logsA[1], `redis hub: ${own.url} answers again; delivery across processes resumes (${a.dropped} message(s) dropped while it did not answer)`);
      assert.match(logsB[1]!, /answers again; delivery across processes resumes \(0 message\(s\) dropped while it did not answer\)$/);
      a.publish('room', 'after');
      await waitFor(() => b.inbox.length === 1 + sent + 1, `delivery after SIGCONT (${b.inbox.length} of ${sent + 2})`, 10000);
      assert.equal(b.inbox[b.inbox.length - 1]!.data, 'after');
      // Redis answers the publisher after it has delivered to subscribers: B may see 'after' first.
      await waitFor(() => a.pendingPublishes === 0, 'the last publish answered', 5000);
      assert.equal(logsA.length, 2, JSON.stringify(logsA));
    } finally {
      own.resume();
      await Promise.all([a.close(), b.hub.close()]);
      await own.stop();
    }
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
