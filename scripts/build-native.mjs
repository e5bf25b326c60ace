#!/usr/bin/env node
// Builds the optional native TCP transport (native/tcp.c, with native/mask.c beside it) into build/switchboard_tcp.node (and
// switchboard/sockets' system calls, native/sockets.c, into build/switchboard_sockets.node) with the
// system C compiler and Node's own headers. Without a compiler or headers switchboard still works:
// it falls back to node:net, so a failed build is reported and is not an error (pass --strict to
// make it one, as the tests do through `npm run build:native -- --strict`).
//
// --sanitize builds a second copy with AddressSanitizer and UndefinedBehaviorSanitizer into
// build/sanitize/switchboard_tcp.node (the normal build is left alone); scripts/test-sanitize.mjs
// loads it through SWITCHBOARD_NATIVE_PATH and runs the native tests on it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const sanitize = process.argv.includes('--sanitize');
const out = path.join(root, 'build', ...(sanitize ? ['sanitize'] : []), 'switchboard_tcp.node');

// Node's headers: beside the node binary (official tarballs, Debian's /usr), or npm's nodedir.
const candidates = [
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
].filter(Boolean);
const include = candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')) && existsSync(path.join(dir, 'uv.h')));

function giveUp(why) {
  console.error(`switchboard: native transport not built (${why}); node:net will be used instead.`);
  process.exit(strict ? 1 : 0);
}

if (!include) giveUp(`Node's headers not found in ${candidates.join(' or ')}`);
mkdirSync(path.dirname(out), { recursive: true });
const cc = process.env.CC || 'cc';
// Every finding stops the process (no recovery from UB), with frames to read.
const flags = sanitize
  ? ['-O1', '-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
    // Never unloaded (Node unloads a worker's addons): leak reports at exit still name tcp.c's lines.
    '-Wl,-z,nodelete']
  : ['-O2'];
// Node-API and libuv symbols come from the node binary at load time (macOS must be told so).
const lazy = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
function compile(sources, output) {
  execFileSync(cc, [...flags, '-fPIC', '-shared', '-Wall', '-Wextra', '-std=gnu11', `-I${include}`, ...lazy,
    '-o', output, ...sources.map((source) => path.join(root, 'native', source))], { stdio: 'inherit' });
}
try {
  // The transport, and beside it the WebSocket XOR helper (mask.c) that the same module offers.
  compile(['tcp.c', 'mask.c'], out);
} catch (err) {
  giveUp(`${cc} failed: ${err.message.split('\n')[0]}`);
}
console.log(`switchboard: native transport built: ${path.relative(root, out)}`);

// switchboard/sockets' system calls (native/sockets.c: Unix sockets as descriptors, sendmsg and
// recvmsg with control messages, setsockopt). Linux only; without it those functions fail with
// 38 "Function not implemented" and the rest of switchboard/sockets works as before.
if (process.platform === 'linux') {
  const socketsOut = path.join(path.dirname(out), 'switchboard_sockets.node');
  try {
    compile(['sockets.c'], socketsOut);
    console.log(`switchboard: sockets addon built: ${path.relative(root, socketsOut)}`);
  } catch (err) {
    console.error(`switchboard: sockets addon not built (${cc} failed: ${err.message.split('\n')[0]}); socket_sendmsg, socket_recvmsg and the options that need setsockopt() will fail with 38.`);
    if (strict) process.exit(1);
  }
}
