/**
 * Who may connect: maxConnectionsPerIp and the pre-accept hook (ServerOptions.accept), from the
 * caller's side over real sockets. Linux routes all of 127.0.0.0/8 to loopback, so a client
 * bound to 127.0.0.2 is "another address".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Server, type SwitchboardError } from '../src/index.js';
import { freePort, portOf, waitFor } from './helpers.js';

/** A TCP client from a chosen local address (and port) that records what it receives. */
class Peer {
  text = '';
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => { this.text += t; });
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => {});
  }

  static connect(port: number, opts: { host?: string; localAddress?: string; localPort?: number; path?: string } = {}): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s = opts.path !== undefined ? net.connect({ path: opts.path })
        : net.connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress, localPort: opts.localPort });
      s.once('connect', () => resolve(new Peer(s)));
      s.once('error', reject);
    });
  }

  async until(pred: (t: string) => boolean, what: string): Promise<void> {
    await waitFor(() => pred(this.text), 3000, `${what} (got ${JSON.stringify(this.text)})`);
  }
}

/** A text server that greets each connection with "welcome" and records refusals. */
async function greeter(listen: string | string[], options: Partial<ConstructorParameters<typeof Server>[0]> = {}): Promise<{
  server: Server; refused: { remote: string; reason: string }[];
}> {
  const server = new Server({ listen, ...options });
  const refused: { remote: string; reason: string }[] = [];
  server.on('refused', (r) => refused.push(r));
  server.on('connection', (conn) => {
    conn.send('welcome');
    conn.on('message', (m) => conn.send(`echo ${String(m)}`));
  });
  await server.listen();
  return { server, refused };
}

test('maxConnectionsPerIp: the third connection from 127.0.0.1 is told and closed; 127.0.0.2 and a later one are accepted', { timeout: 10_000 }, async () => {
  const { server, refused } = await greeter('text://127.0.0.1:0', { maxConnectionsPerIp: 2 });
  try {
    const port = portOf(server.addresses[0]!);
    const a = await Peer.connect(port);
    const b = await Peer.connect(port);
    await a.until((t) => t === 'welcome\n', 'a welcomed');
    await b.until((t) => t === 'welcome\n', 'b welcomed');
    const c = await Peer.connect(port);
    await waitFor(() => c.closed, 3000, 'the third connection closed');
    assert.equal(c.text, 'too many connections from 127.0.0.1: 2 already, try again later\n');
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.remote, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.limitStats.refused, 1);

    const other = await Peer.connect(port, { localAddress: '127.0.0.2' });
    await other.until((t) => t === 'welcome\n', 'the client from 127.0.0.2 welcomed');

    // A closed connection no longer counts.
    a.socket.destroy();
    await waitFor(() => server.connections.size === 2, 3000, 'a gone');
    const d = await Peer.connect(port);
    await d.until((t) => t === 'welcome\n', 'd welcomed');
    for (const p of [b, d, other]) p.socket.destroy();
  } finally {
    await server.close();
  }
});

test('maxConnectionsPerIp: IPv4-mapped IPv6 counts as the IPv4 address, ::1 is another address; WebSocket gets a 503', { timeout: 10_000 }, async () => {
  const { server } = await greeter(['text://[::]:0', 'ws://127.0.0.1:0'], { maxConnectionsPerIp: 1 });
  try {
    const port = portOf(server.addresses[0]!);
    const a = await Peer.connect(port, { host: '127.0.0.1' });
    await a.until((t) => t === 'welcome\n', 'a welcomed');
    assert.equal([...server.connections][0]!.remoteAddress, '::ffff:127.0.0.1');
    // The same IPv4 client, on the other listener: over the cap.
    const ws = new WebSocket(server.addresses[1]!);
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => reject(new Error('a second connection from 127.0.0.1 was accepted')));
      ws.once('error', () => {});
    });
    assert.equal(status, 503);
    const v6 = await Peer.connect(port, { host: '::1' });
    await v6.until((t) => t === 'welcome\n', 'the ::1 client welcomed');
    const again = await Peer.connect(port, { host: '127.0.0.1' });
    await waitFor(() => again.closed, 3000, 'the second 127.0.0.1 connection closed');
    assert.match(again.text, /^too many connections from ::ffff:127\.0\.0\.1/);
    a.socket.destroy();
    v6.socket.destroy();
  } finally {
    await server.close();
  }
});

test('maxConnectionsPerIp: UDP endpoints count per IP; Unix sockets are exempt', { timeout: 10_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-admission-'));
  const server = new Server({ listen: ['udp://127.0.0.1:0', `unix://${join(dir, 's.sock')}`], maxConnectionsPerIp: 1 });
  const got: string[] = [];
  server.on('connection', (conn) => {
    conn.send('welcome');
    conn.on('message', (m) => got.push(String(m)));
  });
  await server.listen();
  const sockets: dgram.Socket[] = [];
  try {
    const port = portOf(server.addresses[0]!);
    const udp = async (localAddress: string, text: string): Promise<dgram.Socket> => {
      const s = dgram.createSocket('udp4');
      sockets.push(s);
      await new Promise<void>((resolve) => s.bind(0, localAddress, resolve));
      s.send(text, port, '127.0.0.1');
      return s;
    };
    await udp('127.0.0.1', 'first');
    await waitFor(() => got.includes('first'), 3000, 'the first endpoint');
    const sameIp = await udp('127.0.0.1', 'same ip');
    const toldSameIp: string[] = [];
    sameIp.on('message', (m) => toldSameIp.push(String(m)));
    await udp('127.0.0.2', 'other ip');
    await waitFor(() => got.includes('other ip'), 3000, 'the endpoint on 127.0.0.2');
    await waitFor(() => server.limitStats.refused === 1, 3000, 'the second endpoint from 127.0.0.1 refused');
    assert.ok(!got.includes('same ip'));
    // Nothing is sent to a refused UDP endpoint (its address may be forged).
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(toldSameIp, []);

    // unix:// is raw bytes: the greeting comes without a newline.
    const u1 = await Peer.connect(0, { path: join(dir, 's.sock') });
    const u2 = await Peer.connect(0, { path: join(dir, 's.sock') });
    await u1.until((t) => t === 'welcome', 'unix 1 welcomed');
    await u2.until((t) => t === 'welcome', 'unix 2 welcomed');
    u1.socket.destroy();
    u2.socket.destroy();
  } finally {
    for (const s of sockets) s.close();
    await server.close();
  }
});

test('accept hook: a text connection refused by address or port is destroyed without a byte; the others are served', { timeout: 10_000 }, async () => {
  const blockedPort = await freePort();
  const calls: { address: string; port: number; family: string; url: string }[] = [];
  const { server, refused } = await greeter('text://127.0.0.1:0', {
    accept: (remote, url) => {
      calls.push({ ...remote, url });
      return remote.address !== '127.0.0.2' && remote.port !== blockedPort;
    },
  });
  let connections = 0;
  server.on('connection', () => connections++);
  try {
    const port = portOf(server.addresses[0]!);
    const byAddress = await Peer.connect(port, { localAddress: '127.0.0.2' });
    byAddress.socket.write('hello?\n');
    await waitFor(() => byAddress.closed, 3000, 'the client from 127.0.0.2 closed');
    assert.equal(byAddress.text, '');
    const byPort = await Peer.connect(port, { localPort: blockedPort });
    await waitFor(() => byPort.closed, 3000, 'the client from the blocked port closed');
    assert.equal(byPort.text, '');
    const ok = await Peer.connect(port);
    await ok.until((t) => t === 'welcome\n', 'the accepted client welcomed');

    assert.equal(connections, 1);
    assert.deepEqual(refused.map((r) => r.reason), ['refused by the accept hook', 'refused by the accept hook']);
    assert.match(refused[0]!.remote, /^127\.0\.0\.2:\d+$/);
    assert.equal(refused[1]!.remote, `127.0.0.1:${blockedPort}`);
    assert.equal(server.limitStats.refused, 2);
    assert.equal(calls.length, 3);
    assert.deepEqual({ ...calls[0], port: 0 }, { address: '127.0.0.2', port: 0, family: 'IPv4', url: server.addresses[0] });
    ok.socket.destroy();
  } finally {
    await server.close();
  }
});

test('accept hook: UDP datagrams from a refused endpoint are never delivered; WebSocket is refused before the HTTP head', { timeout: 10_000 }, async () => {
  const blockedPort = await freePort();
  const server = new Server({
    listen: ['udp://127.0.0.1:0', 'ws://127.0.0.1:0'],
    accept: (remote) => remote.port !== blockedPort,
  });
  const got: string[] = [];
  server.on('connection', (conn) => conn.on('message', (m) => got.push(String(m))));
  await server.listen();
  const sockets: dgram.Socket[] = [];
  try {
    const port = portOf(server.addresses[0]!);
    const send = async (localPort: number, text: string): Promise<dgram.Socket> => {
      const s = dgram.createSocket('udp4');
      sockets.push(s);
      await new Promise<void>((resolve) => s.bind(localPort, '127.0.0.1', resolve));
      s.send(text, port, '127.0.0.1');
      return s;
    };
    const blocked = await send(blockedPort, 'blocked 1');
    blocked.send('blocked 2', port, '127.0.0.1');
    await send(0, 'allowed');
    await waitFor(() => got.includes('allowed') && server.limitStats.refused === 2, 3000, 'the allowed datagram and two refusals');
    assert.deepEqual(got, ['allowed']);

    // WebSocket from the blocked port: the socket is destroyed before any HTTP answer.
    const ws = new WebSocket(server.addresses[1]!, { localPort: blockedPort } as WebSocket.ClientOptions);
    const outcome = await new Promise<string>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`));
      ws.once('open', () => resolve('open'));
      ws.once('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    assert.match(outcome, /^error /);
    assert.equal(server.limitStats.refused, 3);
  } finally {
    for (const s of sockets) s.close();
    await server.close();
  }
});

test('admission options are checked (ERR_INVALID_OPTION); a throwing hook refuses and is reported', { timeout: 5000 }, async () => {
  for (const maxConnectionsPerIp of [-1, 1.5, Number.NaN, '3' as unknown as number]) {
    assert.throws(() => new Server({ listen: 'text://127.0.0.1:0', maxConnectionsPerIp }),
      (err: SwitchboardError) => err.code === 'ERR_INVALID_OPTION', String(maxConnectionsPerIp));
  }
  assert.throws(() => new Server({ listen: 'text://127.0.0.1:0', accept: true as never }),
    (err: SwitchboardError) => err.code === 'ERR_INVALID_OPTION');

  const errors: Error[] = [];
  const { server, refused } = await greeter('text://127.0.0.1:0', { accept: () => { throw new Error('hook broke'); } });
  server.on('error', (e) => errors.push(e));
  try {
    const p = await Peer.connect(portOf(server.addresses[0]!));
    await waitFor(() => p.closed, 3000, 'the connection closed');
    assert.equal(p.text, '');
    assert.equal(refused.length, 1);
    assert.deepEqual(errors.map((e) => e.message), ['hook broke']);
  } finally {
    await server.close();
  }
});
