/**
 * server.attach(httpServer, { path }) and server.handleUpgrade(): WebSocket endpoints on the
 * application's own HTTP server (node:http, node:https, Express, Fastify, Koa), next to its routes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { Server, type ServerOptions } from '../src/index.js';
import { RedisProcess } from './hub-support.js';
import { makeCertificate, waitFor } from './helpers.js';
import { APPS, get, rawUpgrade, roundTrip, wsOpen } from './attach-support.js';
import { frame, upgradeRequest } from './ws-helpers.js';
import net from 'node:net';

const CERT = makeCertificate();

function closeCode(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(-1);
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

for (const [name, make] of Object.entries(APPS)) {
  test(`${name}: the app's route and two WebSocket endpoints share one port; other listeners keep theirs; unclaimed paths 404; close() leaves the app serving`, { timeout: 30000 }, async () => {
    const app = await make(CERT);
    const ca = CERT.cert;
    const wsBase = app.base.replace(/^http/, 'ws');
    // A Server per endpoint: each has its own handler (and could have its own limits).
    const chat = new Server({});
    chat.on('connection', (c) => c.on('message', (m) => c.send(`chat:${String(m)}`)));
    const feed = new Server({});
    feed.on('connection', (c) => c.on('message', (m) => c.send(`feed:${String(m)} at ${c.request?.url ?? '?'} (${c.subprotocol})`)));
    chat.attach(app.http, { path: '/chat' });
    feed.attach(app.http, { path: '/feed', protocols: ['feed.v1'] });
    // The application's own upgrade listener: /legacy, answered after an asynchronous check.
    const legacy = new WebSocketServer({ noServer: true });
    legacy.on('connection', (ws) => ws.on('message', (d) => ws.send(`legacy:${String(d)}`)));
    const own = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (req.url !== '/legacy') return;
      setTimeout(() => legacy.handleUpgrade(req, socket, head, (ws) => legacy.emit('connection', ws, req)), 30);
    };
    app.http.on('upgrade', own);
    try {
      assert.deepEqual(await get(`${app.base}/hello`, ca), { status: 200, body: `hello from ${name}` });
      const a = await wsOpen(`${wsBase}/chat`, ca);
      assert.equal(await roundTrip(a, 'hi'), 'chat:hi');
      const b = await wsOpen(`${wsBase}/feed?room=1`, ca, {}, ['feed.v1']);
      assert.equal(b.protocol, 'feed.v1');
      assert.equal(await roundTrip(b, 'x'), 'feed:x at /feed?room=1 (feed.v1)');
      const l = await wsOpen(`${wsBase}/legacy`, ca);
      assert.equal(await roundTrip(l, 'old'), 'legacy:old');
      l.close();
      assert.equal(chat.connections.size, 1);
      assert.equal(feed.connections.size, 1);
      assert.match([...chat.connections][0]!.address.url, /^wss?:\/\/127\.0\.0\.1:\d+\/chat$/);
      // The route still answers while WebSocket connections are open.
      assert.equal((await get(`${app.base}/hello`, ca)).status, 200);

      // Alone on the HTTP server, an upgrade to a path nobody attached gets 404 and is closed.
      app.http.off('upgrade', own);
      const nope = await rawUpgrade(app.base, '/nope');
      assert.match(nope.statusLine, /^HTTP\/1\.1 404 /);
      assert.equal(nope.closed, true);

      // close() of one Server: its connection hears 1001; the other endpoint and the app go on.
      const aClosed = closeCode(a);
      await chat.close();
      assert.equal(await aClosed, 1001);
      assert.equal(await roundTrip(b, 'y'), 'feed:y at /feed?room=1 (feed.v1)');
      assert.equal((await get(`${app.base}/hello`, ca)).status, 200);
      assert.match((await rawUpgrade(app.base, '/chat')).statusLine, /^HTTP\/1\.1 404 /);

      const bClosed = closeCode(b);
      await feed.close();
      assert.equal(await bClosed, 1001);
      // Nothing of switchboard is left on the HTTP server, which still serves.
      assert.equal(app.http.listenerCount('upgrade'), 0);
      assert.equal(app.http.listening, true);
      assert.deepEqual(await get(`${app.base}/hello`, ca), { status: 200, body: `hello from ${name}` });
    } finally {
      await chat.close();
      await feed.close();
      legacy.close();
      await app.stop();
    }
  });
}

test('attached endpoints keep the Server\'s limits and features: maxConnections, verifyClient, origins, deflate, rooms, heartbeats', { timeout: 30000 }, async () => {
  const app = await APPS['node:http']!(CERT);
  const server = new Server({
    maxConnections: 2,
    heartbeatInterval: 200,
    websocket: {
      perMessageDeflate: true,
      origins: ['http://good.example'],
      verifyClient: (info) => (info.url.includes('token=ok') ? true : { status: 403, reason: 'bad token' }),
    },
  });
  server.on('connection', (c) => {
    c.subscribe('news');
    c.on('message', (m) => server.publish('news', `news:${String(m)}`));
  });
  server.attach(app.http, { path: '/ws' });
  const url = `${app.base.replace('http', 'ws')}/ws`;
  try {
    await assert.rejects(wsOpen(`${url}?token=no`), /unexpected response 403/);
    await assert.rejects(wsOpen(`${url}?token=ok`, undefined, { origin: 'http://evil.example' }), /unexpected response 403/);
    const a = await wsOpen(`${url}?token=ok`, undefined, { origin: 'http://good.example' });
    const b = await wsOpen(`${url}?token=ok`);
    assert.match(a.extensions, /permessage-deflate/);
    // Full: the third is refused with 503.
    await assert.rejects(wsOpen(`${url}?token=ok`), /unexpected response 503/);
    const toB = new Promise<string>((resolve) => b.once('message', (d) => resolve(String(d))));
    assert.equal(await roundTrip(a, 'x'.repeat(2000)), `news:${'x'.repeat(2000)}`);
    assert.equal(await toB, `news:${'x'.repeat(2000)}`);
    // Heartbeats: a quiet client is pinged (and ws answers, so it stays open).
    await once(a, 'ping');
    assert.equal(a.readyState, WebSocket.OPEN);
    a.close();
    b.close();
    await waitFor(() => server.connections.size === 0, 5000, 'both connections closed');
  } finally {
    await server.close();
    await app.stop();
  }
});

test('handleUpgrade(): the application routes upgrades itself (the ws noServer pattern); the Server\'s path is checked', { timeout: 30000 }, async () => {
  const app = await APPS.express!(CERT);
  const server = new Server({ websocket: { path: '/live' } });
  server.on('connection', (c) => c.on('message', (m) => c.send(`live:${String(m)}`)));
  app.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.headers['x-tenant'] === 'blocked') socket.destroy();
    else server.handleUpgrade(req, socket, head);
  });
  const url = `${app.base.replace('http', 'ws')}/live`;
  try {
    const a = await wsOpen(url);
    assert.equal(await roundTrip(a, 'ping'), 'live:ping');
    assert.match((await rawUpgrade(app.base, '/elsewhere')).statusLine, /^HTTP\/1\.1 404 /);
    await assert.rejects(wsOpen(url, undefined, { headers: { 'x-tenant': 'blocked' } }));
    const closed = closeCode(a);
    await server.close();
    assert.equal(await closed, 1001);
    assert.equal((await get(`${app.base}/hello`)).status, 200);
  } finally {
    await server.close();
    await app.stop();
  }
});

test('attach() checks its arguments: a path is required, one endpoint per path of an HTTP server', async () => {
  const httpServer = http.createServer();
  const server = new Server({});
  try {
    assert.throws(() => server.attach(httpServer, { path: 'chat' }), { code: 'ERR_INVALID_OPTION' });
    assert.throws(() => server.attach(httpServer, {} as { path: string }), { code: 'ERR_INVALID_OPTION' });
    server.attach(httpServer, { path: '/chat' });
    assert.throws(() => new Server({}).attach(httpServer, { path: '/chat' }), /already attached at \/chat/);
  } finally {
    await server.close();
  }
  assert.equal(httpServer.listenerCount('upgrade'), 0);
  assert.throws(() => server.attach(httpServer, { path: '/late' }), { code: 'ERR_CLOSED' });
});

test('a frame sent in the same packet as the upgrade request (Node\'s `head`) is read, with the rebuilt head', { timeout: 15000 }, async () => {
  const app = await APPS['node:http']!(CERT);
  const server = new Server({});
  server.on('connection', (c) => c.on('message', (m) => c.send(`got:${String(m)} from ${c.request?.headers['x-custom'] ?? '?'}`)));
  server.attach(app.http, { path: '/early' });
  const socket = net.connect(Number(new URL(app.base).port), '127.0.0.1');
  try {
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    await once(socket, 'connect');
    socket.write(Buffer.concat([upgradeRequest({ 'X-Custom': 'kept' }, '/early'), frame({ opcode: 1, payload: 'first' })]));
    await waitFor(() => text.includes('got:first from kept'), 5000, 'the echo of the early frame');
    assert.match(text, /^HTTP\/1\.1 101 /);
  } finally {
    socket.destroy();
    await server.close();
    await app.stop();
  }
});

test('attached endpoints of two servers on two HTTP servers share rooms through a Redis hub; the accept hook sees the attached URL', { timeout: 30000 }, async () => {
  const redis = await RedisProcess.start();
  const app1 = await APPS['node:http']!(CERT);
  const app2 = await APPS.koa!(CERT);
  const seen: string[] = [];
  const make = (extra: Partial<ServerOptions>): Server => {
    const s = new Server({ hub: redis.url, ...extra });
    s.on('connection', (c) => {
      c.subscribe('room');
      c.on('message', (m) => s.publish('room', String(m), { except: c }));
    });
    return s;
  };
  const one = make({ accept: (_remote, url) => { seen.push(url); return true; } });
  const two = make({});
  try {
    // No listen addresses: listen() only waits for the hub.
    await one.listen();
    await two.listen();
    one.attach(app1.http, { path: '/room' });
    two.attach(app2.http, { path: '/room' });
    const a = await wsOpen(`${app1.base.replace('http', 'ws')}/room`);
    const b = await wsOpen(`${app2.base.replace('http', 'ws')}/room`);
    assert.deepEqual(seen, [`ws://127.0.0.1:${new URL(app1.base).port}/room`]);
    let got = '';
    b.on('message', (d) => (got = String(d)));
    // The hub's subscription is asynchronous: publish until it is in place (bounded).
    for (let i = 0; i < 100 && got === ''; i++) {
      a.send(`hello ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(got, /^hello \d+$/);
    a.close();
    b.close();
  } finally {
    await one.close();
    await two.close();
    await app1.stop();
    await app2.stop();
    await redis.stop();
  }
});

test('one Server attached at two paths tells them apart by conn.address.path, each path with its own options', { timeout: 15000 }, async () => {
  const app = await APPS['node:http']!(CERT);
  const server = new Server({});
  server.on('connection', (c) => c.on('message', (m) => c.send(`${c.address.path}:${String(m)}:${c.subprotocol || '-'}`)));
  server.attach(app.http, { path: '/chat' });
  server.attach(app.http, { path: '/feed', protocols: ['feed.v1'] });
  const base = app.base.replace('http', 'ws');
  try {
    const chat = await wsOpen(`${base}/chat`);
    const feed = await wsOpen(`${base}/feed`, undefined, {}, ['feed.v1']);
    assert.equal(await roundTrip(chat, 'a'), '/chat:a:-');
    assert.equal(await roundTrip(feed, 'b'), '/feed:b:feed.v1');
    chat.close();
    feed.close();
  } finally {
    await server.close();
    await app.stop();
  }
});
