/**
 * The cluster hub's mesh as real processes and real sockets (hub-mesh-fixture.ts): three workers
 * publish to each other directly, each message once and in publish order; a topic goes only to
 * the workers that subscribe to it; a worker killed with SIGKILL comes back, rejoins the mesh and
 * receives; a worker that stops reading costs its peers a bounded queue, and what did not fit is
 * dropped and counted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { PeerStats } from '../src/hubs/cluster.js';
import { exitOf, LineReader, spawnTs, waitFor } from './hub-support.js';

const FIXTURE = fileURLToPath(new URL('./hub-mesh-fixture.ts', import.meta.url));

/** One control connection to a worker of the fixture: a command per line, a JSON line back. */
class Control {
  private rest = '';
  private readonly waiting: Array<(line: string) => void> = [];
  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      const parts = (this.rest + d).split('\n');
      this.rest = parts.pop() ?? '';
      for (const line of parts) this.waiting.shift()?.(line);
    });
  }

  static connect(port: number): Promise<Control> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Control(s)));
      s.once('error', reject);
    });
  }

  async ask<T = Record<string, unknown>>(cmd: string): Promise<T> {
    const line = await new Promise<string>((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(cmd + '\n');
    });
    const reply = JSON.parse(line) as T & { error?: string };
    if (reply.error !== undefined) throw new Error(`${cmd}: ${reply.error}`);
    return reply;
  }

  async got(topic: string): Promise<string[]> {
    return (await this.ask<{ messages: string[] }>(`got ${topic}`)).messages;
  }

  stats(): Promise<{ dropped: number; peers: PeerStats[] }> {
    return this.ask('stats');
  }

  close(): void {
    this.sock.destroy();
  }
}

interface Tree {
  child: ChildProcess;
  out: LineReader;
  err: LineReader;
  workers: Map<number, { pid: number; control: Control }>;
}

async function start(env: Record<string, string> = {}): Promise<Tree> {
  const child = spawnTs(FIXTURE, env);
  const out = new LineReader(child.stdout!);
  const err = new LineReader(child.stderr!);
  const workers = new Map<number, { pid: number; control: Control }>();
  try {
    await out.next(/^PRIMARY READY /, 'three workers ready', 15000);
    for (const i of [1, 2, 3]) workers.set(i, await attach(out, i));
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; stderr: ${err.lines.join(' | ')}`);
  }
  return { child, out, err, workers };
}

async function attach(out: LineReader, index: number, from = 0): Promise<{ pid: number; control: Control }> {
  const [, pid, port] = await out.next(new RegExp(`^READY ${index} (\\d+) (\\d+)$`), `worker ${index}`, 10000, from);
  return { pid: Number(pid), control: await Control.connect(Number(port)) };
}

async function stop(t: Tree): Promise<void> {
  for (const w of t.workers.values()) {
    w.control.close();
    try {
      process.kill(w.pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  if (t.child.exitCode === null && t.child.signalCode === null) {
    t.child.kill('SIGTERM');
    await exitOf(t.child, 8000).catch(() => t.child.kill('SIGKILL'));
  }
}

/** What worker `from` published on a topic, as the receiver records it: "from:k:s|b" for k in [first, last]. */
function expected(from: number, first: number, last: number): string[] {
  return Array.from({ length: last - first + 1 }, (_, i) => `${from}:${first + i}:${(first + i) % 2 === 0 ? 's' : 'b'}`);
}

const byPublisher = (messages: string[], from: number): string[] => messages.filter((m) => m.startsWith(`${from}:`));
const peer = (peers: PeerStats[], index: number): PeerStats => {
  const p = peers.find((x) => x.index === index);
  assert.ok(p, `a link to worker ${index}: ${JSON.stringify(peers)}`);
  return p;
};

describe('cluster hub mesh', () => {
  it('3 workers: each publish reaches the others once, in order; a topic goes only to subscribers; a SIGKILLed worker rejoins', { timeout: 40000 }, async () => {
    const t = await start();
    try {
      const w = (i: number): Control => t.workers.get(i)!.control;
      for (const i of [1, 2, 3]) await w(i).ask('sub room');
      for (const i of [1, 2, 3]) {
        const peers = (await w(i).stats()).peers;
        assert.deepEqual(peers.map((p) => p.index), [1, 2, 3].filter((x) => x !== i), `worker ${i} is linked to the two others`);
      }

      // Every worker publishes at once, text and bytes interleaved; then one more each as an end marker.
      const N = 300;
      await Promise.all([1, 2, 3].map((i) => w(i).ask(`pub room ${N} 64`)));
      await Promise.all([1, 2, 3].map((i) => w(i).ask('pub room 1 64')));
      for (const i of [1, 2, 3]) {
        await waitFor(async () => (await w(i).got('room')).length >= 2 * (N + 1), `worker ${i} to get ${2 * (N + 1)} messages`, 15000);
        const got = await w(i).got('room');
        assert.equal(got.length, 2 * (N + 1), `worker ${i}: nothing twice`);
        assert.deepEqual(byPublisher(got, i), [], `worker ${i} never gets its own publishes`);
        for (const from of [1, 2, 3].filter((x) => x !== i)) {
          assert.deepEqual(byPublisher(got, from), expected(from, 0, N), `worker ${i} got worker ${from}'s messages once each, in publish order`);
        }
      }

      // 'private' has subscribers in workers 1 and 2 only: worker 1 sends it to 2 and not to 3.
      await w(1).ask('sub private');
      await w(2).ask('sub private');
      const before = (await w(1).stats()).peers;
      await w(1).ask('pub private 100 64');
      await waitFor(async () => (await w(2).got('private')).length === 100, 'worker 2 to get the private messages', 10000);
      const after = (await w(1).stats()).peers;
      assert.equal(peer(after, 2).messagesSent - peer(before, 2).messagesSent, 100, 'worker 1 sent each to worker 2');
      assert.equal(peer(after, 3).messagesSent, peer(before, 3).messagesSent, 'worker 1 sent none to worker 3, which does not subscribe');
      assert.equal(peer(after, 3).bytesSent, peer(before, 3).bytesSent);
      assert.deepEqual(await w(3).got('private'), []);
      assert.equal(peer(after, 2).topics, 2, 'worker 1 knows worker 2 subscribes to room and private');
      assert.equal(peer(after, 3).topics, 1);

      // Worker 3 is killed; the primary restarts it; it rejoins the mesh and gets worker 1's and 2's publishes.
      const old = t.workers.get(3)!;
      old.control.close();
      const mark = t.out.lines.length;
      process.kill(old.pid, 'SIGKILL');
      const again = await attach(t.out, 3, mark);
      assert.notEqual(again.pid, old.pid);
      t.workers.set(3, again);
      await w(3).ask('sub room');
      await w(1).ask('pub room 50 64');
      await w(2).ask('pub room 50 64');
      await waitFor(async () => (await w(3).got('room')).length === 100, 'the restarted worker 3 to get 100 messages', 10000);
      const got3 = await w(3).got('room');
      assert.deepEqual(byPublisher(got3, 1), expected(1, N + 1, N + 50), 'from worker 1, in order, once');
      assert.deepEqual(byPublisher(got3, 2), expected(2, N + 1, N + 50), 'from worker 2, in order, once');
      for (const i of [1, 2]) {
        const peers = (await w(i).stats()).peers;
        assert.deepEqual(peers.map((p) => [p.index, p.pid]), [[3 - i, t.workers.get(3 - i)!.pid], [3, again.pid]].sort((a, b) => a[0] - b[0]), `worker ${i} dropped the dead link and has the new one`);
      }
      // And the restarted worker's publishes reach the others.
      await w(3).ask('pub room 10 64');
      await waitFor(async () => byPublisher(await w(1).got('room'), 3).length === N + 1 + 10, 'worker 1 to get the new worker 3\'s messages', 10000);
      assert.deepEqual(byPublisher(await w(1).got('room'), 3).slice(N + 1), expected(3, 0, 9));
    } finally {
      await stop(t);
    }
  });

  it('a worker that stops reading: its peers queue at most maxPendingBytes for it, then drop and count', { timeout: 40000 }, async () => {
    const BOUND = 64 * 1024;
    const t = await start({ MAX_BYTES: String(BOUND) });
    try {
      const w = (i: number): Control => t.workers.get(i)!.control;
      for (const i of [1, 2, 3]) await w(i).ask('sub big');
      const stopped = t.workers.get(3)!.pid;
      process.kill(stopped, 'SIGSTOP');
      // 4 MB for the stopped worker: more than its socket buffers and the bound together.
      const N = 4000;
      await w(1).ask(`pub big ${N} 1024`);
      const s = await w(1).stats();
      const p3 = peer(s.peers, 3);
      assert.ok(p3.dropped > 0, `publishes to the stopped worker were dropped: ${JSON.stringify(p3)}`);
      assert.ok(p3.queuedBytes < BOUND + 2048, `what waits for it stays under the bound plus one message: ${p3.queuedBytes}`);
      assert.equal(s.dropped, s.peers.reduce((n, p) => n + p.dropped, 0), 'the hub counts every drop');
      assert.ok(t.err.lines.some((l) => /\[w1\] cluster hub: worker 3 \(pid \d+\) has \d+ bytes waiting; dropping messages to it/.test(l)), 'logged once');

      // Worker 3 resumes: it gets, in order and once each, what was not dropped, then the next message.
      process.kill(stopped, 'SIGCONT');
      await waitFor(async () => peer((await w(1).stats()).peers, 3).queuedBytes === 0, 'worker 3 to read what waited for it', 15000);
      await w(1).ask('pub big 1 1024');
      await waitFor(async () => (await w(3).got('big')).includes(`1:${N}:s`), 'worker 3 to get the message after it resumed', 15000);
      for (const i of [2, 3]) {
        const got = byPublisher(await w(i).got('big'), 1);
        const ks = got.map((m) => Number(m.split(':')[1]));
        assert.ok(ks.every((k, j) => j === 0 || k > ks[j - 1]), `worker ${i}: in publish order, nothing twice`);
        const dropped = peer((await w(1).stats()).peers, i).dropped;
        assert.equal(got.length + dropped, N + 1, `worker ${i}: every message arrived or was counted as dropped`);
      }
      assert.ok((await w(3).got('big')).length < N + 1);
    } finally {
      await stop(t);
    }
  });
});
