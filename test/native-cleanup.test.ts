// The native addon's own contract at its edges, each in a child process (native-cleanup-fixture.ts)
// so that a crash or a sanitizer report fails one test instead of the runner:
// - a worker thread that serves natively and exits leaves no handle, socket or allocation behind
//   (before, Node aborted the whole process: "uv_loop_close() while having open handles");
// - listen() before init() is refused (it used to accept, and the first connection's record was
//   written through a null event buffer);
// - with the smallest event buffer and slab init() accepts, batches fill up and are delivered
//   early all the time, and every byte still arrives, in order, from inside the slab.
// `npm run test:sanitize` runs this file on the ASan/UBSan build, with leak detection on here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../src/transport/native.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const addonPath = process.env.SWITCHBOARD_NATIVE_PATH || `${root}build/switchboard_tcp.node`;
const sanitized = (process.env.LD_PRELOAD ?? '').includes('libasan');

function run(...args: string[]): { out: Record<string, unknown>; stderr: string } {
  const env = { ...process.env };
  // Under ASan: leak detection on in the child, for the addon's allocations (see below).
  if (sanitized) env.ASAN_OPTIONS = `${env.ASAN_OPTIONS ?? ''}:detect_leaks=1`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/native-cleanup-fixture.ts', ...args],
    { cwd: root, env, encoding: 'utf8', timeout: 60000 });
  // Leak reports count when one of their frames is in the addon (the sanitizer build is never
  // unloaded, so its frames keep their file names); LeakSanitizer's exit status 23 alone may be Node's.
  assert.doesNotMatch(r.stderr, /native\/tcp\.c/, `the addon's memory was reported:\n${r.stderr}`);
  const leaksOnly = sanitized && r.status === 23 && /LeakSanitizer: detected memory leaks/.test(r.stderr);
  assert.ok(r.status === 0 || leaksOnly, `fixture ${args[0]} exited with ${r.status ?? r.signal}:\n${r.stderr}`);
  return { out: JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>, stderr: r.stderr };
}

test('worker threads that serve, hold connections with writes queued, and exit leave nothing behind', { timeout: 90000 }, () => {
  const { out } = run('workers');
  assert.equal(out.native, nativeAvailable);
  const fds = out.fds as number[];
  assert.equal(fds.length, 6);
  // The first round may open what the process keeps (worker machinery); after it, no round adds any.
  for (const n of fds.slice(1)) assert.ok(n <= fds[0]!, `open fds grew across worker rounds: ${fds.join(', ')}`);
  assert.equal(out.echo, 'still here\n', 'the main thread no longer serves');
});

test('the smallest event buffer and slab: full batches are delivered early and no byte is lost or misplaced', { timeout: 90000, skip: !nativeAvailable && 'the native addon is off' }, () => {
  const { out } = run('edge', addonPath);
  assert.equal(out.received, 68);
  assert.deepEqual(out.wrong, [], 'connections whose bytes differ from those sent');
  assert.equal(out.maxRecords, 4, 'batches never filled the 4-record event buffer');
  assert.equal(out.maxEnd, out.slab, 'reads never filled the slab to its end');
});

test('the addon refuses listen() before init() and buffers too small, with errors rather than a crash', { timeout: 30000, skip: !nativeAvailable && 'the native addon is off' }, () => {
  const script = `
    const net = require('node:net');
    const a = require(process.argv[1]);
    const errors = [];
    const tryIt = (f) => { try { f(); errors.push(null); } catch (e) { errors.push(e.message); } };
    let port = 0;
    tryIt(() => { const r = a.listen('127.0.0.1', 0, 16, false, false); if (Array.isArray(r)) port = r[1]; });
    tryIt(() => a.init(() => {}, Buffer.alloc(1024), new Int32Array(16)));
    tryIt(() => a.init(() => {}, Buffer.alloc(1 << 17), new Int32Array(8)));
    // Had listen() been taken, this connection's ACCEPT record would go to the event buffer.
    const s = port ? net.connect(port, '127.0.0.1') : null;
    s?.on('error', () => {});
    setTimeout(() => { console.log(JSON.stringify(errors)); s?.destroy(); process.exit(0); }, 200);
  `;
  const r = spawnSync(process.execPath, ['-e', script, addonPath], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, `exited with ${r.status ?? r.signal}:\n${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout.trim()), [
    'listen() before init()',
    'slab must be 128 KiB to 2 GiB',
    'events must be an Int32Array of 4 records or more',
  ]);
});
