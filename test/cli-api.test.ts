/**
 * The two public Connection methods the command line needed (ping() with its 'pong' event, for
 * --ping-interval; pause()/resume(), for bridge and --exec backpressure), through the public API
 * against real peers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { Server, connect, type Connection } from '../src/index.js';
import { until } from './helpers.js';


test('Connection.ping(): the `ws` server answers, the pong event carries the payload; false where there is no ping', { timeout: 20000 }, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const pingsSeen: string[] = [];
  wss.on('connection', (ws: WebSocket) => ws.on('ping', (d: Buffer) => pingsSeen.push(d.toString())));
  try {
    const conn = await connect(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`);
    const pong = once(conn, 'pong') as Promise<[Buffer]>;
    assert.equal(conn.ping(Buffer.from('seq-1')), true);
    const [payload] = await pong;
    assert.equal(payload.toString(), 'seq-1');
    assert.deepEqual(pingsSeen, ['seq-1']);
    assert.throws(() => conn.ping(Buffer.alloc(126)), /at most 125 bytes/);
    conn.close();
    await conn.closed();
    assert.equal(conn.ping(), false);
  } finally {
    wss.close();
  }
  const server = await new Server({ listen: 'text://127.0.0.1:0' }).listen();
  try {
    const conn = await connect(server.addresses[0]!);
    assert.equal(conn.ping(), false); // text:// has no ping
    conn.close();
    await conn.closed();
  } finally {
    await server.close();
  }
});

test('Connection.pause() stops reading (the peer\'s writes back up), resume() reads again', { timeout: 20000 }, async () => {
  const server = await new Server({ listen: 'tcp://127.0.0.1:0' }).listen();
  let serverSide: Connection | null = null;
  let received = 0;
  server.on('connection', (c) => {
    serverSide = c;
    c.pause();
    c.on('message', (m) => { received += (m as Buffer).length; });
  });
  try {
    const port = Number(/:(\d+)$/.exec(server.addresses[0]!)![1]);
    const peer = net.connect(port, '127.0.0.1');
    await once(peer, 'connect');
    await until(() => serverSide, 'the server side');
    const total = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 7);
    let written = 0;
    for (;;) {
      const ok = peer.write(chunk);
      written += chunk.length;
      if (!ok || written >= total) break;
    }
    // The peer is held back: its writes wait in its own buffer, the paused side reads (next to) nothing.
    await until(() => peer.writableLength > 0, 'the peer to back up');
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(received <= 2 * 1024 * 1024, `read ${received} bytes while paused`);
    serverSide!.resume();
    while (written < total) {
      if (!peer.write(chunk)) await once(peer, 'drain');
      written += chunk.length;
    }
    await until(() => received === total, `all ${total} bytes (got ${received})`, 15000);
    peer.destroy();
  } finally {
    await server.close();
  }
});
