/** The command line, run as a subprocess the way a user runs it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { RawPeer, makeCertificate, portOf } from './helpers.js';

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
    // connect over UDP: the answer to the last datagram still arrives after the end of input.
    const c = await run(['connect', url, '--quiet-time', '300ms'], 'x\n');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/);
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

test('--help and -h on every command print that command\'s usage and exit 0; --version is package.json\'s', { timeout: 60000 }, async () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const version = await run(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `${pkg.version}\n`);
  for (const flag of ['--help', '-h']) {
    const top = await run([flag]);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^usage: switchboard <command>/);
    for (const command of ['serve', 'send', 'connect', 'probe']) {
      const r = await run([command, flag]);
      assert.equal(r.code, 0, `${command} ${flag}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: switchboard ${command} `));
      assert.equal(r.stderr, '');
    }
  }
  // Help wins over everything else on the line, even a server name that would listen.
  const serveHelp = await run(['serve', 'echo', '--listen', 'text://127.0.0.1:0', '--help']);
  assert.equal(serveHelp.code, 0);
  assert.match(serveHelp.stdout, /--max-connections N/);
  const helpSend = await run(['help', 'send']);
  assert.equal(helpSend.code, 0);
  assert.match(helpSend.stdout, /^usage: switchboard send URL/);
  const nothing = await run([]);
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /^usage: switchboard <command>/);
});

test('exit codes: 2 for bad usage only, 1 for what fails at run time', { timeout: 60000 }, async () => {
  const usage: string[][] = [
    ['serve', 'echo', '--bogus'],
    ['serve', 'echo', 'extra'],
    ['serve', 'echo', '--workers', '0'],
    ['serve', 'echo', '--listen', 'tls://127.0.0.1:0'],
    ['send', 'tcp://127.0.0.1:1', 'two', 'words'],
    ['connect'],
    ['probe', '127.0.0.1', '80', '--concurrency', '0'],
    ['nosuch'],
  ];
  for (const args of usage) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /To specify a positional argument/); // parseArgs' words, not ours
  }
  const unknown = await run(['send', '--bogus', 'tcp://127.0.0.1:1']);
  assert.match(unknown.stderr, /^switchboard send: unknown option --bogus \(switchboard send --help lists the options\)\n$/);
  const tls = await run(['serve', 'echo', '--listen', 'tls://127.0.0.1:0']);
  assert.match(tls.stderr, /tls:\/\/127\.0\.0\.1:0 needs a certificate: --tls-cert FILE --tls-key FILE/);
  // A file that cannot be read is a failure at run time, said with the option and the path.
  const ca = await run(['send', 'tls://127.0.0.1:1', 'x', '--ca', '/nonexistent/ca.pem']);
  assert.equal(ca.code, 1);
  assert.match(ca.stderr, /--ca: cannot read \/nonexistent\/ca\.pem: no such file or directory \(ENOENT\)/);
  const cert = await run(['serve', 'echo', '--listen', 'tls://127.0.0.1:0', '--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem']);
  assert.equal(cert.code, 1);
  assert.match(cert.stderr, /--tls-cert: cannot read \/nonexistent\/c\.pem/);
});

test('serve on an address in use exits 1 and names the address, in one process and in --workers', { timeout: 60000 }, async () => {
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const port = (taken.address() as net.AddressInfo).port;
  try {
    for (const url of [`text://127.0.0.1:${port}`, `ws://127.0.0.1:${port}`]) {
      const r = await run(['serve', 'echo', '--listen', url]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `switchboard serve: cannot listen on ${url}: address already in use (EADDRINUSE)\n`);
    }
    const w = await run(['serve', 'echo', '--workers', '2', '--listen', `text://127.0.0.1:${port}`]);
    assert.equal(w.code, 1, w.stderr + w.stdout);
    assert.match(w.stderr, new RegExp(`switchboard serve: worker \\d failed to start: cannot listen on text://127\\.0\\.0\\.1:${port}: address already in use`));
    assert.doesNotMatch(w.stdout + w.stderr, /stopped with an error/);
  } finally {
    taken.close();
  }
});

test('send and connect to a UDP port where nothing listens exit 1 and say so', { timeout: 30000 }, async () => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const url = `udp://127.0.0.1:${port}`;
  const sent = await run(['send', url, 'x']);
  assert.equal(sent.code, 1, sent.stderr);
  assert.equal(sent.stderr, `switchboard send: ${url} refused the datagram (ICMP port unreachable): nothing listens on that port\n`);
  const connected = await run(['connect', url], 'x\n');
  assert.equal(connected.code, 1, connected.stderr);
  assert.match(connected.stderr, /refused the datagram \(ICMP port unreachable\): nothing listens on that port\n$/);
});

test('probe of a host that does not resolve exits 1 and says which host; closed ports are counted by reason', { timeout: 30000 }, async () => {
  const r = await run(['probe', 'nosuch.invalid', '80,443']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^switchboard probe: cannot resolve host "nosuch\.invalid" \((ENOTFOUND|EAI_AGAIN)\)\n$/);
  const closedPort = await new Promise<number>((resolve) => {
    const t = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (t.address() as net.AddressInfo).port;
      t.close(() => resolve(p));
    });
  });
  const c = await run(['probe', 'localhost', String(closedPort)]);
  assert.equal(c.code, 0);
  assert.match(c.stderr, /^0 of 1 ports open on localhost; 1 refused\n$/);
});

test('serve on a host that does not resolve, and send to a TLS server whose certificate is not trusted, say what to do (exit 1)', { timeout: 30000 }, async () => {
  const r = await run(['serve', 'echo', '--listen', 'text://nosuch.invalid:5000']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^switchboard serve: cannot listen on text:\/\/nosuch\.invalid:5000: cannot resolve host "nosuch\.invalid" \((ENOTFOUND|EAI_AGAIN)\)\n$/);
  const { key, cert } = makeCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'sb-cli-tls-'));
  writeFileSync(join(dir, 'cert.pem'), cert);
  writeFileSync(join(dir, 'key.pem'), key);
  const { child, url } = await serve(['echo', '--bare', '--listen', 'tls://127.0.0.1:0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
  try {
    const untrusted = await run(['send', url, 'hi']);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /cannot connect to tls:\/\/127\.0\.0\.1:\d+: .*certificate.* \(--ca FILE trusts the authority that signed it; --insecure trusts any certificate\)\n$/);
    const insecure = await run(['send', url, 'hi', '--insecure', '--quiet-time', '300ms']);
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.equal(insecure.stdout, 'hi');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('send and connect to serve chat over ws:// print what the server says first (the banner), exit 0', { timeout: 30000 }, async () => {
  const { child, output } = await serve(['chat', '--listen', 'text://127.0.0.1:0', '--listen', 'ws://127.0.0.1:0']);
  try {
    const deadline = Date.now() + 8000;
    while (!/listening on .*ws:\/\/\S+/.test(output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const ws = /listening on .*?(ws:\/\/\S+)/.exec(output())![1]!;
    const sent = await run(['send', ws, 'hi']);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /you are guest/, 'the banner printed');
    const connected = await run(['connect', ws], 'hello from stdin\n');
    assert.equal(connected.code, 0, connected.stderr);
    assert.match(connected.stdout, /you are guest/);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});
