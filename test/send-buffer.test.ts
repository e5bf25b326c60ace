/**
 * The send-buffer rule, from the caller's side: one big message is not a slow reader; a brief
 * stall that drains in time is not one either; a peer that stops reading (or only pings) is
 * dropped, bounded, and a WebSocket peer is told so with a Close frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { Server, connect, type CloseInfo, type Connection } from '../src/index.js';
import { waitFor } from './helpers.js';

const MiB = 1024 * 1024;

test('a 16 MiB WebSocket message is echoed whole to the ws package and the connection stays open (server role)', { timeout: 30000 }, async () => {
  const server = new Server({ listen: 'ws://127.0.0.1:0', maxMessageSize: 64 * MiB });
  const closes: CloseInfo[] = [];
  server.on('connection', (c) => {
    c.on('message', (m) => c.send(m));
    c.on('close', (i) => closes.push(i));
  });
  await server.listen();
  try {
    const ws = new WebSocket(server.addresses[0]!, { maxPayload: 64 * MiB });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const big = randomBytes(16 * MiB);
    const echoed = new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
    ws.send(big);
    assert.ok((await echoed).equals(big));
    // Still open: a second message goes through, then a clean close.
    const again = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    ws.send('still here');
    assert.equal(await again, 'still here');
    const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.close(1000);
    assert.equal(await code, 1000);
    await waitFor(() => closes.length === 1, 3000, 'server-side close');
    assert.equal(closes[0]!.code, 1000);
    assert.equal(closes[0]!.error, undefined);
  } finally {
    await server.close();
  }
});

test('a 16 MiB message echoed by our client to a ws package server (client role)', { timeout: 30000 }, async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 64 * MiB });
  await new Promise((r) => wss.once('listening', r));
  const big = randomBytes(16 * MiB);
  const back = new Promise<Buffer>((resolve) => {
    wss.on('connection', (ws) => {
      ws.on('message', (d) => resolve(d as Buffer));
      ws.send(big);
    });
  });
  try {
    const c = await connect(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, { maxMessageSize: 64 * MiB });
    c.on('message', (m) => c.send(m));
    assert.ok((await back).equals(big));
    assert.equal(c.isOpen, true);
    c.close();
    assert.equal((await c.closed()).code, 1000);
  } finally {
    await new Promise((r) => wss.close(r));
  }
});

/** A server that, once told, queues `total` bytes of lines in 16 KiB steps, one step per event-loop round. */
function burstServer(url: string, opts: { maxBufferedAmount: number; drainTimeout: number }) {
  const server = new Server({ listen: url, ...opts, closeTimeout: 10_000 });
  const state: { conn: Connection | null; close: CloseInfo | null; peakBuffered: number } = { conn: null, close: null, peakBuffered: 0 };
  server.on('connection', (c) => {
    state.conn = c;
    c.on('close', (i) => { state.close = i; });
  });
  const burst = async (total: number): Promise<number> => {
    const line = 'x'.repeat(1023);
    let sent = 0;
    do {
      if (!state.conn?.isOpen) break;
      for (let i = 0; i < 16; i++) { state.conn.send(line); sent += 1024; }
      state.peakBuffered = Math.max(state.peakBuffered, state.conn.bufferedAmount);
      await new Promise((r) => setImmediate(r));
    } while (sent < total);
    await new Promise((r) => setImmediate(r)); // always yields, so a caller's loop cannot starve the event loop
    return sent;
  };
  return { server, state, burst };
}

test('a reader that stalls briefly while a burst over the bound is queued is not dropped, and gets every byte', { timeout: 20000 }, async () => {
  const { server, state, burst } = burstServer('text://127.0.0.1:0', { maxBufferedAmount: 256 * 1024, drainTimeout: 3000 });
  await server.listen();
  try {
    const peer = net.connect(Number(server.addresses[0]!.split(':').pop()), '127.0.0.1');
    await new Promise((r) => peer.once('connect', r));
    await waitFor(() => state.conn !== null, 3000, 'connection');
    let got = 0;
    peer.on('data', (d) => { got += d.length; });
    peer.pause();
    // Queue until what waits in the server is well over the bound (the kernel holds a few MB first).
    let sent = 0;
    while (state.conn!.bufferedAmount < 600 * 1024 && sent < 64 * MiB) sent += await burst(64 * 1024);
    assert.ok(state.conn!.bufferedAmount > 256 * 1024, 'the buffer went over the bound');
    await new Promise((r) => setTimeout(r, 300));
    peer.resume();
    await waitFor(() => got === sent, 10000, 'every byte');
    assert.equal(state.close, null, 'not dropped');
    assert.equal(state.conn!.isOpen, true);
    peer.destroy();
  } finally {
    await server.close();
  }
});

for (const how of ['keeps sending (the ceiling)', 'stops sending over the bound (drainTimeout)'] as const) {
  test(`a WebSocket peer that stops reading while the server ${how} is dropped, memory stays under the ceiling, and it gets a 1008 Close frame once it reads`, { timeout: 30000 }, async () => {
    const max = 256 * 1024;
    const { server, state, burst } = burstServer('ws://127.0.0.1:0', { maxBufferedAmount: max, drainTimeout: 500 });
    await server.listen();
    try {
      const ws = new WebSocket(server.addresses[0]!);
      await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
      await waitFor(() => state.conn !== null, 3000, 'connection');
      const peerClose = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      const socket = (ws as unknown as { _socket: net.Socket })._socket;
      socket.pause();
      const conn = state.conn!;
      const deadline = Date.now() + 15000;
      if (how === 'keeps sending (the ceiling)') {
        // As a chat would, until the server gives up on this reader.
        while (conn.isOpen && Date.now() < deadline) await burst(64 * 1024);
      } else {
        while (conn.bufferedAmount < 1.5 * max && Date.now() < deadline) await burst(16 * 1024);
        assert.equal(conn.isOpen, true, 'over the bound but under the ceiling: not dropped at once');
        await waitFor(() => !conn.isOpen, 5000, 'dropped by the drain clock');
      }
      assert.equal(conn.readyState, 'closing', 'dropped');
      assert.ok(state.peakBuffered <= 4 * max + 64 * 1024, `what waited stayed under the ceiling (${state.peakBuffered})`);
      socket.resume();
      assert.equal(await peerClose, 1008, 'the peer read the Close frame');
      await waitFor(() => state.close !== null, 5000, 'close event');
      assert.equal(state.close!.code, 1008);
      assert.equal(state.close!.error?.code, 'ERR_BUFFER_FULL');
    } finally {
      await server.close();
    }
  });
}

test('ping flood: a client that pings and never reads is dropped with its pongs bounded', { timeout: 30000 }, async () => {
  const max = 128 * 1024;
  const server = new Server({ listen: 'ws://127.0.0.1:0', maxBufferedAmount: max, drainTimeout: 500, closeTimeout: 500 });
  let conn: Connection | null = null;
  let closed: CloseInfo | null = null;
  let peak = 0;
  server.on('connection', (c) => {
    conn = c;
    c.on('close', (i) => { closed = i; });
  });
  await server.listen();
  const sampler = setInterval(() => { if (conn) peak = Math.max(peak, conn.bufferedAmount); }, 5);
  try {
    const s = net.connect(Number(server.addresses[0]!.split(':').pop()), '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await waitFor(() => conn !== null, 3000, 'upgrade');
    s.pause(); // never reads again
    s.on('error', () => {});
    // A masked ping with 125 bytes of payload (mask 0: payload as is).
    const ping = Buffer.concat([Buffer.from([0x89, 0x80 | 125, 0, 0, 0, 0]), Buffer.alloc(125, 0x61)]);
    const many = Buffer.concat(Array(256).fill(ping));
    const deadline = Date.now() + 20000;
    while (closed === null && Date.now() < deadline && !s.destroyed) {
      if (!s.write(many)) await new Promise((r) => { s.once('drain', r); setTimeout(r, 50); });
      else await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => closed !== null, 5000, 'the flooder dropped');
    assert.equal(closed!.error?.code, 'ERR_BUFFER_FULL');
    assert.ok(peak <= 4 * max + 4096, `pongs waiting stayed bounded (${peak})`);
    s.destroy();
  } finally {
    clearInterval(sampler);
    await server.close();
  }
});

test('a connection dropped as a slow reader in the middle of a pipelined chunk handles none of the rest', { timeout: 20000 }, async () => {
  const max = 64 * 1024;
  const server = new Server({ listen: 'text://127.0.0.1:0', maxBufferedAmount: max, closeTimeout: 300 });
  let handled = 0;
  let handledAfterDrop = 0;
  let closed: CloseInfo | null = null;
  server.on('connection', (c) => {
    c.on('message', () => {
      if (!c.isOpen) handledAfterDrop++;
      handled++;
      c.send('y'.repeat(16 * 1024)); // like /who in a big room: each request costs a big reply
    });
    c.on('close', (i) => { closed = i; });
  });
  await server.listen();
  try {
    const s = net.connect(Number(server.addresses[0]!.split(':').pop()), '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.pause(); // never reads
    // Far more requests than the kernel buffers and the ceiling can answer, many per read.
    const chunk = Buffer.from('/who\n'.repeat(4000));
    for (let i = 0; i < 20 && !s.destroyed; i++) {
      s.write(chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => closed !== null, 10000, 'dropped');
    assert.equal(closed!.error?.code, 'ERR_BUFFER_FULL');
    assert.equal(handledAfterDrop, 0, 'no request handled once the connection was dropped');
    assert.ok(handled < 80000, `stopped early (${handled} handled)`);
    s.destroy();
  } finally {
    await server.close();
  }
});
