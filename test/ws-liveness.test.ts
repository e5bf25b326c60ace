/** WebSocket liveness and client timeouts: heartbeat pings, a peer that never answers, handshake timeouts, drain. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import WebSocket from 'ws';
import { Server, connect, type Connection } from '../src/index.js';
import { RawPeer, portOf, waitFor } from './helpers.js';

const UPGRADE = (port: number): string => [
  'GET / HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', '', '',
].join('\r\n');

test('heartbeat: a peer that never answers pings is closed; one that answers stays', { timeout: 10000 }, async () => {
  const closes: string[] = [];
  const server = new Server({ listen: 'ws://127.0.0.1:0', heartbeatInterval: 150 });
  server.on('connection', (c) => c.on('close', (i) => closes.push(i.error?.code ?? String(i.code))));
  await server.listen();
  const port = portOf(server.addresses[0]!);
  try {
    // A raw client that does the handshake and then ignores everything, pings included.
    const mute = await RawPeer.connect(port);
    mute.write(UPGRADE(port));
    await mute.until((t) => t.includes('s3pPLMBiTxaQ9kYGzzhZRbK+xOo='));
    // A ws-package client answers pings by itself.
    const alive = new WebSocket(server.addresses[0]!);
    await once(alive, 'open');
    let pings = 0;
    alive.on('ping', () => pings++);
    await mute.untilClosed(3000);
    assert.ok(mute.received.includes(0x89), 'the mute peer was pinged before it was closed');
    await waitFor(() => closes.includes('ERR_IDLE_TIMEOUT'), 2000, 'server-side close reason');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(alive.readyState, WebSocket.OPEN, 'the answering peer is still connected');
    assert.ok(pings >= 2, `pinged ${pings} times`);
    alive.close();
  } finally {
    await server.close();
  }
});

test('connect(): a server that accepts but never answers the handshake fails within connectTimeout', { timeout: 5000 }, async () => {
  const silent = net.createServer(() => {});
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const port = (silent.address() as net.AddressInfo).port;
  try {
    const started = Date.now();
    await assert.rejects(connect(`ws://127.0.0.1:${port}/`, { connectTimeout: 300 }), { code: 'ERR_HANDSHAKE_TIMEOUT' });
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
  } finally {
    silent.close();
  }
});

test('bufferedAmount grows while the peer does not read, and drain fires when it catches up', { timeout: 10000 }, async () => {
  let conn: Connection | undefined;
  const server = new Server({ listen: 'ws://127.0.0.1:0', maxBufferedAmount: 64 * 1024 * 1024 });
  server.on('connection', (c) => { conn = c; });
  await server.listen();
  try {
    const port = portOf(server.addresses[0]!);
    const peer = await RawPeer.connect(port);
    peer.write(UPGRADE(port));
    await waitFor(() => conn !== undefined);
    peer.socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    // The kernel's socket buffers take the first megabytes; keep sending until bytes wait in ours.
    assert.equal(conn!.send(chunk), false, 'send() says when the buffer is over its high-water mark');
    for (let i = 0; i < 500 && conn!.bufferedAmount < 1024 * 1024; i++) {
      conn!.send(chunk);
      if (i % 8 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(conn!.bufferedAmount >= 1024 * 1024, `bytes are waiting (${conn!.bufferedAmount})`);
    const drained = once(conn!, 'drain');
    peer.socket.resume();
    await drained;
    peer.destroy();
  } finally {
    await server.close();
  }
});
