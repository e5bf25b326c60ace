/** udp:// in the toolkit: datagrams as messages, IPv4 and IPv6, the daytime and echo servers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Server, connect, type Connection } from '../src/index.js';
import { daytimeServer, udpEchoServer } from '../src/apps/index.js';
import { daytimeText } from '../src/apps/daytime.js';
import { RawPeer, portOf, quiet, waitFor } from './helpers.js';

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
    // The first peer is remembered (udpPeerTimeout); a second endpoint takes its place rather than being refused.
    assert.equal((await ask(port, '127.0.0.1', 'me too')).toString(), 'me too');
    assert.deepEqual(got, [100, 6]);
    assert.equal(server.connections.size, 1);
  } finally {
    await server.close();
  }
});

/** A UDP client socket that keeps every datagram it gets, to be asked again and again. */
class Endpoint {
  readonly socket = dgram.createSocket('udp4');
  readonly got: Buffer[] = [];
  private waiting: (() => void) | null = null;
  constructor(private readonly port: number) {
    this.socket.on('message', (m) => {
      this.got.push(m);
      this.waiting?.();
    });
  }
  async bound(): Promise<number> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return this.socket.address().port;
  }
  /** Sends `payload` and waits for the next datagram back (2 s deadline). */
  async ask(payload: string | Buffer): Promise<Buffer> {
    const before = this.got.length;
    const answered = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer')), 2000);
      this.waiting = () => {
        if (this.got.length > before) { clearTimeout(t); this.waiting = null; resolve(); }
      };
    });
    this.socket.send(payload, this.port, '127.0.0.1');
    await answered;
    return this.got[before]!;
  }
  close(): void {
    this.socket.close();
  }
}

async function echoOverUdp(options: Partial<ConstructorParameters<typeof Server>[0]>): Promise<{ server: Server; conns: Connection[]; port: number }> {
  const server = new Server({ listen: 'udp://127.0.0.1:0', ...options });
  const conns: Connection[] = [];
  server.on('connection', (c) => {
    conns.push(c);
    c.on('message', (m) => c.send(m));
  });
  await server.listen();
  return { server, conns, port: portOf(server.addresses[0]!) };
}

test('a full UDP peer table forgets its quietest peer: a new client is served at once, the old one closes cleanly and comes back as new', { timeout: 15000 }, async () => {
  const N = 50;
  const { server, conns, port } = await echoOverUdp({ maxConnections: N });
  const peers: Endpoint[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const p = new Endpoint(port);
      peers.push(p);
      await p.bound();
      assert.equal((await p.ask(`hi ${i}`)).toString(), `hi ${i}`);
    }
    assert.equal(server.connections.size, N);
    const first = conns[0]!;
    const newcomer = new Endpoint(port);
    peers.push(newcomer);
    await newcomer.bound();
    // Before: "server full" until udpPeerTimeout (60 s) let the first entries go.
    assert.equal((await newcomer.ask('let me in')).toString(), 'let me in');
    assert.deepEqual(await first.closed(), { code: 1000, reason: '' }, 'the evicted peer\'s connection ended cleanly');
    assert.equal(first.remotePort, peers[0]!.socket.address().port, 'the first (quietest) peer was the one forgotten');
    assert.equal(server.connections.size, N);
    // The evicted endpoint comes back: it is a new connection (and the next quietest makes room).
    assert.equal((await peers[0]!.ask('back')).toString(), 'back');
    const back = conns[conns.length - 1]!;
    assert.notEqual(back, first);
    assert.equal(back.remotePort, first.remotePort);
    assert.equal(back.isOpen, true);
    assert.equal(conns[1]!.isOpen, false, 'peer 1 made room for the returning peer 0');
    assert.equal(server.connections.size, N);
  } finally {
    for (const p of peers) p.close();
    await server.close();
  }
});

test('the peer that sent most recently is kept when the UDP table is full', { timeout: 8000 }, async () => {
  const { server, conns, port } = await echoOverUdp({ maxConnections: 2 });
  const [a, b, c] = [new Endpoint(port), new Endpoint(port), new Endpoint(port)];
  try {
    for (const p of [a, b, c]) await p.bound();
    await a.ask('a1');
    await b.ask('b1');
    // Recency is kept to the second (see TOUCH_MS in transport/udp.ts): let a second pass, then a speaks again.
    await new Promise((r) => setTimeout(r, 1100));
    await a.ask('a2');
    await c.ask('c1');
    assert.equal(conns[0]!.isOpen, true, 'a (active) is kept');
    assert.equal(conns[1]!.isOpen, false, 'b (quiet the longest) made room');
    assert.equal((await a.ask('a3')).toString(), 'a3');
    assert.equal(conns.length, 3, 'a is still the same connection');
  } finally {
    for (const p of [a, b, c]) p.close();
    await server.close();
  }
});

test('a UDP client refused because the server is full never gets more bytes back than it sent', { timeout: 8000 }, async () => {
  // One TCP connection fills the server; the UDP table is empty, so nothing can be evicted.
  const server = new Server({ listen: ['tcp://127.0.0.1:0', 'udp://127.0.0.1:0'], maxConnections: 1 });
  const refused: string[] = [];
  server.on('refused', (r) => refused.push(r.reason));
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  await server.listen();
  const udpPort = portOf(server.addresses[1]!);
  const tcp = await RawPeer.connect(portOf(server.addresses[0]!));
  const udp = new Endpoint(udpPort);
  try {
    await waitFor(() => server.connections.size === 1, 3000, 'the TCP connection');
    await udp.bound();
    // A 1-byte datagram from an unverified source: the 59-byte refusal would be a 59x reflection.
    udp.socket.send('x', udpPort, '127.0.0.1');
    await waitFor(() => refused.length === 1, 3000, 'the first refusal');
    // A datagram as large as the refusal may be told why (a spoofed source gains nothing).
    const big = Buffer.alloc(200, 0x61);
    udp.socket.send(big, udpPort, '127.0.0.1');
    await waitFor(() => refused.length === 2, 3000, 'the second refusal');
    // Room again: an echo marks the end (loopback keeps the order, so every earlier answer is in).
    tcp.destroy();
    await waitFor(() => server.connections.size === 0, 3000, 'the TCP connection to close');
    udp.socket.send('done', udpPort, '127.0.0.1');
    await waitFor(() => udp.got.some((m) => m.toString() === 'done'), 3000, 'the echo');
    const answers = udp.got.map(String);
    assert.equal(answers.length, 2, `the 1-byte datagram got no answer: ${JSON.stringify(answers)}`);
    assert.match(answers[0]!, /^server full: 1 connections already/);
    assert.ok(udp.got[0]!.length <= big.length);
    assert.equal(answers[1], 'done');
  } finally {
    udp.close();
    tcp.destroy();
    await server.close();
  }
});
