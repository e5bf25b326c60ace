// The ported seed programs in examples/, run as child processes against each other (and against
// small local peers where the seed talks to something else: an HTTP server, a daytime server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { freePort, listening } from './helpers.js';
import * as http from 'node:http';
import * as dgram from 'node:dgram';

const T = { timeout: 20000 };
const ROOT = new URL('..', import.meta.url).pathname;

interface Run {
  child: ChildProcess;
  out: () => string;
  done: Promise<number | null>;
}

function run(file: string, args: string[] = [], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${file}`, ...args], {
    cwd: ROOT, env: { ...process.env, HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => {
    if (code !== 0 && code !== null && err) process.stderr.write(`[${file}] ${err}\n`);
    resolve(code);
  }));
  return { child, out: () => out, done };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** A raw TCP client that collects what it receives. */
async function rawClient(port: number): Promise<{ sock: net.Socket; data: () => string; waitFor: (re: RegExp, ms?: number) => Promise<string> }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
  let data = '';
  const waiters: Array<() => void> = [];
  sock.on('data', (d) => {
    data += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (re: RegExp, ms = 3000): Promise<string> => {
    const deadline = Date.now() + ms;
    while (!re.test(data)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(data)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return data;
  };
  return { sock, data: () => data, waitFor };
}

test('reverse-server and reverse-client (seed 000), with ASCII and Chinese text', T, async () => {
  for (const [message, reply] of [[undefined, 'revreS olleH'], ['你好, 世界', '界世 ,好你']] as const) {
    const port = await freePort();
    const server = run('reverse-server.ts', [String(port)]);
    await listening(port);
    const client = run('reverse-client.ts', message === undefined ? [String(port)] : [String(port), message]);
    assert.equal(await within(client.done, 8000, 'client'), 0);
    assert.equal(await within(server.done, 8000, 'server'), 0, 'the seed server serves one client and exits');
    const sent = message ?? 'Hello Server';
    assert.equal(client.out(), `Message To server :${sent}Reply From Server  :${reply}\n`);
    assert.equal(server.out(), `Client Message : ${sent}`);
  }
});

test('ack-server and ack-client (seed 001): greeting line, acknowledgement, next client', T, async () => {
  const port = await freePort();
  const server = run('ack-server.ts', [String(port)]);
  try {
    await listening(port);
    for (let i = 0; i < 2; i++) {
      const client = run('ack-client.ts', [String(port)], { ACK_TIMEOUT: '0.3' });
      assert.equal(await within(client.done, 8000, 'client'), 0);
      assert.equal(client.out(),
        'Buffer Data: connect\n\nWriting to Socket\nsent to server: SOME DATA\n response from server was:Information Received\n\n');
    }
    for (let i = 0; i < 50 && (server.out().match(/Buffer: SOME DATA/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.out(), 'Socket connected\nsend data to client\nWrote to socket\nBuffer: SOME DATA\n\n'.repeat(2));
  } finally {
    server.child.kill();
    await server.done;
  }
});

test('greet-server and greet-client (seed 002): five clients, then the server stops', T, async () => {
  const port = await freePort();
  const server = run('greet-server.ts', [String(port)]);
  await listening(port);
  // Five clients at once: the server takes them one after another from its backlog.
  const clients = Array.from({ length: 5 }, () => run('greet-client.ts', [String(port)]));
  for (const client of clients) {
    assert.equal(await within(client.done, 8000, 'client'), 0);
    assert.equal(client.out(), [
      '<h2>TCP/IP Connection</h2>', 'OK.', `试图连接 '127.0.0.1' 端口 '${port}'...`, '连接OK', '发送到服务器信息成功！',
      "发送的内容为:<font color='red'>Ho\r\nfirst blood\r\n</font> <br>接收服务器回传信息成功！", '接受的内容为:测试成功！', '关闭SOCKET...', '关闭OK', '',
    ].join('\n'));
  }
  assert.equal(await within(server.done, 8000, 'server exit'), 0);
  assert.equal(server.out(), '测试成功了啊\n收到的信息:Ho\r\nfirst blood\r\n\n'.repeat(5));
});

test('count-server and count-client (seed 003): read first, answer "success", stop after five', T, async () => {
  const port = await freePort();
  const server = run('count-server.ts', [String(port)]);
  await listening(port);
  // Five clients at once: the server takes them one after another from its backlog.
  const clients = Array.from({ length: 5 }, () => run('count-client.ts', [String(port)]));
  for (const client of clients) {
    assert.equal(await within(client.done, 8000, 'client'), 0);
    assert.match(client.out(), /connectOK\nsend success\n/);
    assert.match(client.out(), /recevie server msg\nreceive msg:success\n close SOCKET...\nclose OK\n$/);
  }
  assert.equal(await within(server.done, 8000, 'server exit'), 0);
  assert.equal(server.out(), 'success..\nreceive:Ho\r\nfirst blood\r\n\n'.repeat(5));
});

test('select-server (seed 004): banner, "OK ... <input>" to several clients, at most 10 at once', T, async () => {
  const port = await freePort();
  const server = run('select-server.ts', [String(port)]);
  const clients: Array<Awaited<ReturnType<typeof rawClient>>> = [];
  try {
    await listening(port);
    for (let i = 0; i < 10; i++) {
      const c = await rawClient(port);
      clients.push(c);
      await c.waitFor(/Enter a message and press enter, and i shall reply back \n$/);
    }
    assert.equal(clients[0]!.data(), 'Welcome to php socket server version 1.0 \nEnter a message and press enter, and i shall reply back \n');
    clients[3]!.sock.write('hello\n');
    clients[7]!.sock.write('你好\n');
    await clients[3]!.waitFor(/OK \.\.\. hello\n$/);
    await clients[7]!.waitFor(/OK \.\.\. 你好\n$/);
    // An 11th client waits for a free slot.
    const eleventh = await rawClient(port);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(eleventh.data(), '', 'no banner while 10 clients are connected');
    clients[0]!.sock.end();
    await eleventh.waitFor(/Welcome to php socket server/);
    eleventh.sock.write('late\n');
    await eleventh.waitFor(/OK \.\.\. late\n$/);
    clients.push(eleventh);
    assert.match(server.out(), /^Socket created \nSocket bind OK \nSocket listen OK \nWaiting for incoming connections... \nClient 127\.0\.0\.1 : \d+ is now connected to us. \n/);
    assert.equal((server.out().match(/is now connected to us/g) ?? []).length, 11);
  } finally {
    for (const c of clients) c.sock.destroy();
    server.child.kill();
    await server.done;
  }
});

test('epoll-chat (seed 004): a line from one client goes to every other client', T, async () => {
  const port = await freePort();
  const server = run('epoll-chat.ts', [String(port)]);
  const clients: Array<Awaited<ReturnType<typeof rawClient>>> = [];
  try {
    await listening(port);
    for (let i = 0; i < 3; i++) clients.push(await rawClient(port));
    for (let i = 0; i < 100 && (server.out().match(/来到聊天室/g) ?? []).length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    const [a, b, c] = clients as [typeof clients[0], typeof clients[0], typeof clients[0]];
    a.sock.write('大家好\n');
    const fromA = /^(\d+)说 : 大家好\n$/;
    await b.waitFor(fromA);
    await c.waitFor(fromA);
    const id = fromA.exec(b.data())![1];
    assert.match(server.out(), new RegExp(`:欢迎${id}来到聊天室\\n`));
    c.sock.end(); // a client leaving does not disturb the others
    await new Promise((r) => setTimeout(r, 100));
    b.sock.write('bye\n');
    await a.waitFor(/\d+说 : bye\n$/);
    assert.equal(b.data(), `${id}说 : 大家好\n`, 'no echo to the sender');
    assert.match(server.out(), /^\n\n欢迎来到ti-chat聊天室!发言注意遵守当地法律法规!\n {8}tcp:\/\/127\.0\.0\.1:\d+\n/);
  } finally {
    for (const c of clients) c.sock.destroy();
    server.child.kill();
    await server.done;
  }
});

test('http-get (seed 004): raw GET with socket_send, one socket_recv(MSG_WAITALL) of 2045 bytes', T, async () => {
  let request = '';
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    request = `${req.method} ${req.url} HTTP/${req.httpVersion}`;
    res.setHeader('Connection', 'close');
    res.end('<html>hello from a local server</html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const client = run('http-get.ts', ['127.0.0.1', String(port)]);
  assert.equal(await within(client.done, 8000, 'http-get'), 0);
  assert.equal(request, 'GET / HTTP/1.1');
  assert.match(client.out(), /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(client.out(), /\r\n\r\n<html>hello from a local server<\/html>$/);
  server.close();

  const refused = run('http-get.ts', ['127.0.0.1', String(port)]);
  assert.equal(await within(refused.done, 8000, 'http-get refused'), 1);
  assert.equal(refused.out(), 'connect failed !');
});

test('udp-daytime-client (seed 003, fsockopen udp://) asks a daytime server', T, async () => {
  const daytime = dgram.createSocket('udp4');
  const answer = 'Saturday, November 21, 2026 12:00:00-UTC\r\n';
  daytime.on('message', (_m, r) => daytime.send(answer, r.port, r.address));
  await new Promise<void>((r) => daytime.bind(0, '127.0.0.1', () => r()));
  const client = run('udp-daytime-client.ts', [String(daytime.address().port)], { TIMEOUT: '3' });
  assert.equal(await within(client.done, 8000, 'daytime client'), 0);
  assert.equal(client.out(), answer.slice(0, 26));
  daytime.close();
});
