// The ported seed clients in examples/ against switchboard's own servers of the same seeds
// (src/apps), which run in this process on ephemeral ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ackServer, daytimeServer, greetServer, reverseServer } from '../src/apps/index.js';
import type { Server } from '../src/core/server.js';

const T = { timeout: 20000 };
const ROOT = new URL('..', import.meta.url).pathname;
const quiet = (): void => {};

function runClient(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${file}`, ...args], {
    cwd: ROOT, env: { ...process.env, HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const timer = setTimeout(() => child.kill(), 10000);
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, out });
  }));
}

function portOf(server: Server, scheme = 'tcp'): string {
  const url = server.addresses.find((a) => a.startsWith(scheme + '://'));
  assert.ok(url, `no ${scheme}:// address in ${server.addresses.join(' ')}`);
  return /:(\d+)$/.exec(url)![1]!;
}

test('reverse-client against switchboard\'s reverse server', T, async () => {
  const server = await reverseServer({ listen: 'tcp://127.0.0.1:0', log: quiet });
  try {
    const r = await runClient('reverse-client.ts', [portOf(server)]);
    assert.equal(r.code, 0);
    assert.equal(r.out, 'Message To server :Hello ServerReply From Server  :revreS olleH\n');
    const zh = await runClient('reverse-client.ts', [portOf(server), '你好世界']);
    assert.equal(zh.out, 'Message To server :你好世界Reply From Server  :界世好你\n');
  } finally {
    await server.close();
  }
});

test('ack-client against switchboard\'s ack server', T, async () => {
  const server = await ackServer({ listen: 'text://127.0.0.1:0', log: quiet });
  try {
    const r = await runClient('ack-client.ts', [portOf(server, 'text')], { ACK_TIMEOUT: '0.3' });
    assert.equal(r.code, 0);
    assert.equal(r.out, 'Buffer Data: connect\n\nWriting to Socket\nsent to server: SOME DATA\n response from server was:Information Received\n\n');
  } finally {
    await server.close();
  }
});

test('greet-client and count-client against switchboard\'s greet server', T, async () => {
  const server = await greetServer({ listen: 'tcp://127.0.0.1:0', log: quiet });
  try {
    const port = portOf(server);
    const g = await runClient('greet-client.ts', [port]);
    assert.equal(g.code, 0);
    assert.match(g.out, /连接OK\n发送到服务器信息成功！\n/);
    // The greeting and the answer may come in one read or two.
    const received = [...g.out.matchAll(/接受的内容为:([^]*?)(?=接收服务器回传信息成功！\n|关闭SOCKET)/g)].map((m) => m[1]).join('');
    assert.equal(received, '测试成功！\nsuccess\n');
    const c = await runClient('count-client.ts', [port]);
    assert.equal(c.code, 0);
    const got = [...c.out.matchAll(/receive msg:([^]*?)(?=recevie server msg\n| close SOCKET)/g)].map((m) => m[1]).join('');
    assert.equal(got, '测试成功！\nsuccess\n');
    assert.match(c.out, / close SOCKET...\nclose OK\n$/);
  } finally {
    await server.close();
  }
});

test('udp-daytime-client against switchboard\'s daytime server (UDP)', T, async () => {
  const server = await daytimeServer({ listen: ['udp://127.0.0.1:0'], log: quiet });
  try {
    const r = await runClient('udp-daytime-client.ts', [portOf(server, 'udp')], { TIMEOUT: '3' });
    assert.equal(r.code, 0);
    assert.match(r.out, /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/);
  } finally {
    await server.close();
  }
});
