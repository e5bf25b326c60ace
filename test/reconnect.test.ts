import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, reconnecting, backoffDelay } from '../src/index.js';
import { portOf, waitFor } from './helpers.js';

test('backoff grows exponentially up to the cap, with jitter inside its band', () => {
  const o = { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };
  assert.equal(backoffDelay(1, { ...o, random: () => 0 }), 50);
  assert.equal(backoffDelay(1, { ...o, random: () => 1 }), 100);
  assert.equal(backoffDelay(3, { ...o, random: () => 1 }), 400);
  assert.equal(backoffDelay(10, { ...o, random: () => 1 }), 1000);
  assert.equal(backoffDelay(10, { ...o, random: () => 0 }), 500);
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(2, o);
    assert.ok(d >= 100 && d <= 200, String(d));
  }
});

test('a ws client reconnects after the server drops it and after the server restarts', { timeout: 15000 }, async () => {
  const start = async (port: number): Promise<Server> => {
    const s = new Server({ listen: `ws://127.0.0.1:${port}` });
    s.on('connection', (c) => c.on('message', (m) => c.send(`echo ${String(m)}`)));
    return s.listen();
  };
  let server = await start(0);
  const port = portOf(server.addresses[0]!);
  const events: string[] = [];
  const got: string[] = [];
  const client = reconnecting(server.addresses[0]!, { reconnect: { initialDelay: 20, maxDelay: 200 } });
  client.on('open', (_c, info) => { events.push(info.reconnected ? 'reopen' : 'open'); client.send(`hello ${events.length}`); });
  client.on('reconnecting', (i) => events.push(`retry${i.attempt}`));
  client.on('message', (m) => got.push(String(m)));
  try {
    await waitFor(() => got.length === 1, 3000, 'first echo');
    // The server drops every connection: the client comes back by itself.
    for (const c of server.connections) c.close(1001, 'bye');
    await waitFor(() => got.length === 2, 3000, 'echo after reconnect');
    // The server goes away for a while, then returns on the same port.
    await server.close();
    await waitFor(() => events.filter((e) => e.startsWith('retry')).length >= 3, 5000, 'retries while down');
    server = await start(port);
    await waitFor(() => got.length === 3, 5000, 'echo after restart');
    assert.equal(events[0], 'open');
    assert.ok(events.filter((e) => e === 'reopen').length >= 2);
    assert.match(got.join('|'), /^echo hello 1\|echo hello \d+\|echo hello \d+$/);
    const ended = new Promise((r) => client.once('end', r));
    client.close();
    assert.deepEqual(await ended, { reason: 'closed' });
  } finally {
    client.close();
    await server.close();
  }
});

test('maxAttempts: gives up and says so', { timeout: 5000 }, async () => {
  const s = await new Server({ listen: 'text://127.0.0.1:0' }).listen();
  const url = s.addresses[0]!;
  await s.close();
  const client = reconnecting(url, { reconnect: { initialDelay: 5, maxAttempts: 2 } });
  const retries: number[] = [];
  client.on('reconnecting', (i) => retries.push(i.attempt));
  const end = await new Promise<{ reason: string; error?: Error }>((r) => client.once('end', r));
  assert.equal(end.reason, 'gave up');
  assert.match(String(end.error?.message), /ECONNREFUSED/);
  assert.deepEqual(retries, [1, 2]);
});

test("the README's reconnecting() example: 'message' listeners get what the chat says first", { timeout: 15000 }, async () => {
  const { chatServer } = await import('../src/apps/index.js');
  const server = await chatServer({ listen: 'ws://127.0.0.1:0', log: () => {} });
  try {
    const client = reconnecting(server.addresses[0]!, { reconnect: { initialDelay: 500, maxDelay: 30_000, jitter: 0.5 } });
    const got: string[] = [];
    client.on('open', (_conn, { reconnected }) => client.send(reconnected ? 'back again' : 'hello'));
    client.on('message', (m) => got.push(String(m)));
    await waitFor(() => got.some((m) => /you are guest/.test(m)), 5000, 'the banner');
    client.close();
  } finally {
    await server.close();
  }
});
