/**
 * One error vocabulary: a closed ErrorCode union with one kind per code (local misuse, remote
 * fault, system failure), told apart by the caller over real sockets; Node's errors wrapped with
 * `cause`; close codes named per protocol (a line error is not WebSocket's 1009).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import WebSocket from 'ws';
import {
  CloseCode, ERROR_CODES, HandshakeRefusedError, ProtocolError, Server, StreamCloseCode, SwitchboardError, SYSTEM_ERROR_CODES,
  connect, isErrorCode, kindOf, type CloseInfo, type Connection,
} from '../src/index.js';
import { transportError } from '../src/errors.js';
import { RawPeer, freePort, portOf, waitFor } from './helpers.js';

const T = { timeout: 10_000 };

/** A server on `url` whose connections are recorded with their close info. */
async function recording(url: string, options: Record<string, unknown> = {}): Promise<{ server: Server; conns: Connection[]; closes: Map<Connection, CloseInfo> }> {
  const server = new Server({ listen: url, ...options });
  const conns: Connection[] = [];
  const closes = new Map<Connection, CloseInfo>();
  server.on('connection', (c) => {
    conns.push(c);
    c.on('message', (m) => c.send(m));
    c.on('close', (info) => closes.set(c, info));
  });
  await server.listen();
  return { server, conns, closes };
}

test('the union is closed and documented once: every own code has a kind, Node\'s system codes are all in it, the README lists the same', () => {
  for (const [code, kind] of Object.entries(ERROR_CODES)) {
    assert.ok(['local', 'remote', 'system'].includes(kind), code);
    assert.equal(new SwitchboardError(code as keyof typeof ERROR_CODES, 'x').kind, kind);
  }
  // Whatever errno name Node (libuv) or node:dns can give passes through as a member of the union.
  for (const [name] of getSystemErrorMap().values()) assert.ok(isErrorCode(name), `${name} is in SYSTEM_ERROR_CODES`);
  for (const v of Object.values(dns)) if (typeof v === 'string' && /^E[A-Z_]+$/.test(v)) assert.ok(isErrorCode(v), `dns ${v}`);
  assert.equal(kindOf('ECONNREFUSED'), 'system');
  assert.equal(isErrorCode('ERR_NO_SUCH_RULE'), false);
  assert.equal(new Set(SYSTEM_ERROR_CODES).size, SYSTEM_ERROR_CODES.length);
  for (const code of SYSTEM_ERROR_CODES) assert.ok(!Object.hasOwn(ERROR_CODES, code), `${code} is one list only`);

  // The README's Errors table: the same codes, with the same kinds, nothing more.
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('### Limits'));
  const rows = [...section.matchAll(/^\| `([A-Z0-9_]+)` \| (local|remote|system) \|/gm)].map((m) => [m[1]!, m[2]!]);
  assert.deepEqual(Object.fromEntries(rows), { ...ERROR_CODES });
  assert.equal(rows.length, Object.keys(ERROR_CODES).length, 'each code once');
});

test('transportError: Node\'s code kept with the error as cause; an OpenSSL code is ERR_TLS; no code is the fallback', () => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const a = transportError(reset, 'ERR_SOCKET');
  assert.deepEqual([a.code, a.kind, a.message, a.cause], ['ECONNRESET', 'system', 'read ECONNRESET', reset]);
  const ssl = Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
  assert.equal(transportError(ssl, 'ERR_CONNECT').code, 'ERR_TLS');
  const bare = new Error('socket hang up');
  assert.equal(transportError(bare, 'ERR_CONNECT').code, 'ERR_CONNECT');
  assert.equal(transportError(bare, 'ERR_CONNECT').cause, bare);
  const own = new SwitchboardError('ERR_RATE_LIMIT', 'x');
  assert.equal(transportError(own, 'ERR_SOCKET'), own, 'a SwitchboardError passes as it is');
});

test('a remote fault over text://: an over-long line is a remote ERR_LINE_TOO_LONG, reported as 1006, not WebSocket\'s 1009', T, async () => {
  const { server, conns, closes } = await recording('text://127.0.0.1:0', { maxMessageSize: 64 });
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    peer.write('short\n' + 'x'.repeat(200) + '\n');
    await peer.untilClosed(5000);
    assert.equal(peer.text, 'short\nerror: line longer than the limit of 64 bytes\n', 'the line before it was answered, then told why');
    await waitFor(() => closes.size === 1);
    const info = closes.get(conns[0]!)!;
    assert.ok(info.error instanceof ProtocolError);
    assert.equal(info.error.code, 'ERR_LINE_TOO_LONG');
    assert.equal(info.error.kind, 'remote');
    assert.equal(info.code, StreamCloseCode.ABNORMAL);
    assert.notEqual(info.code, CloseCode.MESSAGE_TOO_BIG);
    assert.equal(info.error.closeCode, StreamCloseCode.ABNORMAL);
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('a remote fault over frame:// is ERR_PAYLOAD_TOO_LARGE and 1006; over WebSocket the same rule is 1009', T, async () => {
  const frame = await recording('frame://127.0.0.1:0', { maxMessageSize: 64 });
  const ws = await recording('ws://127.0.0.1:0/', { maxMessageSize: 64 });
  try {
    const peer = await RawPeer.connect(portOf(frame.server.addresses[0]!));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1000);
    peer.write(head);
    await peer.untilClosed(5000);
    await waitFor(() => frame.closes.size === 1);
    const f = [...frame.closes.values()][0]!;
    assert.deepEqual([f.code, f.error?.code, f.error?.kind], [1006, 'ERR_PAYLOAD_TOO_LARGE', 'remote']);

    const client = new WebSocket(`ws://127.0.0.1:${portOf(ws.server.addresses[0]!)}/`);
    const closed = new Promise<number>((resolve) => client.on('close', (code) => resolve(code)));
    await new Promise((resolve) => client.on('open', resolve));
    client.send('y'.repeat(100));
    assert.equal(await closed, CloseCode.MESSAGE_TOO_BIG, 'the ws peer was told 1009');
    await waitFor(() => ws.closes.size === 1);
    const w = [...ws.closes.values()][0]!;
    assert.deepEqual([w.code, w.error?.code, w.error?.kind], [1009, 'ERR_PAYLOAD_TOO_LARGE', 'remote']);
  } finally {
    await frame.server.close();
    await ws.server.close();
  }
});

test('local misuse over a real WebSocket: a close code that may not be sent and an over-long ping throw local errors and leave the connection open', T, async () => {
  const { server, conns, closes } = await recording('ws://127.0.0.1:0/');
  try {
    const client = await connect(server.addresses[0]!);
    await waitFor(() => conns.length === 1);
    const misuse = (f: () => unknown): SwitchboardError => {
      try {
        f();
      } catch (err) {
        assert.ok(err instanceof SwitchboardError);
        return err;
      }
      return assert.fail('did not throw');
    };
    const e1 = misuse(() => client.close(1006, 'reserved'));
    assert.deepEqual([e1.code, e1.kind], ['ERR_INVALID_OPTION', 'local']);
    assert.ok(!(e1 instanceof ProtocolError), 'not a peer\'s fault');
    const e2 = misuse(() => client.ping(Buffer.alloc(126)));
    assert.deepEqual([e2.code, e2.kind], ['ERR_INVALID_OPTION', 'local']);
    // Still open: the same connection echoes, then closes cleanly.
    assert.equal(client.readyState, 'open');
    const it = client[Symbol.asyncIterator]();
    client.send('still here');
    assert.equal((await it.next()).value, 'still here');
    client.close(1000, 'done');
    const info = await client.closed();
    assert.deepEqual([info.code, info.error], [1000, undefined]);
    // After close, send() is no error (a send racing a peer's close is not a bug): false, nothing sent.
    assert.equal(client.send('late'), false);
    await waitFor(() => closes.size === 1);
    assert.deepEqual([closes.get(conns[0]!)!.code, closes.get(conns[0]!)!.reason], [1000, 'done']);
  } finally {
    await server.close();
  }
});

test('a refused connect is a system error with Node\'s code and Node\'s error as cause; a port in use too', T, async () => {
  const port = await freePort();
  const err = await connect(`text://127.0.0.1:${port}`).then(() => assert.fail('connected'), (e: unknown) => e);
  assert.ok(err instanceof SwitchboardError);
  assert.deepEqual([err.code, err.kind], ['ECONNREFUSED', 'system']);
  assert.ok(err.cause instanceof Error);
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');

  const taken = new Server({ listen: 'text://127.0.0.1:0' });
  await taken.listen();
  try {
    const second = new Server({ listen: taken.addresses[0]! });
    const e = await second.listen().then(() => assert.fail('listened twice'), (x: unknown) => x);
    assert.ok(e instanceof SwitchboardError);
    assert.deepEqual([e.code, e.kind], ['EADDRINUSE', 'system']);
    assert.equal((e.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
    await second.close();
  } finally {
    await taken.close();
  }
});

test('TLS spoken to a plain server: a system ERR_TLS whose cause is OpenSSL\'s error', T, async () => {
  const plain = net.createServer((s) => s.end('hello, this is not TLS\n'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  try {
    const port = (plain.address() as net.AddressInfo).port;
    const err = await connect(`tls+text://127.0.0.1:${port}`, { connectTimeout: 5000 }).then(() => assert.fail('connected'), (e: unknown) => e);
    assert.ok(err instanceof SwitchboardError, String(err));
    const cause = err.cause as NodeJS.ErrnoException;
    assert.ok(cause instanceof Error);
    // OpenSSL's code is outside the union: ERR_TLS; a code Node shares with libuv (a reset) is kept.
    if (/^ERR_SSL_/.test(String(cause.code))) assert.equal(err.code, 'ERR_TLS');
    else assert.equal(err.code, cause.code);
    assert.equal(err.kind, 'system');
  } finally {
    plain.close();
  }
});

test('stream close codes: a clean end is 1000 whatever code core asked for, an end for an error 1006', T, async () => {
  const { server, conns, closes } = await recording('text://127.0.0.1:0', { idleTimeout: 200 });
  try {
    const port = portOf(server.addresses[0]!);
    // The peer ends: clean.
    const a = await RawPeer.connect(port);
    await waitFor(() => conns.length === 1);
    a.socket.end();
    await waitFor(() => closes.size === 1);
    assert.deepEqual(closes.get(conns[0]!), { code: 1000, reason: '' });
    // close() with an application code: text:// sends no code, so it reports a clean 1000 (the reason stays).
    const b = await RawPeer.connect(port);
    await waitFor(() => conns.length === 2);
    conns[1]!.close(4000, 'bye');
    await b.untilClosed();
    await waitFor(() => closes.size === 2);
    assert.deepEqual(closes.get(conns[1]!), { code: 1000, reason: 'bye' });
    // Idle: the server closes for a remote fault (WebSocket would say 1001): 1006 with the error.
    const c = await RawPeer.connect(port);
    await c.untilClosed(5000);
    await waitFor(() => closes.size === 3);
    const idle = closes.get(conns[2]!)!;
    assert.deepEqual([idle.code, idle.error?.code, idle.error?.kind], [1006, 'ERR_IDLE_TIMEOUT', 'remote']);
    b.destroy();
    a.destroy();
    c.destroy();
  } finally {
    await server.close();
  }
});

test('a refused WebSocket upgrade is a remote HandshakeRefusedError', T, async () => {
  const server = new Server({ listen: 'ws://127.0.0.1:0/', websocket: { verifyClient: () => ({ status: 403, reason: 'no' }) } });
  await server.listen();
  try {
    const err = await connect(server.addresses[0]!).then(() => assert.fail('connected'), (e: unknown) => e);
    assert.ok(err instanceof HandshakeRefusedError);
    assert.deepEqual([err.code, err.kind, err.status], ['ERR_HANDSHAKE', 'remote', 403]);
  } finally {
    await server.close();
  }
});
