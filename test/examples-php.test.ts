// The seeds' own PHP clients, run by php-cli with PHP's real sockets extension, against the
// TypeScript ports of the seed servers. Skipped when php or its sockets extension is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, listening } from './helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;

function phpSockets(): string | false {
  try {
    const mods = execFileSync('php', ['-m'], { encoding: 'utf8' });
    return /^sockets$/m.test(mods) ? false : 'the PHP sockets extension is not loaded';
  } catch {
    return 'php is not installed';
  }
}
const skip = phpSockets();
const T = { timeout: 20000, skip };

// The clients exactly as the seeds print them (only the port is replaced).
const CLIENT_000 = `<?php
$host    = "127.0.0.1";
$port    = 25003;
$message = "Hello Server";
echo "Message To server :".$message;
// create socket
$socket = socket_create(AF_INET, SOCK_STREAM, 0) or die("Could not create socket\\n");
// connect to server
$result = socket_connect($socket, $host, $port) or die("Could not connect to server\\n");
// send string to server
socket_write($socket, $message, strlen($message)) or die("Could not send data to server\\n");
// get server response
$result = socket_read ($socket, 1024) or die("Could not read server response\\n");
echo "Reply From Server  :".$result;
// close socket
socket_close($socket);
`;

const CLIENT_001 = `<?php
// 建立客户端的socet连接
$socket = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
$connection = socket_connect($socket, '127.0.0.1', 10008); //连接服务器端socket
while ($buffer = @socket_read($socket, 1024, PHP_NORMAL_READ)) {
  //服务端告诉客户端,自己的状态
  if (preg_match("/not connect/",$buffer)) {
    echo "don\`t connect\\n";
    break;
  } else {
    //服务器传来信息
    echo "Buffer Data: " . $buffer . "\\n";
    echo "Writing to Socket\\n";
    // 将客户的信息写到通道中,传给服务器端
    if (!socket_write($socket, "SOME DATA\\n")) {
      echo "Write failed\\n";
    }
    //服务器端收到信息后,给于的回应信息
    while ($buffer = socket_read($socket, 1024, PHP_NORMAL_READ)) {
      echo "sent to server: SOME DATA\\n response from server was:" . $buffer . "\\n";
    }
  }
}
?>
`;

const CLIENT_002 = `<?php
error_reporting(E_ALL);
set_time_limit(0);
echo "<h2>TCP/IP Connection</h2>\\n";

$port = 1935;
$ip = "127.0.0.1";

$socket = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
if ($socket < 0) {
    echo "socket_create() failed: reason: " . socket_strerror($socket) . "\\n";
}else {
    echo "OK.\\n";
}

echo "试图连接 '$ip' 端口 '$port'...\\n";
$result = socket_connect($socket, $ip, $port);
if ($result < 0) {
    echo "socket_connect() failed.\\nReason: ($result) " . socket_strerror($result) . "\\n";
}else {
    echo "连接OK\\n";
}

$in = "Ho\\r\\n";
$in .= "first blood\\r\\n";
$out = '';

if(!socket_write($socket, $in, strlen($in))) {
    echo "socket_write() failed: reason: " . socket_strerror($socket) . "\\n";
}else {
    echo "发送到服务器信息成功！\\n";
    echo "发送的内容为:<font color='red'>$in</font> <br>";
}

while($out = socket_read($socket, 8192)) {
    echo "接收服务器回传信息成功！\\n";
    echo "接受的内容为:",$out;
}

echo "关闭SOCKET...\\n";
socket_close($socket);
echo "关闭OK\\n";
?>
`;

const CLIENT_003 = CLIENT_002
  .replace("试图连接 '$ip' 端口 '$port'...", "connect '$ip' port '$port'...")
  .replace('连接OK', 'connectOK')
  .replace('发送到服务器信息成功！', 'send success')
  .replace('发送的内容为:', 'send msg:')
  .replace('接收服务器回传信息成功！', 'recevie server msg')
  .replace('接受的内容为:', 'receive msg:')
  .replace('关闭SOCKET...', ' close SOCKET...')
  .replace('关闭OK', 'close OK');

let dir = '';
function php(code: string, port: number, seedPort: number): { child: ChildProcess; out: () => string; done: Promise<number | null> } {
  if (!dir) dir = mkdtempSync(join(tmpdir(), 'sb-php-'));
  const file = join(dir, `client-${Math.random().toString(36).slice(2)}.php`);
  writeFileSync(file, code.replace(String(seedPort), String(port)));
  const child = spawn('php', ['-d', 'display_errors=stderr', file], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return { child, out: () => out, done: new Promise((r) => child.on('close', r)) };
}

function server(file: string, port: number): { child: ChildProcess; out: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${file}`, String(port)], {
    cwd: ROOT, env: { ...process.env, HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return { child, out: () => out, done: new Promise((r) => child.on('close', r)) };
}

test.after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('PHP seed 000 client.php against reverse-server.ts', T, async () => {
  const port = await freePort();
  const s = server('reverse-server.ts', port);
  await listening(port);
  const c = php(CLIENT_000, port, 25003);
  assert.equal(await c.done, 0);
  assert.equal(await s.done, 0);
  assert.equal(c.out(), 'Message To server :Hello ServerReply From Server  :revreS olleH\n');
  assert.equal(s.out(), 'Client Message : Hello Server');
});

test('PHP seed 001 client.php against ack-server.ts (the seed client then waits forever: it is stopped)', T, async () => {
  const port = await freePort();
  const s = server('ack-server.ts', port);
  try {
    await listening(port);
    const c = php(CLIENT_001, port, 10008);
    const expected = 'Buffer Data: connect\n\nWriting to Socket\nsent to server: SOME DATA\n response from server was:Information Received\n\n';
    for (let i = 0; i < 200 && c.out() !== expected; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(c.out(), expected);
    c.child.kill();
    await c.done;
    for (let i = 0; i < 100 && !s.out().includes('Buffer: SOME DATA'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.out(), 'Socket connected\nsend data to client\nWrote to socket\nBuffer: SOME DATA\n\n');
  } finally {
    s.child.kill();
    await s.done;
  }
});

test('PHP seed 002 client against greet-server.ts, and seed 003 client against count-server.ts', T, async () => {
  for (const [serverFile, client, reply] of [['greet-server.ts', CLIENT_002, '接受的内容为:测试成功！\n'], ['count-server.ts', CLIENT_003, 'receive msg:success\n']] as const) {
    const port = await freePort();
    const s = server(serverFile, port);
    await listening(port);
    for (let i = 0; i < 5; i++) {
      const c = php(client, port, 1935);
      assert.equal(await c.done, 0);
      assert.ok(c.out().includes(reply), c.out());
      assert.match(c.out(), /close ?OK\n$|关闭OK\n$/);
    }
    assert.equal(await s.done, 0, `${serverFile} stops after five clients`);
    assert.equal((s.out().match(/Ho\r\nfirst blood\r\n/g) ?? []).length, 5);
  }
});

const SERVER_000 = `<?php
// set some variables
$host = "127.0.0.1";
$port = 25003;
// don't timeout!
set_time_limit(0);
// create socket
$socket = socket_create(AF_INET, SOCK_STREAM, 0) or die("Could not create socket\\n");
// bind socket to port
$result = socket_bind($socket, $host, $port) or die("Could not bind to socket\\n");
// start listening for connections
$result = socket_listen($socket, 3) or die("Could not set up socket listener\\n");

// accept incoming connections
// spawn another socket to handle communication
$spawn = socket_accept($socket) or die("Could not accept incoming connection\\n");
// read client input
$input = socket_read($spawn, 1024) or die("Could not read input\\n");
// clean up input string
$input = trim($input);
echo "Client Message : ".$input;
// reverse client input and send back
$output = strrev($input) . "\\n";
socket_write($spawn, $output, strlen ($output)) or die("Could not write output\\n");
// close sockets
socket_close($spawn);
socket_close($socket);
`;

test('ported reverse-client.ts against the PHP seed 000 server.php', T, async () => {
  const port = await freePort();
  const s = php(SERVER_000, port, 25003);
  await listening(port);
  const c = spawn(process.execPath, ['--import', 'tsx', 'examples/reverse-client.ts', String(port)], {
    cwd: ROOT, env: { ...process.env, HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  assert.equal(await new Promise((r) => c.on('close', r)), 0);
  assert.equal(await s.done, 0);
  assert.equal(out, 'Message To server :Hello ServerReply From Server  :revreS olleH\n');
  assert.equal(s.out(), 'Client Message : Hello Server');
});

// The same PHP clients against switchboard's ready servers (src/apps), as `switchboard serve NAME` runs them.
test('PHP seed clients 000, 001 and 002 against the toolkit servers reverse, ack and greet', T, async () => {
  const { reverseServer, ackServer, greetServer } = await import('../src/apps/index.js');
  const quiet = (): void => {};
  const rev = await reverseServer({ listen: 'tcp://127.0.0.1:0', log: quiet });
  const ack = await ackServer({ listen: 'text://127.0.0.1:0', log: quiet });
  const greet = await greetServer({ listen: 'tcp://127.0.0.1:0', log: quiet });
  const portOf = (s: { addresses: readonly string[] }): number => Number(/:(\d+)$/.exec(s.addresses[0]!)![1]);
  try {
    const c0 = php(CLIENT_000, portOf(rev), 25003);
    assert.equal(await c0.done, 0);
    assert.equal(c0.out(), 'Message To server :Hello ServerReply From Server  :revreS olleH\n');

    const c1 = php(CLIENT_001, portOf(ack), 10008);
    const expected = 'Buffer Data: connect\n\nWriting to Socket\nsent to server: SOME DATA\n response from server was:Information Received\n\n';
    for (let i = 0; i < 200 && c1.out() !== expected; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(c1.out(), expected);
    c1.child.kill(); // the seed client waits for more forever
    await c1.done;

    const c2 = php(CLIENT_002, portOf(greet), 1935);
    assert.equal(await c2.done, 0);
    assert.match(c2.out(), /接受的内容为:测试成功！\n(接收服务器回传信息成功！\n接受的内容为:)?success\n/);
    assert.match(c2.out(), /关闭OK\n$/);
  } finally {
    await Promise.all([rev.close(), ack.close(), greet.close()]);
  }
});
