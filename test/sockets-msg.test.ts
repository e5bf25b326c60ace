// socket_sendmsg / socket_recvmsg over AF_UNIX with SCM_RIGHTS and SCM_CREDENTIALS, between real
// processes: examples/fd-passing.ts (a master passing accepted TCP connections to its worker),
// Python's socket module, and PHP's own socket_sendmsg when php-cli has the sockets extension.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AF_INET, AF_UNIX, MSG_CTRUNC, SCM_CREDENTIALS, SCM_RIGHTS, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SO_PASSCRED, type MessageHeader,
  Socket, socket_accept, socket_bind, socket_close, socket_cmsg_space, socket_connect, socket_create, socket_create_pair,
  socket_getsockname, socket_last_error, socket_listen, socket_read, socket_recvfrom,
  socket_recvmsg, socket_sendmsg, socket_sendto, socket_set_option, socket_write, socket_get_option,
} from '../src/sockets/index.js';
import { freePort, RawPeer } from './helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const noAddon = process.env.SWITCHBOARD_SOCKETS_NATIVE === '0' ? 'SWITCHBOARD_SOCKETS_NATIVE=0' : false;
const T = { timeout: 20000, skip: noAddon };

function tmp(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-msg-'));
  return { dir, path: join(dir, 's.sock') };
}

function lines(stream: NodeJS.ReadableStream): { text: () => string; waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray> } {
  let buf = '';
  const waiters: Array<() => void> = [];
  stream.on('data', (c: Buffer) => {
    buf += c.toString();
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (re: RegExp, ms = 10000): Promise<RegExpExecArray> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(buf);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${re} in output: ${buf}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { text: () => buf, waitFor };
}

test('two processes: the master passes accepted TCP connections with SCM_RIGHTS, the worker serves them', T, async () => {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/fd-passing.ts', String(port), '2'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const out = lines(child.stdout);
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  try {
    const m = await out.waitFor(/master (\d+): listening on .*, worker (\d+)/);
    const masterPid = Number(m[1]);
    const workerPid = Number(m[2]);
    assert.equal(masterPid, child.pid);
    assert.notEqual(workerPid, masterPid);
    let i = 0;
    for (const word of ['hello', '你好世界']) {
      const peer = await RawPeer.connect(port);
      // Write once the worker has the connection: the master's Node socket reads ahead (README).
      await out.waitFor(new RegExp(`worker \\d+: connection ${++i} from`));
      peer.socket.write(word + '\n');
      await peer.until((t) => t.includes('\n'), 10000);
      assert.equal(peer.received.toString(), [...word].reverse().join('') + '\n');
      await peer.untilClosed(10000); // the worker closed it: the master's close did not end it early
    }
    // The worker's log: the kernel's credentials (SO_PASSCRED) name the master's real pid.
    await out.waitFor(/worker \d+: connection 2 from master pid \d+/);
    assert.match(out.text(), new RegExp(`worker ${workerPid}: connection 1 from master pid ${masterPid}\\n`));
    assert.equal(await exited, 0);
  } finally {
    child.kill();
  }
});

test('SCM_CREDENTIALS with SO_PASSCRED reports the sending process\'s real pid, uid and gid (Python sender)', T, async () => {
  const { dir, path } = tmp();
  try {
    const server = socket_create(AF_UNIX, SOCK_STREAM, 0);
    assert.ok(server);
    assert.ok(await socket_bind(server, path));
    assert.ok(await socket_listen(server, 1));
    assert.ok(socket_set_option(server, SOL_SOCKET, SO_PASSCRED, 1));
    const py = spawn('/usr/bin/python3', ['-c', `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'who am i')
time.sleep(0.5)
s.close()
`, path], { stdio: 'ignore' });
    const conn = await socket_accept(server);
    assert.ok(conn);
    assert.equal(socket_get_option(conn, SOL_SOCKET, SO_PASSCRED), 1);
    const msg: MessageHeader = { name: {}, buffer_size: 100, controllen: socket_cmsg_space(SOL_SOCKET, SCM_CREDENTIALS)! };
    assert.equal(await socket_recvmsg(conn, msg, 0), 8);
    assert.deepEqual(msg.iov, ['who am i']);
    assert.deepEqual(msg.control, [{ level: SOL_SOCKET, type: SCM_CREDENTIALS, data: { pid: py.pid, uid: process.getuid!(), gid: process.getgid!() } }]);
    assert.equal(msg.flags, 0);
    socket_close(conn);
    socket_close(server);
    await new Promise((r) => py.once('exit', r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('descriptors from Python\'s sendmsg become sockets; ours reach Python\'s recvmsg', T, async () => {
  const { dir, path } = tmp();
  const tcp = net.createServer();
  const accepted: net.Socket[] = [];
  tcp.on('connection', (c) => accepted.push(c));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const tcpPort = (tcp.address() as net.AddressInfo).port;
  try {
    const server = socket_create(AF_UNIX, SOCK_STREAM, 0);
    assert.ok(server);
    assert.ok(await socket_bind(server, path));
    assert.ok(await socket_listen(server, 1));
    // Python opens a TCP connection, passes it to us and closes its own; then receives one from us.
    const py = spawn('/usr/bin/python3', ['-c', `
import socket, sys, array
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.connect(sys.argv[1])
t = socket.create_connection(('127.0.0.1', int(sys.argv[2])))
u.sendmsg([b'tcp'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [t.fileno()]))])
t.close()
msg, anc, flags, addr = u.recvmsg(100, socket.CMSG_SPACE(4 * 4))
fds = array.array('i')
for level, typ, data in anc:
    fds.frombytes(data[:len(data) - len(data) % 4])
s = socket.socket(fileno=fds[0])
s.sendall(b'python wrote on the socket node passed: ' + msg + b'\\n')
s.close()
`, path, String(tcpPort)], { stdio: ['ignore', 'inherit', 'inherit'] });
    const conn = await socket_accept(server);
    assert.ok(conn);
    const msg: MessageHeader = { buffer_size: 100, controllen: socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 1)! };
    assert.equal(await socket_recvmsg(conn, msg, 0), 3);
    assert.equal(msg.iov?.[0], 'tcp');
    const got = msg.control?.[0];
    assert.equal(got?.type, SCM_RIGHTS);
    const passed = Array.isArray(got?.data) ? got.data[0] : undefined;
    assert.ok(passed instanceof Socket, 'a received TCP descriptor is a Socket');
    // Use it: the TCP server's side sees what we write, and we read what it answers.
    const deadline = Date.now() + 5000;
    while (accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await socket_write(passed, 'over the passed socket\n'), 23);
    const remote = accepted[0]!;
    const line = await new Promise<string>((r) => remote.once('data', (c: Buffer) => r(c.toString())));
    assert.equal(line, 'over the passed socket\n');
    remote.write('answer\n');
    assert.equal(await socket_read(passed, 100), 'answer\n');

    // Now the other way: pass a Unix pair end to Python, which writes on it.
    const pair: Socket[] = [];
    assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
    assert.equal(await socket_sendmsg(conn, { iov: ['mine'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [pair[1]!] }] }, 0), 4);
    socket_close(pair[1]!);
    assert.equal(await socket_read(pair[0]!, 200), 'python wrote on the socket node passed: mine\n');
    for (const s of [passed, conn, server, pair[0]!]) socket_close(s);
    assert.equal(await new Promise((r) => py.once('exit', r)), 0);
  } finally {
    tcp.close();
    for (const c of accepted) c.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Unix datagram sockets: sendto/recvfrom by path, messages with SCM_RIGHTS, MSG_CTRUNC when controllen is short', T, async () => {
  const { dir, path } = tmp();
  try {
    const rx = socket_create(AF_UNIX, SOCK_DGRAM, 0);
    const tx = socket_create(AF_UNIX, SOCK_DGRAM, 0);
    assert.ok(rx && tx);
    assert.ok(await socket_bind(rx, path));
    const name = { address: '' };
    assert.ok(socket_getsockname(rx, name));
    assert.equal(name.address, path);
    const txPath = join(dir, 'tx.sock');
    assert.ok(await socket_bind(tx, txPath));
    assert.equal(await socket_sendto(tx, 'one datagram', 12, 0, path), 12);
    const buf = { data: null as string | null };
    const from = { address: '', port: 0 };
    assert.equal(await socket_recvfrom(rx, buf, 100, 0, from), 12);
    assert.equal(buf.data, 'one datagram');
    assert.equal(from.address, txPath);

    const pair: Socket[] = [];
    assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
    const [a, b] = pair as [Socket, Socket];
    assert.equal(await socket_sendmsg(tx, { name: { path }, iov: ['fd', 's'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [b, b, b] }] }, 0), 3);
    // Room for one descriptor is CMSG_SPACE(4) = 24 bytes, where Linux fits two (its count is (24 - 16) / 4).
    const short: MessageHeader = { name: {}, buffer_size: 10, controllen: socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 1)! };
    assert.equal(await socket_recvmsg(rx, short, 0), 3);
    assert.equal(short.flags, MSG_CTRUNC);
    assert.deepEqual(short.name, { family: AF_UNIX, path: txPath });
    const only = short.control?.[0]?.data;
    assert.ok(Array.isArray(only) && only.length === 2 && only[0] instanceof Socket && only[1] instanceof Socket);
    socket_close(b);
    socket_close(only[1]);
    assert.equal(await socket_write(only[0], 'through a datagram'), 18);
    assert.equal(await socket_read(a, 100), 'through a datagram');
    for (const s of [rx, tx, a, only[0]]) socket_close(s);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad control messages fail as Linux does: 9 for a closed socket, 1 for another pid, 22 on TCP', T, async () => {
  const pair: Socket[] = [];
  assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
  const [a, b] = pair as [Socket, Socket];
  const gone = socket_create(AF_UNIX, SOCK_STREAM, 0);
  assert.ok(gone);
  socket_close(gone);
  assert.equal(await socket_sendmsg(a, { iov: ['x'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [gone] }] }, 0), false);
  assert.equal(socket_last_error(a), 9);
  assert.equal(await socket_sendmsg(a, { iov: ['x'], control: [{ level: SOL_SOCKET, type: SCM_CREDENTIALS, data: { pid: 1, uid: 0, gid: 0 } }] }, 0), false);
  assert.equal(socket_last_error(a), 1);
  assert.equal(await socket_sendmsg(a, { iov: ['x'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [999999] }] }, 0), false);
  assert.equal(socket_last_error(a), 9);
  // A reader of plain bytes drops the descriptors it reads past (closed, as read(2) does).
  const extra: Socket[] = [];
  assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, extra));
  assert.equal(await socket_sendmsg(a, { iov: ['abc'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [extra[1]!] }] }, 0), 3);
  socket_close(extra[1]!);
  assert.equal(await socket_read(b, 10), 'abc');
  assert.equal(b.ancillary.length, 0);
  assert.equal(await socket_read(extra[0]!, 10), ''); // the last descriptor of its peer is gone: EOF
  socket_close(extra[0]!);
  const tcp = net.createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const t = socket_create(AF_INET, SOCK_STREAM, 0);
  assert.ok(t);
  assert.ok(await socket_connect(t, '127.0.0.1', (tcp.address() as net.AddressInfo).port));
  assert.equal(await socket_sendmsg(t, { iov: ['x'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [a] }] }, 0), false);
  assert.equal(socket_last_error(t), 22);
  assert.equal(await socket_sendmsg(t, { iov: ['plain'] }, 0), 5);
  for (const s of [a, b, t]) socket_close(s);
  tcp.close();
});

test('without the sockets addon, control messages fail with 38 and say why; Unix datagrams with 94', { timeout: 20000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-msg-'));
  const script = join(dir, 'no-addon.mts');
  writeFileSync(script, `
import { AF_UNIX, SOCK_STREAM, SOCK_DGRAM, SOL_SOCKET, SCM_RIGHTS, socket_create, socket_create_pair, socket_sendmsg, socket_last_error, socket_last_error_detail } from ${JSON.stringify(join(ROOT, 'src/sockets/index.ts'))};
const pair = [];
await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair);
const r = await socket_sendmsg(pair[0], { iov: ['x'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [pair[1]] }] }, 0);
const d = socket_create(AF_UNIX, SOCK_DGRAM, 0);
console.log(JSON.stringify([r, socket_last_error(pair[0]), socket_last_error_detail(pair[0]), d, socket_last_error()]));
process.exit(0);
`);
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: { ...process.env, SWITCHBOARD_SOCKETS_NATIVE: '0' }, encoding: 'utf8' });
    const [r, errno, detail, d, errno2] = JSON.parse(out) as [unknown, number, string, unknown, number];
    assert.equal(r, false);
    assert.equal(errno, 38);
    assert.match(detail, /Function not implemented \(SWITCHBOARD_SOCKETS_NATIVE=0 is set\)/);
    assert.equal(d, false);
    assert.equal(errno2, 94);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function phpSockets(): string | false {
  try {
    return /^sockets$/m.test(execFileSync('php', ['-m'], { encoding: 'utf8' })) ? false : 'the PHP sockets extension is not loaded';
  } catch {
    return 'php is not installed';
  }
}

// PHP's own socket_sendmsg passes a TCP socket to us; PHP's socket_recvmsg takes one from us,
// with the kernel's credentials (SO_PASSCRED) naming this process.
const PHP_PEER = `<?php
$u = socket_create(AF_UNIX, SOCK_STREAM, 0);
socket_connect($u, $argv[1]) or die("connect\\n");
// Before anything can arrive: the kernel attaches credentials only to what is sent once it is set.
socket_set_option($u, SOL_SOCKET, SO_PASSCRED, 1);
// A stream, not a Socket: PHP 8.2 sends its descriptor 0 for a Socket object in SCM_RIGHTS data.
$t = fsockopen('127.0.0.1', (int)$argv[2]) or die("tcp\\n");
$n = socket_sendmsg($u, ['iov' => ['from php'], 'control' => [['level' => SOL_SOCKET, 'type' => SCM_RIGHTS, 'data' => [$t]]]], 0);
echo "sent $n\\n";
fclose($t);
$data = ['name' => [], 'buffer_size' => 100, 'controllen' => socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 1) + socket_cmsg_space(SOL_SOCKET, SCM_CREDENTIALS)];
$r = socket_recvmsg($u, $data, 0);
foreach ($data['control'] as $c) {
  if ($c['type'] == SCM_CREDENTIALS) echo "creds pid {$c['data']['pid']}\\n";
  if ($c['type'] == SCM_RIGHTS) { $s = $c['data'][0]; socket_write($s, "php got: {$data['iov'][0]}\\n"); socket_close($s); }
}
echo "received $r\\n";
`;

test('PHP\'s socket_sendmsg and socket_recvmsg talk SCM_RIGHTS and SCM_CREDENTIALS with a ported program', { timeout: 20000, skip: noAddon || phpSockets() }, async () => {
  const { dir, path } = tmp();
  const tcp = net.createServer();
  const accepted: net.Socket[] = [];
  tcp.on('connection', (c) => accepted.push(c));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  try {
    const script = join(dir, 'peer.php');
    writeFileSync(script, PHP_PEER);
    const server = socket_create(AF_UNIX, SOCK_STREAM, 0);
    assert.ok(server);
    assert.ok(await socket_bind(server, path));
    assert.ok(await socket_listen(server, 1));
    const php = spawn('php', ['-d', 'display_errors=stderr', script, path, String((tcp.address() as net.AddressInfo).port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = lines(php.stdout);
    const exited = new Promise((r) => php.once('exit', r));
    const conn = await socket_accept(server);
    assert.ok(conn);
    const msg: MessageHeader = { buffer_size: 100, controllen: socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 1)! };
    assert.equal(await socket_recvmsg(conn, msg, 0), 8);
    assert.equal(msg.iov?.[0], 'from php');
    const got = msg.control?.[0]?.data;
    assert.ok(Array.isArray(got) && got[0] instanceof Socket);
    assert.equal(await socket_write(got[0], 'node wrote on the socket PHP passed\n'), 36);
    const deadline = Date.now() + 5000;
    while (accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const line = await new Promise<string>((r) => accepted[0]!.once('data', (c: Buffer) => r(c.toString())));
    assert.equal(line, 'node wrote on the socket PHP passed\n');

    const pair: Socket[] = [];
    assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
    assert.equal(await socket_sendmsg(conn, { iov: ['from node'], control: [{ level: SOL_SOCKET, type: SCM_RIGHTS, data: [pair[1]!] }] }, 0), 9);
    socket_close(pair[1]!);
    assert.equal(await socket_read(pair[0]!, 100), 'php got: from node\n');
    await out.waitFor(/received 9/);
    assert.match(out.text(), new RegExp(`sent 8\\ncreds pid ${process.pid}\\n`));
    await exited;
    for (const s of [got[0], conn, server, pair[0]!]) socket_close(s);
  } finally {
    tcp.close();
    for (const c of accepted) c.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('closing a listening Unix socket closes the connections it had not handed out', T, async () => {
  const { dir, path } = tmp();
  try {
    const server = socket_create(AF_UNIX, SOCK_STREAM, 0);
    assert.ok(server);
    assert.ok(await socket_bind(server, path));
    assert.ok(await socket_listen(server, 4));
    const c = socket_create(AF_UNIX, SOCK_STREAM, 0);
    assert.ok(c);
    assert.ok(await socket_connect(c, path));
    const deadline = Date.now() + 3000;
    while (server.pending.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.pending.length, 1);
    socket_close(server);
    assert.equal(await socket_read(c, 10), ''); // the queued connection was closed: EOF
    socket_close(c);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
