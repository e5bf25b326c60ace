/** udp:// in the toolkit: datagrams as messages, IPv4 and IPv6, the daytime and echo servers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Server, connect } from '../src/index.js';
import { daytimeServer, udpEchoServer } from '../src/apps/index.js';
import { daytimeText } from '../src/apps/daytime.js';
import { RawPeer, portOf, quiet } from './helpers.js';

function ask(port: number, host: string, payload: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => { s.close(); reject(new Error('no answer')); }, 2000);
    s.once('message', (m) => { clearTimeout(t); s.close(); resolve(m); });
    s.send(payload, port, host);
  });
}

test('udp echo round trips over IPv4 and IPv6, one datagram one message', { timeout: 5000 }, async () => {
  const server = await udpEchoServer({ listen: ['udp://127.0.0.1:0', 'udp://[::1]:0'], log: quiet });
  try {
    assert.deepEqual(await ask(portOf(server.addresses[0]!), '127.0.0.1', 'ping v4'), Buffer.from('ping v4'));
    assert.deepEqual(await ask(portOf(server.addresses[1]!), '::1', Buffer.from([0, 255, 1])), Buffer.from([0, 255, 1]));
    // Our own client: connect('udp://...') gives the same Connection shape.
    const c = await connect(server.addresses[1]!);
    c.send('via connect');
    c.send('second');
    const it = c[Symbol.asyncIterator]();
    assert.equal(String((await it.next()).value), 'via connect');
    assert.equal(String((await it.next()).value), 'second');
    c.close();
  } finally {
    await server.close();
  }
});

test('daytime answers a UDP datagram and a TCP connection with the ctime text', { timeout: 5000 }, async () => {
  const server = await daytimeServer({ listen: ['tcp://127.0.0.1:0', 'udp://127.0.0.1:0'], log: quiet });
  try {
    const udpAnswer = (await ask(portOf(server.addresses[1]!), '127.0.0.1', '\n')).toString();
    assert.match(udpAnswer, /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/);
    assert.equal(udpAnswer.length, 26);
    const tcp = await RawPeer.connect(portOf(server.addresses[0]!));
    assert.match(await tcp.untilClosed(), /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/);
    assert.equal(daytimeText(new Date(2026, 10, 1, 9, 5, 7)), 'Sun Nov  1 09:05:07 2026\r\n');
  } finally {
    await server.close();
  }
});

test('a datagram over maxMessageSize is dropped; peers are bounded by maxConnections', { timeout: 5000 }, async () => {
  const server = new Server({ listen: 'udp://127.0.0.1:0', maxMessageSize: 100, maxConnections: 1 });
  const got: number[] = [];
  server.on('connection', (c) => c.on('message', (m) => { got.push(m.length); c.send(m); }));
  await server.listen();
  try {
    const port = portOf(server.addresses[0]!);
    await assert.rejects(ask(port, '127.0.0.1', Buffer.alloc(101)), /no answer/);
    assert.equal((await ask(port, '127.0.0.1', Buffer.alloc(100))).length, 100);
    assert.deepEqual(got, [100]);
    // The first peer is remembered (udpPeerTimeout); a second endpoint is one too many.
    assert.match((await ask(port, '127.0.0.1', 'me too')).toString(), /^server full: 1 connections already/);
    assert.deepEqual(got, [100]);
  } finally {
    await server.close();
  }
});
