#!/usr/bin/env node
// `npm run test:sanitize`: builds native/tcp.c (and native/sockets.c) with AddressSanitizer and UndefinedBehaviorSanitizer
// (build/sanitize/, the normal build untouched) and runs the native transport's tests on that copy.
// Node itself is not built with ASan, so the sanitizer runtimes are preloaded into it; a finding
// aborts the test process, and the run fails. Linux with gcc only (elsewhere it says so and passes).
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.platform !== 'linux') {
  console.log('switchboard: test:sanitize runs on Linux only; skipped.');
  process.exit(0);
}
const tests = ['test/native-transport.test.ts', 'test/native-cleanup.test.ts',
  // switchboard/sockets' addon (native/sockets.c): Unix sockets, sendmsg/recvmsg, setsockopt.
  'test/sockets-msg.test.ts', 'test/sockets-multicast.test.ts', 'test/sockets-api.test.ts'];

execFileSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs'), '--strict', '--sanitize'], { stdio: 'inherit' });
const cc = process.env.CC || 'cc';
const runtime = (name) => {
  const file = execFileSync(cc, [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(file)) {
    console.error(`switchboard: ${cc} does not know where ${name} is (install gcc's sanitizer runtimes)`);
    process.exit(1);
  }
  return file;
};
const env = {
  ...process.env,
  SWITCHBOARD_NATIVE_PATH: path.join(root, 'build', 'sanitize', 'switchboard_tcp.node'),
  SWITCHBOARD_SOCKETS_NATIVE_PATH: path.join(root, 'build', 'sanitize', 'switchboard_sockets.node'),
  LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so'), process.env.LD_PRELOAD].filter(Boolean).join(' '),
  // Leaks off here: Node's own allocations at exit are not ours. native-cleanup.test.ts turns
  // leak detection on in a child of its own and looks only at the addon's allocations.
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1',
  UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
};
const started = Date.now();
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...tests], { cwd: root, env, stdio: 'inherit' });
console.log(`switchboard: test:sanitize ${r.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(r.status ?? 1);
