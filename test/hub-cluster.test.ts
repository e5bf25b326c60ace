/**
 * runWorkers() and the cluster hub, as real processes: two workers share one port, a publish in
 * worker A reaches worker B (text and binary, in order, once) and never comes back to A, a killed
 * worker is restarted, and SIGTERM stops everything gracefully.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createHub } from '../src/hubs/index.js';
import { MemoryHub } from '../src/hubs/memory.js';
import { clusterTestMessages, digestMessages, exitOf, freePort, LineReader, spawnTs, waitFor } from './hub-support.js';

function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('end', () => resolve(text.trim()));
    s.on('error', reject);
  });
}

describe('cluster hub and runWorkers', () => {
  it('outside a worker, createHub() is memory and a cluster hub refuses to start', () => {
    assert.ok(createHub() instanceof MemoryHub);
    assert.throws(() => createHub('cluster'), { code: 'ERR_HUB' });
    assert.throws(() => createHub('kafka://x'), { code: 'ERR_INVALID_OPTION' });
  });

  it('relays between two workers sharing a port, restarts a crashed worker, stops on SIGTERM', { timeout: 20000 }, async () => {
    const port = await freePort();
    const COUNT = 200;
    const child = spawnTs(fileURLToPath(new URL('./hub-cluster-fixture.ts', import.meta.url)), {
      PORT: String(port),
      COUNT: String(COUNT),
    });
    const out = new LineReader(child.stdout!);
    const err = new LineReader(child.stderr!);
    try {
      await out.next(/^PRIMARY READY /, 'both workers listening', 10000);
      const [, pidA] = await out.next(/^READY 1 (\d+)$/, 'worker 1');

      const b = JSON.parse((await out.next(/^RESULT B (.*)$/, 'worker B\'s tally'))[1]) as { kind: string; count: number; digest: string };
      const a = JSON.parse((await out.next(/^RESULT A (.*)$/, 'worker A\'s tally'))[1]) as { kind: string; echoes: number };
      assert.deepEqual(
        b,
        { kind: 'cluster', count: COUNT, digest: digestMessages(clusterTestMessages(COUNT)) },
        'B got every message once, in order, text as text and bytes as bytes',
      );
      assert.deepEqual(a, { kind: 'cluster', echoes: 0 }, 'A never got its own publishes back');

      // The port is shared: connections land on both workers (round-robin in the primary).
      const answers = new Set<string>();
      for (let i = 0; i < 8 && answers.size < 2; i++) answers.add(await ask(port));
      assert.deepEqual([...answers].sort(), ['worker 1', 'worker 2']);

      // A crash is followed by a restart of the same worker number.
      process.kill(Number(pidA), 'SIGKILL');
      await err.next(new RegExp(`worker 1 \\(pid ${pidA}\\) exited with signal SIGKILL; restarting in \\d+ ms`), 'the crash report');
      const [, newPid] = await out.next(/^READY 1 (\d+)$/, 'worker 1 again', 8000, out.lines.findIndex((l) => l.startsWith(`READY 1 ${pidA}`)) + 1);
      assert.notEqual(newPid, pidA);

      child.kill('SIGTERM');
      const exit = await exitOf(child, 8000);
      assert.deepEqual(exit, { code: 0, signal: null });
      await waitFor(() => out.lines.includes('PRIMARY STOPPED'), 'the primary to report the stop', 1000);
      assert.ok(out.lines.includes('STOPPED 1') && out.lines.includes('STOPPED 2'), `each worker ran its stop function: ${out.lines.join(' | ')}`);
      assert.ok(err.lines.some((l) => /SIGTERM: stopping 2 worker\(s\)/.test(l)), err.lines.join(' | '));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('fails runWorkers() in the primary when a worker cannot start, and stops the others', { timeout: 10000 }, async () => {
    const port = await freePort();
    const child = spawnTs(fileURLToPath(new URL('./hub-cluster-fixture.ts', import.meta.url)), { PORT: String(port), FAIL_WORKER: '2' });
    const out = new LineReader(child.stdout!);
    try {
      const exit = await exitOf(child, 8000);
      assert.deepEqual(exit, { code: 1, signal: null });
      const [, line] = await out.next(/^PRIMARY FAILED (.*)$/, 'the failure', 1000);
      assert.match(line, /^ERR_WORKER_START worker 2 failed to start: simulated start failure$/);
      assert.ok(!out.lines.some((l) => l.startsWith('PRIMARY READY')));
    } finally {
      child.kill('SIGKILL');
    }
  });
});
