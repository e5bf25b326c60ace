/** switchboard listen (and --exec) as a subprocess, with real peers: node:net, node:dgram, the `ws` package, real programs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { RawPeer, portOf, until } from './helpers.js';
import { Cli, run } from './cli-support.js';

function hasProgram(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function wsClient(url: string): Promise<{ ws: WebSocket; messages: string[] }> {
  const ws = new WebSocket(url);
  const messages: string[] = [];
  ws.on('message', (d) => messages.push(String(d)));
  await once(ws, 'open');
  return { ws, messages };
}


test('listen text://: prints what each peer sends ([peer] once there are two); stdin goes to the last peer only', { timeout: 30000 }, async () => {
  const { cli, url } = await Cli.listening(['listen', 'text://127.0.0.1:0']);
  try {
    const a = await RawPeer.connect(portOf(url));
    await cli.untilStderr(/\+ 127\.0\.0\.1:\d+ connected/);
    a.write('alone\n');
    await cli.untilStdout(/^alone\n/);
    const b = await RawPeer.connect(portOf(url));
    await cli.untilStderr(/(\+ 127\.0\.0\.1:\d+ connected[\s\S]*){2}/);
    const bPort = b.socket.localPort;
    b.write('from b\n');
    await cli.untilStdout(new RegExp(`\\[127\\.0\\.0\\.1:${bPort}\\] from b\\n`));
    cli.write('to the last\n');
    await b.until((t) => t === 'to the last\n');
    assert.equal(a.text, '');
    b.socket.end();
    await cli.untilStderr(new RegExp(`- 127\\.0\\.0\\.1:${bPort} closed`));
    cli.write('now a\n');
    await a.until((t) => t === 'now a\n');
    a.socket.destroy();
  } finally {
    assert.equal(await cli.stop(), 0);
  }
});

test('listen ws:// --broadcast: stdin to every client; --quiet-peers prints without the peer', { timeout: 30000 }, async () => {
  const { cli, url } = await Cli.listening(['listen', 'ws://127.0.0.1:0', '--broadcast', '--quiet-peers']);
  try {
    const one = await wsClient(url);
    const two = await wsClient(url);
    await cli.untilStderr(/(connected[\s\S]*){2}/);
    cli.write('hello all\n');
    await until(() => one.messages.length === 1 && two.messages.length === 1, 'both clients');
    assert.deepEqual([one.messages, two.messages], [['hello all'], ['hello all']]);
    one.ws.send('from one');
    two.ws.send(Buffer.from('two'), { binary: true });
    await cli.untilStdout(/from one\n/);
    await cli.until(() => cli.stdout.includes('two'), 8000, 'the binary message');
    assert.doesNotMatch(cli.stdout, /\[/);
    one.ws.close();
    two.ws.close();
  } finally {
    assert.equal(await cli.stop(), 0);
  }
});

test('listen on udp:// and unix+text:// prints what arrives; --max-accepts ends it with exit 0', { timeout: 30000 }, async () => {
  const udp = await Cli.listening(['listen', 'udp://127.0.0.1:0', '--hex']);
  const sock = dgram.createSocket('udp4');
  try {
    sock.send(Buffer.from([1, 2, 3]), portOf(udp.url), '127.0.0.1');
    await udp.cli.untilStdout(/^010203\n/);
  } finally {
    sock.close();
    assert.equal(await udp.cli.stop(), 0);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sb-listen-'));
  try {
    const path = join(dir, 's.sock');
    const { cli } = await Cli.listening(['listen', `unix+text://${path}`, '--max-accepts', '1']);
    const peer = await RawPeer.connectPath(path);
    peer.write('over unix\n');
    await cli.untilStdout(/^over unix\n/);
    peer.socket.end();
    assert.equal(await cli.exited(), 0, cli.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listen --exec: a program per connection (cat on tcp://, rev on text:// and ws://); it ends, the connection ends', { timeout: 40000 }, async (t) => {
  if (!hasProgram('rev') || !hasProgram('stdbuf')) {
    t.skip('rev (util-linux / bsdextrautils) or stdbuf (coreutils) is not installed');
    return;
  }
  // cat: bytes both ways; two clients, two programs, each talks to its own.
  const cat = await Cli.listening(['listen', 'tcp://127.0.0.1:0', '--exec', 'cat']);
  try {
    const a = await RawPeer.connect(portOf(cat.url));
    const b = await RawPeer.connect(portOf(cat.url));
    a.write(Buffer.from([0, 1, 2, 0xff]));
    b.write('bee');
    await a.until(() => a.received.equals(Buffer.from([0, 1, 2, 0xff])));
    await b.until((text) => text === 'bee');
    a.socket.destroy();
    b.socket.destroy();
  } finally {
    assert.equal(await cat.cli.stop(), 0);
  }
  // rev answers each line (stdbuf -oL: rev's output is line-buffered even on a pipe).
  const rev = await Cli.listening(['listen', 'text://127.0.0.1:0', '--exec', 'stdbuf -oL rev']);
  try {
    const p = await RawPeer.connect(portOf(rev.url));
    p.write('hello\r\nnaïve\n');
    await p.until((text) => text === 'olleh\nevïan\n');
    p.socket.destroy();
  } finally {
    assert.equal(await rev.cli.stop(), 0);
  }
  const ws = await Cli.listening(['listen', 'ws://127.0.0.1:0', '--exec', "stdbuf -oL rev"]);
  try {
    const c = await wsClient(ws.url);
    c.ws.send('abc');
    c.ws.send('xyz');
    await until(() => c.messages.length === 2, 'two answers');
    assert.deepEqual(c.messages, ['cba', 'zyx']);
    c.ws.close();
  } finally {
    assert.equal(await ws.cli.stop(), 0);
  }
  // A program that exits closes its connection: head -n 1 answers one line and is gone.
  const head = await Cli.listening(['listen', 'text://127.0.0.1:0', '--exec', 'head -n 1']);
  try {
    const p = await RawPeer.connect(portOf(head.url));
    p.write('first\nsecond\n');
    assert.equal(await p.untilClosed(), 'first\n');
  } finally {
    assert.equal(await head.cli.stop(), 0);
  }
});

test('listen --sh-c: the program gets EOF when the peer closes, SIGTERM when it ignores EOF', { timeout: 40000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-exec-'));
  const out = join(dir, 'log');
  try {
    const { cli, url } = await Cli.listening(['listen', 'text://127.0.0.1:0', '--sh-c',
      'if [ "$MODE" = eof ]; then cat >/dev/null; echo "eof $SWITCHBOARD_PEER" >> "$OUT"; else trap \'echo term >> "$OUT"; exit 0\' TERM; while :; do sleep 0.05; done; fi'],
    { OUT: out, MODE: 'eof' });
    const p = await RawPeer.connect(portOf(url));
    await cli.untilStderr(/connected/);
    const port = p.socket.localPort;
    p.socket.end();
    await until(() => existsSync(out) && readFileSync(out, 'utf8').includes('eof'), 'the program to see EOF');
    assert.match(readFileSync(out, 'utf8'), new RegExp(`^eof 127\\.0\\.0\\.1:${port}\\n$`));
    assert.equal(await cli.stop(), 0);

    rmSync(out, { force: true });
    const term = await Cli.listening(['listen', 'text://127.0.0.1:0', '--sh-c',
      'trap \'echo term >> "$OUT"; exit 0\' TERM; while :; do sleep 0.05; done'], { OUT: out });
    const q = await RawPeer.connect(portOf(term.url));
    await term.cli.untilStderr(/connected/);
    q.socket.destroy();
    await until(() => existsSync(out) && readFileSync(out, 'utf8') === 'term\n', 'the program to get SIGTERM');
    assert.equal(await term.cli.stop(), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listen: bad usage exits 2 (a missing program, shell syntax in --exec, tls:// without a certificate); an address in use exits 1', { timeout: 60000 }, async () => {
  const cases: [string[], RegExp][] = [
    [['listen', 'text://127.0.0.1:0', '--exec', 'no-such-program-here'], /no program "no-such-program-here" on PATH/],
    [['listen', 'text://127.0.0.1:0', '--exec', 'rev | cat'], /without a shell.*--sh-c/],
    [['listen', 'text://127.0.0.1:0', '--exec', "rev 'open"], /unclosed '/],
    [['listen', 'tls://127.0.0.1:0'], /needs a certificate/],
    [['listen', 'text://127.0.0.1:0', '--exec', 'cat', '--broadcast'], /--broadcast is for stdin/],
    [['listen'], /which URL/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  try {
    const url = `text://127.0.0.1:${(taken.address() as net.AddressInfo).port}`;
    const r = await run(['listen', url]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `switchboard listen: cannot listen on ${url}: address already in use (EADDRINUSE)\n`);
  } finally {
    taken.close();
  }
});

test('--help: listen and bridge print their usage (exit 0); the top-level help lists them; send/connect list the new options', { timeout: 60000 }, async () => {
  for (const command of ['listen', 'bridge']) {
    const r = await run([command, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^usage: switchboard ${command} `));
    assert.equal(r.stderr, '');
  }
  const top = await run(['--help']);
  assert.match(top.stdout, /\n {2}listen URL .*\n {2}bridge FROM TO /);
  const connect = await run(['connect', '-h']);
  for (const option of ['--header', '--origin', '--protocol', '--binary', '--text', '--hex', '--ping-interval', '--reconnect', '--oneshot']) {
    assert.ok(connect.stdout.includes(option), `connect --help lists ${option}`);
  }
  const send = await run(['help', 'send']);
  assert.match(send.stdout, /--oneshot/);
});

test('listen: a stdout that is not read holds the peer back (its writes wait), and nothing is lost once it is', { timeout: 60000 }, async () => {
  const { cli, url } = await Cli.listening(['listen', 'tcp://127.0.0.1:0', '--quiet']);
  try {
    cli.child.stdout!.pause(); // nobody reads listen's stdout for now
    const peer = net.connect(portOf(url), '127.0.0.1');
    await once(peer, 'connect');
    const total = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let written = 0;
    let blocked = false;
    const writer = (async () => {
      while (written < total) {
        const ok = peer.write(chunk);
        written += chunk.length;
        if (!ok) {
          blocked = true;
          await once(peer, 'drain');
        }
      }
      peer.end();
    })();
    await until(() => blocked && peer.writableLength > 0, 'the peer to be held back');
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(written <= total / 2, `the peer wrote ${written} bytes while stdout was not read`);
    cli.child.stdout!.resume();
    await writer;
    await cli.until(() => cli.stdoutBytes === total, 40000, `all ${total} bytes on stdout (got ${cli.stdoutBytes})`);
    assert.ok(/^a+$/.test(cli.stdout));
  } finally {
    assert.equal(await cli.stop(), 0);
  }
});
