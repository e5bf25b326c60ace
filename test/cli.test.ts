/** The command line, run as a subprocess the way a user runs it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { RawPeer, portOf } from './helpers.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

function run(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.on('close', (code) => { clearTimeout(killer); resolve({ code, stdout, stderr }); });
  });
}

/** Starts `switchboard serve ...` and resolves with the child and its first bound URL. */
async function serve(args: string[]): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [...CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const deadline = Date.now() + 8000;
  while (!/listening on (\S+)/.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, url: /listening on (\S+)/.exec(out)![1]!, output: () => out };
}

test('serve reverse + send: the seed exchange from the command line; SIGTERM stops it gracefully', { timeout: 20000 }, async () => {
  const { child, url, output } = await serve(['reverse', '--listen', 'tcp://127.0.0.1:0']);
  try {
    const r = await run(['send', url, 'Hello Server', '--quiet-time', '300ms']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'revreS olleH\n');
    assert.match(output(), /\+ 127\.0\.0\.1:\d+ connected/);
  } finally {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.match(output(), /SIGTERM, closing/);
  }
});

test('send to a text server, a raw HTTP GET with -e, and the exit code when nothing listens', { timeout: 20000 }, async () => {
  const { child, url } = await serve(['echo', '--listen', 'text://127.0.0.1:0']);
  try {
    const r = await run(['send', url, 'happy', '--quiet-time', '300ms']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Welcome to php socket server[\s\S]*OK \.\.\. happy\n$/);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  // A tiny HTTP server stands in for a web site (seed 004's raw GET).
  const http = net.createServer((s) => s.once('data', (req) => {
    s.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nyou asked: ${req.toString().split('\r\n')[0]}`);
  }));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as net.AddressInfo).port;
  try {
    const r = await run(['send', '-e', `tcp://127.0.0.1:${port}`, 'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^HTTP\/1\.0 200 OK\r\n[\s\S]*you asked: GET \/ HTTP\/1\.0$/);
  } finally {
    http.close();
  }
  const refused = await run(['send', `text://127.0.0.1:${port}`, 'x']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /cannot connect .*ECONNREFUSED/);
});

test('serve daytime + send udp://: a datagram answered with the date', { timeout: 20000 }, async () => {
  const { child, output } = await serve(['daytime', '--listen', 'udp://127.0.0.1:0']);
  try {
    const url = /listening on (udp:\/\/\S+)/.exec(output())![1]!;
    const r = await run(['send', url, '\n', '--quiet-time', '300ms']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

test('serve echo --bare --deflate on ws://: send speaks WebSocket; text stays text, binary stays binary', { timeout: 20000 }, async () => {
  const { child, url } = await serve(['echo', '--bare', '--deflate', '--listen', 'ws://127.0.0.1:0']);
  try {
    const r = await run(['send', url, 'héllo ws', '--quiet-time', '300ms']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'héllo ws\n');
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(url, { perMessageDeflate: true });
    await once(ws, 'open');
    assert.match(String(ws.extensions), /permessage-deflate/);
    const big = 'x'.repeat(5 * 1024 * 1024); // over the default 1 MiB bound: --bare raises it
    ws.send(big);
    const [text, isBinary] = await once(ws, 'message') as [Buffer, boolean];
    assert.equal(isBinary, false);
    assert.equal(text.length, big.length);
    ws.send(Buffer.from([1, 2, 3]));
    const [bin, isBin2] = await once(ws, 'message') as [Buffer, boolean];
    assert.equal(isBin2, true);
    assert.deepEqual([...bin], [1, 2, 3]);
    ws.close();
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

test('connect: stdin lines go to the server, its lines to stdout', { timeout: 20000 }, async () => {
  const { child, url } = await serve(['ack', '--listen', 'text://127.0.0.1:0']);
  try {
    const r = await run(['connect', url], 'one\ntwo\n');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'connect\nInformation Received\nInformation Received\n');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

test('greet --max-accepts 2 exits by itself after two clients', { timeout: 20000 }, async () => {
  const { child, url } = await serve(['greet', '--listen', 'tcp://127.0.0.1:0', '--max-accepts', '2', '--greeting', 'hi']);
  for (let i = 0; i < 2; i++) {
    const peer = await RawPeer.connect(portOf(url));
    peer.write('Ho\r\nfirst blood\r\n');
    assert.equal(await peer.untilClosed(), 'hi\nsuccess\n');
  }
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

test('probe: open and closed ports, ranges', { timeout: 20000 }, async () => {
  const a = net.createServer().listen(0, '127.0.0.1');
  await once(a, 'listening');
  const open = (a.address() as net.AddressInfo).port;
  const closedPort = await new Promise<number>((resolve) => {
    const t = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (t.address() as net.AddressInfo).port;
      t.close(() => resolve(p));
    });
  });
  try {
    const r = await run(['probe', '127.0.0.1', `${closedPort},${open}-${open}`, '--timeout', '500ms']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${open} open\n`);
    assert.match(r.stderr, /1 of 2 ports open/);
  } finally {
    a.close();
  }
  const bad = await run(['probe', '127.0.0.1', '70000']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /outside 1-65535/);
});

test('malformed URLs and unknown servers are refused with a message, before anything listens', { timeout: 20000 }, async () => {
  const r1 = await run(['serve', 'echo', '--listen', 'txt://127.0.0.1:5000']);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /unknown scheme "txt:\/\/"/);
  const r2 = await run(['serve', 'nosuch']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /unknown server "nosuch"/);
  const r3 = await run(['send', 'text://127.0.0.1', 'x']);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /port is missing/);
});
