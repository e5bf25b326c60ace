/**
 * The wire protocol's server side (src/core/topics-wire.ts) from the caller's side: a raw text://
 * peer writing RS-marked JSON lines and a `ws` client, beside plain peers on the same listeners.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Server, WIRE_MARK, type Hub } from '../src/index.js';
import { RawPeer, portOf, until } from './helpers.js';

const RS = WIRE_MARK;
const line = (o: unknown): string => `${RS}${JSON.stringify(o)}\n`;
/** The protocol messages a raw peer received, parsed (plain lines left out). */
function wireOf(text: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l.startsWith(RS)).map((l) => JSON.parse(l.slice(1)) as Record<string, unknown>);
}

test('wire: subscribe, publish with ack, plain subscribers get plain lines, framed ones the envelope; refusals carry the reason', { timeout: 20000 }, async () => {
  const server = new Server({
    listen: ['text://127.0.0.1:0', 'ws://127.0.0.1:0'],
    wire: {
      authorize: async (_conn, action, topic) => {
        await new Promise((r) => setTimeout(r, 5)); // async: answers still come in order
        if (topic.startsWith('secret')) return `no ${action} on ${topic} for you`;
        return action !== 'publish' || topic !== 'readonly';
      },
    },
  });
  const plainSeen: string[] = [];
  server.on('connection', (conn) => {
    conn.subscribe('room'); // server code: plain deliveries
    conn.on('message', (m) => plainSeen.push(String(m)));
  });
  await server.listen();
  const a = await RawPeer.connect(portOf(server.addresses[0]!));
  const nc = await RawPeer.connect(portOf(server.addresses[0]!));
  const ws = new WebSocket(server.addresses[1]!);
  const wsGot: string[] = [];
  ws.on('message', (d) => wsGot.push(String(d)));
  await new Promise((r) => ws.once('open', r));
  try {
    await until(() => server.connections.size === 3, 'three connections');
    // The ws client takes 'room' in the protocol's envelope (over its plain server-side subscription).
    ws.send(`${RS}${JSON.stringify({ t: 'sub', topic: 'room', id: 'w1' })}`);
    await until(() => wsGot.some((m) => m.includes('"w1"')), 'ws sub ok');
    assert.deepEqual(JSON.parse(wsGot.find((m) => m.includes('"w1"'))!.slice(1)), { t: 'ok', id: 'w1' });

    a.write(line({ t: 'sub', topic: 'secret/x', id: 1 }) + line({ t: 'pub', topic: 'readonly', data: 'x', id: 2 }) + line({ t: 'pub', topic: 'room', data: 'hello', id: 3 }) + 'a plain line\n');
    await a.until((t) => wireOf(t).some((m) => m.id === 3));
    const answers = wireOf(a.text);
    assert.deepEqual(answers.map((m) => m.id), [1, 2, 3], 'answered in order');
    assert.deepEqual(answers[0], { t: 'err', id: 1, op: 'sub', topic: 'secret/x', reason: 'no subscribe on secret/x for you' });
    assert.deepEqual(answers[1], { t: 'err', id: 2, op: 'pub', topic: 'readonly', reason: 'not allowed' });
    assert.deepEqual(answers[2], { t: 'ok', id: 3 });
    // The nc user gets the publish as a plain line, the ws client in the envelope; protocol messages never reach the app.
    await nc.until((t) => t.includes('hello\n'));
    assert.ok(!nc.text.includes(RS), 'a plain peer gets no protocol messages');
    await until(() => wsGot.some((m) => m.includes('"msg"')), 'framed delivery');
    assert.deepEqual(JSON.parse(wsGot.find((m) => m.includes('"msg"'))!.slice(1)), { t: 'msg', topic: 'room', data: 'hello' });
    await until(() => plainSeen.includes('a plain line'), 'plain line delivered');
    assert.ok(!plainSeen.some((m) => m.startsWith(RS)), 'the application sees no protocol message');

    // Server code publishes too; binary goes as base64.
    server.publish('room', Buffer.from([0, 1, 2]));
    await until(() => wsGot.some((m) => m.includes('"bin"')), 'binary framed');
    assert.deepEqual(JSON.parse(wsGot.find((m) => m.includes('"bin"'))!.slice(1)), { t: 'msg', topic: 'room', bin: 'AAEC' });
    // The publisher is left out of its own publish.
    assert.ok(!a.text.includes('\nhello\n') && !a.text.startsWith('hello\n'));
  } finally {
    a.destroy(); nc.destroy(); ws.terminate();
    await server.close();
  }
});

test('wire: requests get replies or errors (no handler, a throw, a timeout); malformed and over-limit messages are answered, the connection stays', { timeout: 20000 }, async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0', wire: { requestTimeout: 200, maxTopics: 2, maxPending: 3, maxTopicLength: 8, maxIdLength: 4 } });
  server.wire!.handle('add', (_c, data) => { const { a, b } = data as { a: number; b: number }; return a + b; })
    .handle('boom', () => { throw new Error('it broke'); })
    .handle('never', () => new Promise(() => {}));
  await server.listen();
  const p = await RawPeer.connect(portOf(server.addresses[0]!));
  try {
    p.write(line({ t: 'req', topic: 'add', id: 1, data: { a: 2, b: 3 } }) + line({ t: 'req', topic: 'nope', id: 2 }) + line({ t: 'req', topic: 'boom', id: 3 }));
    await p.until((t) => wireOf(t).length >= 3);
    const got = new Map(wireOf(p.text).map((m) => [m.id, m]));
    assert.deepEqual(got.get(1), { t: 'res', id: 1, data: 5 });
    assert.equal(got.get(2)!.reason, 'no handler for nope');
    assert.equal(got.get(3)!.reason, 'it broke');

    p.write(line({ t: 'req', topic: 'never', id: 4 }));
    await p.until((t) => wireOf(t).some((m) => m.id === 4), 5000);
    assert.deepEqual(wireOf(p.text).find((m) => m.id === 4), { t: 'err', id: 4, op: 'req', topic: 'never', reason: 'timed out' });

    // Pending bound: three requests that never answer, a fourth is refused at once.
    p.write(line({ t: 'req', topic: 'never', id: 5 }) + line({ t: 'req', topic: 'never', id: 6 }) + line({ t: 'req', topic: 'never', id: 7 }) + line({ t: 'req', topic: 'add', id: 8, data: { a: 1, b: 1 } }));
    await p.until((t) => wireOf(t).some((m) => m.id === 8));
    assert.equal(wireOf(p.text).find((m) => m.id === 8)!.reason, 'too many pending operations (at most 3)');
    await p.until((t) => [5, 6, 7].every((id) => wireOf(t).some((m) => m.id === id)), 5000); // their timeouts free the slots

    p.write(`${RS}not json\n` + line({ t: 'jump' }) + line({ t: 'sub', topic: 'much-too-long' }) + line({ t: 'sub', topic: 'x', id: 'toolong' })
      + line({ t: 'sub', topic: 't1', id: 9 }) + line({ t: 'sub', topic: 't2', id: 10 }) + line({ t: 'sub', topic: 't3', id: 11 }) + line({ t: 'ping', id: 12 }));
    await p.until((t) => wireOf(t).some((m) => m.id === 12));
    const reasons = wireOf(p.text).filter((m) => m.t === 'err').map((m) => m.reason);
    assert.ok(reasons.includes('malformed message: not a JSON object'));
    assert.ok(reasons.includes('unknown message type "jump"'));
    assert.ok(reasons.includes('topic too long (at most 8)'));
    assert.ok(reasons.some((r) => /id must be a number or a string of at most 4/.test(String(r))));
    assert.equal(wireOf(p.text).find((m) => m.id === 11)!.reason, 'too many topics (at most 2)');
    assert.deepEqual(wireOf(p.text).find((m) => m.id === 12), { t: 'pong', id: 12 });
    assert.equal(server.connections.size, 1, 'bad input is answered, not fatal');
  } finally {
    p.destroy();
    await server.close();
  }
});

test('wire off (the default): an RS-marked line is a plain message', { timeout: 10000 }, async () => {
  const server = new Server({ listen: 'text://127.0.0.1:0' });
  const seen: string[] = [];
  server.on('connection', (c) => c.on('message', (m) => seen.push(String(m))));
  await server.listen();
  const p = await RawPeer.connect(portOf(server.addresses[0]!));
  try {
    p.write(line({ t: 'ping' }));
    await until(() => seen.length === 1, 'delivered');
    assert.equal(seen[0], `${RS}{"t":"ping"}`);
  } finally {
    p.destroy();
    await server.close();
  }
});

test('wire: a publish that comes through the hub from another server reaches framed subscribers in the envelope and plain ones plain', { timeout: 10000 }, async () => {
  // Two Servers joined by a small in-test hub (each one's publishes go to the other's listener), as Redis would join processes.
  const listeners: ((topic: string, data: string | Buffer) => void)[] = [];
  const hubFor = (me: number): Hub => ({
    kind: 'test', setListener: (l) => { listeners[me] = l; }, subscribe: () => {}, unsubscribe: () => {},
    publish: (topic, data) => listeners[1 - me]?.(topic, data), ready: async () => {}, close: async () => {},
  });
  const a = new Server({ listen: 'text://127.0.0.1:0', wire: true, hub: hubFor(0) });
  const b = new Server({ listen: 'text://127.0.0.1:0', wire: true, hub: hubFor(1) });
  b.on('connection', (c) => c.subscribe('room'));
  await a.listen();
  await b.listen();
  const framed = await RawPeer.connect(portOf(b.addresses[0]!));
  const plain = await RawPeer.connect(portOf(b.addresses[0]!));
  try {
    framed.write(line({ t: 'sub', topic: 'room', id: 1 }));
    await framed.until((t) => wireOf(t).some((m) => m.id === 1));
    await until(() => b.subscribers('room').size === 2, 'both in the room');
    a.publish('room', 'from A');
    await plain.until((t) => t.includes('from A\n'));
    await framed.until((t) => wireOf(t).some((m) => m.t === 'msg'));
    assert.deepEqual(wireOf(framed.text).find((m) => m.t === 'msg'), { t: 'msg', topic: 'room', data: 'from A' });
    assert.ok(!framed.text.split('\n').includes('from A'), 'the framed subscriber gets it once, in the envelope');
  } finally {
    framed.destroy(); plain.destroy();
    await a.close();
    await b.close();
  }
});
