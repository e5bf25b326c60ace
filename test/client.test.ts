/**
 * switchboard/client (public/switchboard-client.js) in Node against the server over real sockets:
 * acknowledgements and their timeouts, an authorize refusal with its reason, the offline queue and
 * its bound, resubscription after the server restarts on the same port (from the last offset), and
 * liveness when the server stops answering without closing (a SIGSTOPped child process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import WebSocket, { WebSocketServer } from 'ws';
import { Server, chatServer } from '../src/index.js';
import { SwitchboardClient, ClientError, type ClientCloseInfo } from '../public/switchboard-client.js';
import { freePort, until } from './helpers.js';

type Topics = { news: string; prices: { sym: string; px: number }; blob: Uint8Array };
type Requests = { add: { request: { a: number; b: number }; reply: number }; slow: { request: null; reply: never } };

const opts = { WebSocket, initialDelay: 20, maxDelay: 200 };

async function wireServer(port = 0, extra: Partial<ConstructorParameters<typeof Server>[0]> = {}): Promise<Server> {
  const server = new Server({
    listen: `ws://127.0.0.1:${port}`,
    wire: { authorize: (_c, action, topic) => (topic.startsWith('admin/') ? `${action} on ${topic} needs an admin` : true) },
    ...extra,
  });
  server.wire!.handle('add', (_c, d) => { const { a, b } = d as { a: number; b: number }; return a + b; }).handle('slow', () => new Promise(() => {}));
  await server.listen();
  return server;
}

async function rejection(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ClientError, `a ClientError: ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

test('client: publish and request are acknowledged, a reply that does not come times out, a refusal carries its reason', { timeout: 20000 }, async () => {
  const server = await wireServer();
  const a = new SwitchboardClient<Topics, Requests>(server.addresses[0]!, opts);
  const b = new SwitchboardClient<Topics, Requests>(server.addresses[0]!, opts);
  try {
    const got: string[] = [];
    const prices: { sym: string; px: number }[] = [];
    const blobs: Uint8Array[] = [];
    await b.subscribe('news', (text) => got.push(text));
    await b.subscribe('prices', (p) => prices.push(p), { json: true });
    await b.subscribe('blob', (bytes) => blobs.push(bytes));
    await a.publish('news', 'hello');
    await a.publish('prices', { sym: 'X', px: 1.5 });
    await a.publish('blob', new Uint8Array([1, 2, 3]));
    await until(() => got.length === 1 && prices.length === 1 && blobs.length === 1, 'deliveries');
    assert.deepEqual(got, ['hello']);
    assert.deepEqual(prices, [{ sym: 'X', px: 1.5 }]);
    assert.deepEqual([...blobs[0]!], [1, 2, 3]);

    assert.equal(await a.request('add', { a: 2, b: 40 }), 42);
    const slow = await rejection(a.request('slow', null, { timeout: 150 }));
    assert.equal(slow.code, 'ERR_TIMEOUT');

    const refused = await rejection(a.subscribe('admin/keys' as 'news'));
    assert.equal(refused.code, 'ERR_REFUSED');
    assert.equal(refused.reason, 'subscribe on admin/keys needs an admin');
    const pubRefused = await rejection(a.publish('admin/x' as 'news', 'x'));
    assert.equal(pubRefused.reason, 'publish on admin/x needs an admin');
    // Plain messages pass beside the protocol.
    const plain: (string | Uint8Array)[] = [];
    a.on('message', (m) => plain.push(m));
    server.broadcast('plain to all');
    await until(() => plain.includes('plain to all'), 'plain message');
    assert.throws(() => a.send('\u001e{"t":"ping"}'), /cannot start with U\+001E/);
  } finally {
    a.close();
    b.close();
    await server.close();
  }
});

test('client: sends while disconnected wait in a bounded queue and go out in order, once, after the connect', { timeout: 20000 }, async () => {
  const port = await freePort();
  const client = new SwitchboardClient(`ws://127.0.0.1:${port}`, { ...opts, maxQueue: 3 });
  const reasons: string[] = [];
  client.on('reconnecting', (r) => reasons.push(r.reason));
  let server: Server | undefined;
  try {
    await until(() => reasons.length > 0, 'a failed attempt');
    client.send('one');
    client.send('two');
    const acked = client.publish('news', 'three');
    assert.equal(client.queued, 3);
    assert.throws(() => client.send('four'), (err: ClientError) => err.code === 'ERR_QUEUE_FULL');
    assert.equal((await rejection(client.publish('news', 'five'))).code, 'ERR_QUEUE_FULL');
    assert.equal(client.queued, 3, 'the bound held');

    const seen: string[] = [];
    server = await wireServer(port);
    const published: string[] = [];
    server.on('connection', (c) => c.on('message', (m) => seen.push(String(m))));
    const watcher = new SwitchboardClient(`ws://127.0.0.1:${port}`, opts);
    await watcher.subscribe('news', (t) => published.push(String(t)));
    await acked;
    await until(() => seen.length === 2 && published.length === 1, 'the queue');
    assert.deepEqual(seen, ['one', 'two']);
    assert.deepEqual(published, ['three']);
    assert.equal(client.queued, 0);
    watcher.close();
  } finally {
    client.close();
    await server?.close();
  }
});

test('client: resubscribes after the server restarts on the same port; close and reconnecting say why', { timeout: 20000 }, async () => {
  const port = await freePort();
  let server = await wireServer(port);
  const client = new SwitchboardClient<Topics>(`ws://127.0.0.1:${port}`, opts);
  const closes: ClientCloseInfo[] = [];
  const opens: boolean[] = [];
  client.on('close', (c) => closes.push(c));
  client.on('open', (o) => opens.push(o.reconnected));
  const got: string[] = [];
  try {
    await client.subscribe('news', (t) => got.push(t));
    server.publish('news', 'before');
    await until(() => got.length === 1, 'first delivery');
    await server.close();
    await until(() => closes.length > 0, 'close event');
    assert.equal(closes[0]!.code, 1001);
    assert.equal(closes[0]!.reason, 'server shutting down');
    assert.equal(closes[0]!.willReconnect, true);
    server = await wireServer(port);
    await until(() => server.subscribers('news').size === 1, 'resubscribed');
    assert.deepEqual(opens, [false, true]);
    server.publish('news', 'after');
    await until(() => got.length === 2, 'delivery after the restart');
    assert.deepEqual(got, ['before', 'after']);
  } finally {
    client.close();
    await server.close();
  }
});

test('client: a resubscription carries the last offset seen as since', { timeout: 20000 }, async () => {
  // A bare ws server that speaks the protocol by hand: deliveries with offsets, then a drop.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const subs: Record<string, unknown>[] = [];
  let round = 0;
  wss.on('connection', (sock) => {
    const mine = ++round;
    sock.on('message', (raw) => {
      const m = JSON.parse(String(raw).slice(1)) as Record<string, unknown>;
      if (m.t !== 'sub') return;
      subs.push(m);
      sock.send(`\u001e${JSON.stringify({ t: 'ok', id: m.id })}`);
      if (mine === 1) {
        sock.send(`\u001e${JSON.stringify({ t: 'msg', topic: 'news', data: 'a', offset: '1-0' })}`);
        sock.send(`\u001e${JSON.stringify({ t: 'msg', topic: 'news', data: 'b', offset: '2-0' })}`, () => sock.terminate());
      }
    });
  });
  const client = new SwitchboardClient(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`, opts);
  const offsets: (string | undefined)[] = [];
  try {
    await client.subscribe('news', (_d, info) => offsets.push(info.offset));
    await until(() => subs.length === 2, 'the resubscription');
    assert.deepEqual(offsets, ['1-0', '2-0']);
    assert.equal(subs[0]!.since, undefined);
    assert.equal(subs[1]!.since, '2-0');
  } finally {
    client.close();
    await new Promise((r) => wss.close(r));
  }
});

test('client: after a dropped link it resumes from its last offset on a hub with history: what it missed once, in order, then live', { timeout: 20000 }, async () => {
  const server = await wireServer(0, { hub: 'memory' });
  const client = new SwitchboardClient<Topics>(server.addresses[0]!, opts);
  const got: string[] = [];
  const offsets: (string | undefined)[] = [];
  try {
    await client.subscribe('news', (text, info) => { got.push(text); offsets.push(info.offset); });
    server.publish('news', 'a');
    server.publish('news', 'b');
    await until(() => got.length === 2, 'live deliveries');
    // The server drops the link; what is published before the client is back, it must still get.
    const [conn] = server.subscribers('news');
    conn!.on('close', () => { server.publish('news', 'c'); server.publish('news', 'd'); });
    conn!.close(1012, 'restart');
    await until(() => got.length === 4, 'the missed messages after the reconnect');
    server.publish('news', 'e');
    await until(() => got.length === 5, 'live again');
    assert.deepEqual(got, ['a', 'b', 'c', 'd', 'e']);
    assert.ok(offsets.every((o) => typeof o === 'string'), `every delivery has an offset: ${String(offsets)}`);
    assert.equal(new Set(offsets).size, 5);
  } finally {
    client.close();
    await server.close();
  }
});

test('chat page\'s way in (?client): the first subscribe gets the last lines, a dropped link resumes from the last offset, once each', { timeout: 20000 }, async () => {
  const server = await chatServer({ listen: 'ws://127.0.0.1:0', log: () => {}, historyLines: 3, noticeInterval: 0, rateLimit: false });
  const url = `${server.addresses[0]!}?client`;
  for (const line of ['one', 'two', 'three', 'four']) server.publish('chat', `ann: ${line}`);
  const client = new SwitchboardClient(url, opts);
  const got: string[] = [];
  try {
    await client.subscribe('chat', (text: unknown) => { if (String(text).startsWith('ann: ')) got.push(String(text)); }, { last: 3 });
    // The last 3 of the room: two of ann's lines and the client's own join notice (said on connect).
    await until(() => got.length === 2, 'the last lines');
    assert.deepEqual(got, ['ann: three', 'ann: four']);
    // Not subscribed by the chat itself as well: every line comes once, in the envelope.
    server.publish('chat', 'ann: five');
    await until(() => got.length === 3, 'live');
    const conn = [...server.subscribers('chat')].find((c) => c.request?.url.includes('?client'));
    assert.ok(conn, 'the client is in the room');
    conn.on('close', () => { server.publish('chat', 'ann: six'); server.publish('chat', 'ann: seven'); });
    conn.close(1012, 'restart');
    await until(() => got.length === 5, 'what was said while it was away');
    server.publish('chat', 'ann: eight');
    await until(() => got.length === 6, 'live again');
    assert.deepEqual(got, ['ann: three', 'ann: four', 'ann: five', 'ann: six', 'ann: seven', 'ann: eight']);
  } finally {
    client.close();
    await server.close();
  }
});

test('client: a server that stops answering without closing (SIGSTOP) is noticed within pingInterval + pingTimeout, and the client comes back when it does', { timeout: 30000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./client-fixture.ts', import.meta.url).pathname, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const port = Number((await until(() => /listening (\d+)/.exec(out), 'the child listens', 15000))![1]);
    const client = new SwitchboardClient(`ws://127.0.0.1:${port}`, { ...opts, pingInterval: 200, pingTimeout: 300, connectTimeout: 500 });
    const closes: ClientCloseInfo[] = [];
    let opens = 0;
    client.on('close', (c) => closes.push(c));
    client.on('open', () => opens++);
    try {
      await until(() => opens === 1, 'open');
      child.kill('SIGSTOP');
      // Bound, not timing: the link is dead for good while stopped, so only the ping can notice it.
      await until(() => closes.length > 0, 'the dead link noticed', 5000);
      assert.match(closes[0]!.reason, /no answer to a ping within 300 ms/);
      child.kill('SIGCONT');
      await until(() => opens >= 2 && client.state === 'open', 'back after SIGCONT', 15000);
    } finally {
      client.close();
    }
  } finally {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});

test('client: Node 20 without a WebSocket asks for one', () => {
  const g = globalThis as { WebSocket?: unknown };
  if (g.WebSocket !== undefined) return;
  assert.throws(() => new SwitchboardClient('ws://127.0.0.1:1'), (err: ClientError) => err.code === 'ERR_NO_WEBSOCKET');
});
