// switchboard/sockets over real TCP and Unix sockets: reads, writes, select, errors, options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AF_INET, AF_INET6, AF_UNIX, MSG_DONTWAIT, MSG_OOB, MSG_PEEK, MSG_WAITALL, PHP_NORMAL_READ, SOCK_DGRAM, SOCK_RAW, SOCK_RDM,
  SOCK_SEQPACKET, SOCK_STREAM, SOL_SOCKET, SOL_TCP, SOL_UDP, SO_ERROR, SO_KEEPALIVE, SO_RCVBUF, SO_RCVTIMEO, SO_REUSEADDR,
  SO_TYPE, TCP_NODELAY, type Socket, socket_accept, socket_bind, socket_clear_error, socket_close, socket_connect,
  socket_create, socket_create_listen, socket_create_pair, socket_get_option, socket_getpeername, socket_getsockname,
  socket_last_error, socket_last_error_detail, socket_listen, socket_read, socket_recv, socket_select, socket_send,
  socket_set_encoding, socket_set_nonblock, socket_set_option, socket_shutdown, socket_strerror, socket_write,
  fsockopen, fwrite,
} from '../src/sockets/index.js';

const T = { timeout: 5000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function create(domain = AF_INET, type = SOCK_STREAM, protocol = 0): Socket {
  const s = socket_create(domain, type, protocol);
  assert.ok(s, 'socket_create');
  return s;
}

async function listener(host = '127.0.0.1', domain = AF_INET): Promise<{ server: Socket; port: number }> {
  const server = create(domain);
  assert.equal(await socket_bind(server, host, 0), true);
  assert.equal(await socket_listen(server, 10), true);
  const name = { address: '', port: 0 };
  assert.ok(socket_getsockname(server, name));
  return { server, port: name.port };
}

/** A connected pair over loopback TCP: [client, accepted]. */
async function tcpPair(): Promise<{ client: Socket; peer: Socket; server: Socket; port: number }> {
  const { server, port } = await listener();
  const client = create();
  assert.equal(await socket_connect(client, '127.0.0.1', port), true);
  const peer = await socket_accept(server);
  assert.ok(peer);
  return { client, peer, server, port };
}

function closeAll(...ss: Socket[]): void {
  for (const s of ss) socket_close(s);
}

test('echo round trip, peer and local names', T, async () => {
  const { client, peer, server, port } = await tcpPair();
  assert.equal(await socket_write(client, 'Hello Server'), 12);
  assert.equal(await socket_read(peer, 1024), 'Hello Server');
  assert.equal(await socket_write(peer, 'revreS olleH\n'), 13);
  assert.equal(await socket_read(client, 1024), 'revreS olleH\n');
  const p = { address: '', port: 0 };
  assert.ok(socket_getpeername(client, p));
  assert.deepEqual(p, { address: '127.0.0.1', port });
  const mine = { address: '', port: 0 };
  assert.ok(socket_getsockname(client, mine));
  const theirs = { address: '', port: 0 };
  assert.ok(socket_getpeername(peer, theirs));
  assert.deepEqual(theirs, mine);
  closeAll(client, peer, server);
});

test('connect to a closed port fails with 111 "Connection refused"', T, async () => {
  const { server, port } = await listener();
  socket_close(server);
  await sleep(20);
  const s = create();
  socket_clear_error();
  assert.equal(await socket_connect(s, '127.0.0.1', port), false);
  assert.equal(socket_last_error(s), 111);
  assert.equal(socket_last_error(), 111);
  assert.equal(socket_strerror(socket_last_error(s)), 'Connection refused');
  assert.match(socket_last_error_detail(s), /unable to connect \[111\]/);
  socket_clear_error(s);
  assert.equal(socket_last_error(s), 0);
  socket_close(s);
});

test('bind to a taken port fails with 98 "Address already in use"', T, async () => {
  const { server, port } = await listener();
  const s = create();
  assert.equal(await socket_bind(s, '127.0.0.1', port), false);
  assert.equal(socket_last_error(s), 98);
  assert.equal(socket_strerror(98), 'Address already in use');
  closeAll(s, server);
});

test('what Node cannot offer fails with the errno Linux gives and says why', T, () => {
  for (const [domain, type, protocol, errno] of [
    [AF_INET, SOCK_RAW, 1, 94], [AF_INET, SOCK_SEQPACKET, 0, 94], [AF_INET, SOCK_RDM, 0, 94],
    [AF_INET, SOCK_STREAM, SOL_UDP, 93], [99, SOCK_STREAM, 0, 97],
  ] as const) {
    socket_clear_error();
    assert.equal(socket_create(domain, type, protocol), false);
    assert.equal(socket_last_error(), errno);
  }
  // Unix datagram sockets come from the sockets addon (test/sockets-msg.test.ts); without it, 94.
  if (process.env.SWITCHBOARD_SOCKETS_NATIVE === '0') assert.equal(socket_create(AF_UNIX, SOCK_DGRAM, 0), false);
  socket_create(AF_INET, SOCK_RAW, 1);
  assert.equal(socket_strerror(socket_last_error()), 'Socket type not supported');
  assert.match(socket_last_error_detail(), /Node\.js offers no SOCK_RAW/);
  assert.equal(socket_strerror(93), 'Protocol not supported');
  assert.equal(socket_strerror(97), 'Address family not supported by protocol');
  assert.equal(socket_strerror(11), 'Resource temporarily unavailable');
  assert.equal(socket_strerror(104), 'Connection reset by peer');
  assert.equal(socket_strerror(4242), 'Unknown error 4242');
  assert.throws(() => socket_close(false as unknown as Socket), /must be of type Socket, bool given/);
});

test('non-blocking: read and accept fail at once with 11 EAGAIN, connect with 115 then select says writable', T, async () => {
  const { client, peer, server, port } = await tcpPair();
  socket_set_nonblock(peer);
  assert.equal(await socket_read(peer, 100), false);
  assert.equal(socket_last_error(peer), 11);
  const ref = { data: 'x' as string | null };
  assert.equal(await socket_recv(client, ref, 10, MSG_DONTWAIT), false);
  assert.equal(socket_last_error(client), 11);
  assert.equal(ref.data, null);
  await socket_write(client, 'ping');
  const w = await socket_select([peer], null, null, 2);
  assert.equal(w, 1);
  assert.equal(await socket_read(peer, 100), 'ping');

  socket_set_nonblock(server);
  assert.equal(await socket_accept(server), false);
  assert.equal(socket_last_error(server), 11);

  const c2 = create();
  socket_set_nonblock(c2);
  assert.equal(await socket_connect(c2, '127.0.0.1', port), false);
  assert.equal(socket_last_error(c2), 115);
  const write = [c2];
  assert.equal(await socket_select(null, write, null, 2), 1);
  assert.equal(socket_get_option(c2, SOL_SOCKET, SO_ERROR), 0);
  const read = [server];
  assert.equal(await socket_select(read, null, null, 2), 1, 'a pending connection makes the listener readable');
  const p2 = await socket_accept(server);
  assert.ok(p2);
  closeAll(client, peer, c2, p2, server);
});

test('MSG_PEEK leaves the data for the next read', T, async () => {
  const { client, peer, server } = await tcpPair();
  await socket_write(client, 'peekaboo');
  const ref = { data: null as string | null };
  assert.equal(await socket_recv(peer, ref, 4, MSG_PEEK), 4);
  assert.equal(ref.data, 'peek');
  assert.equal(await socket_recv(peer, ref, 100, MSG_PEEK | MSG_WAITALL | MSG_DONTWAIT), false, 'waitall+dontwait with too little');
  assert.equal(await socket_read(peer, 100), 'peekaboo');
  assert.equal(await socket_recv(peer, ref, 1, MSG_OOB), false);
  assert.equal(socket_last_error(peer), 22);
  closeAll(client, peer, server);
});

test('MSG_WAITALL gathers several writes; EOF ends it early; recv gives 0 and null at EOF', T, async () => {
  const { client, peer, server } = await tcpPair();
  const ref = { data: null as string | null };
  const got = socket_recv(peer, ref, 15, MSG_WAITALL);
  for (const part of ['abcde', 'fghij', 'klmnoXYZ']) {
    await socket_write(client, part);
    await sleep(30);
  }
  assert.equal(await got, 15);
  assert.equal(ref.data, 'abcdefghijklmno');
  const rest = socket_recv(peer, ref, 10, MSG_WAITALL);
  await sleep(30);
  socket_close(client);
  assert.equal(await rest, 3);
  assert.equal(ref.data, 'XYZ');
  assert.equal(await socket_recv(peer, ref, 10, 0), 0);
  assert.equal(ref.data, null);
  assert.equal(await socket_read(peer, 10), '');
  closeAll(peer, server);
});

test('PHP_NORMAL_READ stops at \\n or \\r across chunk boundaries', T, async () => {
  const { client, peer, server } = await tcpPair();
  const lines = (async () => {
    const out: Array<string | false> = [];
    for (let i = 0; i < 4; i++) out.push(await socket_read(peer, 1024, PHP_NORMAL_READ));
    return out;
  })();
  for (const part of ['hel', 'lo\r\nwor', 'ld', '\nlast']) {
    await socket_write(client, part);
    await sleep(25);
  }
  socket_close(client);
  assert.deepEqual(await lines, ['hello\r', '\n', 'world\n', 'last']);
  assert.equal(await socket_read(peer, 1024, PHP_NORMAL_READ), '');
  closeAll(peer, server);
});

test('a read never cuts a UTF-8 character; latin1 is byte for byte', T, async () => {
  const { client, peer, server } = await tcpPair();
  const bytes = Buffer.from('你好', 'utf8'); // 6 bytes
  await socket_write(client, bytes.subarray(0, 4));
  const first = await socket_read(peer, 1024);
  assert.equal(first, '你');
  await socket_write(client, bytes.subarray(4));
  assert.equal(await socket_read(peer, 1024), '好');
  await socket_write(client, '你好');
  assert.equal(await socket_read(peer, 4), '你', 'a 4-byte read returns the 3 bytes of whole characters');
  assert.equal(await socket_read(peer, 4), '好');
  socket_set_encoding(peer, 'latin1');
  await socket_write(client, Buffer.from([0, 0xff, 0xe4, 0x80]));
  const raw = await socket_read(peer, 10);
  assert.equal(raw, '\x00\xff\xe4\x80');
  closeAll(client, peer, server);
});

test('half-close: after socket_shutdown(1) the peer reads EOF and the socket still reads', T, async () => {
  const { client, peer, server } = await tcpPair();
  await socket_write(client, 'request');
  assert.equal(socket_shutdown(client, 1), true);
  assert.equal(await socket_read(peer, 100), 'request');
  assert.equal(await socket_read(peer, 100), '', 'EOF after the FIN');
  assert.equal(await socket_write(peer, 'response'), 8);
  socket_close(peer);
  assert.equal(await socket_read(client, 100), 'response');
  assert.equal(await socket_read(client, 100), '');
  assert.equal(await socket_write(client, 'more'), false);
  assert.equal(socket_last_error(client), 32);
  assert.equal(socket_strerror(32), 'Broken pipe');
  const fresh = create();
  assert.equal(socket_shutdown(fresh, 2), false);
  assert.equal(socket_last_error(fresh), 107);
  assert.equal(socket_strerror(107), 'Transport endpoint is not connected');
  closeAll(client, server, fresh);
});

test('socket_select with several clients narrows the arrays to the ready ones', T, async () => {
  const { server, port } = await listener();
  const clients: Socket[] = [];
  const peers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const c = create();
    assert.ok(await socket_connect(c, '127.0.0.1', port));
    clients.push(c);
    const p = await socket_accept(server);
    assert.ok(p);
    peers.push(p);
  }
  const none = [...peers];
  assert.equal(await socket_select(none, null, null, 0), 0);
  assert.deepEqual(none, []);
  await socket_write(clients[1]!, 'one');
  await socket_write(clients[3]!, 'three');
  socket_close(clients[2]!); // EOF is readable too
  await sleep(50);
  const read = [server, ...peers];
  const write = [peers[0]!];
  const except = [peers[0]!];
  const n = await socket_select(read, write, except, 1, 0);
  assert.equal(n, 4);
  assert.deepEqual(read, [peers[1], peers[2], peers[3]]);
  assert.deepEqual(write, [peers[0]]);
  assert.deepEqual(except, []);
  assert.equal(await socket_read(peers[2]!, 10), '');
  // A null timeout waits until something happens.
  const waiting = [peers[0]!];
  const t0 = Date.now();
  setTimeout(() => void socket_write(clients[0]!, 'late'), 80);
  assert.equal(await socket_select(waiting, null, null, null), 1);
  assert.ok(Date.now() - t0 >= 60);
  const timed = [peers[1]!, peers[3]!];
  await socket_read(peers[1]!, 10);
  await socket_read(peers[3]!, 10);
  assert.equal(await socket_select(timed, null, null, 0, 100_000), 0);
  closeAll(...clients, ...peers, server);
});

test('options: SO_RCVTIMEO makes reads fail with 11; TCP_NODELAY, SO_KEEPALIVE, SO_REUSEADDR, SO_TYPE', T, async () => {
  const { client, peer, server } = await tcpPair();
  assert.ok(socket_set_option(peer, SOL_SOCKET, SO_RCVTIMEO, { sec: 0, usec: 150_000 }));
  assert.deepEqual(socket_get_option(peer, SOL_SOCKET, SO_RCVTIMEO), { sec: 0, usec: 150_000 });
  const t0 = Date.now();
  assert.equal(await socket_read(peer, 10), false);
  assert.ok(Date.now() - t0 >= 140);
  assert.equal(socket_last_error(peer), 11);
  assert.ok(socket_set_option(client, SOL_TCP, TCP_NODELAY, 1));
  assert.equal(socket_get_option(client, SOL_TCP, TCP_NODELAY), 1);
  assert.ok(socket_set_option(client, SOL_SOCKET, SO_KEEPALIVE, true));
  assert.equal(socket_get_option(client, SOL_SOCKET, SO_KEEPALIVE), 1);
  assert.ok(socket_set_option(server, SOL_SOCKET, SO_REUSEADDR, 1));
  assert.equal(socket_get_option(server, SOL_SOCKET, SO_REUSEADDR), 1);
  assert.equal(socket_get_option(client, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
  assert.equal(socket_set_option(client, SOL_SOCKET, 9999, 1), false);
  assert.equal(socket_last_error(client), 92);
  closeAll(client, peer, server);
});

test('the receive buffer is bounded: a fast sender is paused, nothing is lost', { timeout: 10000 }, async () => {
  const { client, peer, server } = await tcpPair();
  socket_set_encoding(peer, 'latin1');
  assert.ok(socket_set_option(peer, SOL_SOCKET, SO_RCVBUF, 16 * 1024));
  const total = 4 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sending = (async () => {
    for (let sent = 0; sent < total; sent += chunk.length) await socket_write(client, chunk);
    socket_shutdown(client, 1);
  })();
  await sleep(200);
  assert.ok(peer.rx.length <= 16 * 1024 + 64 * 1024, `buffered ${peer.rx.length} bytes`);
  let got = 0;
  for (;;) {
    const s = await socket_read(peer, 65536);
    if (s === '' || s === false) break;
    got += s.length;
  }
  await sending;
  assert.equal(got, total);
  closeAll(client, peer, server);
});

test('socket_create_pair gives two connected Unix sockets; AF_INET pairs fail with 95', T, async () => {
  const pair: Socket[] = [];
  assert.equal(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair), true);
  assert.equal(pair.length, 2);
  await socket_write(pair[0]!, 'to b');
  assert.equal(await socket_read(pair[1]!, 10), 'to b');
  await socket_write(pair[1]!, 'to a');
  assert.equal(await socket_read(pair[0]!, 10), 'to a');
  closeAll(...pair);
  assert.equal(await socket_create_pair(AF_INET, SOCK_STREAM, 0, []), false);
  assert.equal(socket_last_error(), 95);
});

test('AF_UNIX stream server and client on a path', T, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-sockets-'));
  const path = join(dir, 'srv.sock');
  try {
    const server = create(AF_UNIX);
    assert.ok(await socket_bind(server, path));
    assert.ok(await socket_listen(server, 5));
    const c = create(AF_UNIX);
    assert.ok(await socket_connect(c, path));
    const p = await socket_accept(server);
    assert.ok(p);
    assert.equal(await socket_send(c, 'unix!', 5, 0), 5);
    assert.equal(await socket_read(p, 10), 'unix!');
    const again = create(AF_UNIX);
    assert.equal(await socket_bind(again, path), false);
    assert.equal(socket_last_error(again), 98);
    const missing = create(AF_UNIX);
    assert.equal(await socket_connect(missing, join(dir, 'nope.sock')), false);
    assert.equal(socket_last_error(missing), 2);
    closeAll(c, p, server, again, missing);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('IPv6 stream sockets and socket_create_listen', T, async () => {
  const { server, port } = await listener('::1', AF_INET6);
  const c = create(AF_INET6);
  assert.ok(await socket_connect(c, '::1', port));
  const p = await socket_accept(server);
  assert.ok(p);
  const name = { address: '', port: 0 };
  assert.ok(socket_getpeername(p, name));
  assert.equal(name.address, '::1');
  await socket_write(c, 'v6');
  assert.equal(await socket_read(p, 10), 'v6');
  closeAll(c, p, server);

  const l = await socket_create_listen(0, 5);
  assert.ok(l);
  const ln = { address: '', port: 0 };
  socket_getsockname(l, ln);
  assert.equal(ln.address, '0.0.0.0');
  const raw = net.connect(ln.port, '127.0.0.1');
  const acc = await socket_accept(l);
  assert.ok(acc);
  raw.destroy();
  closeAll(acc, l);
});

test('a peer reset is reported as 104 "Connection reset by peer"', T, async () => {
  const { client, peer, server } = await tcpPair();
  client.stream!.resetAndDestroy();
  const got = await socket_read(peer, 10);
  assert.equal(got, false);
  assert.equal(socket_last_error(peer), 104);
  closeAll(client, peer, server);
});

test('false from a failed socket_create() or fsockopen() goes straight in, as in PHP, and throws PHP 8\'s TypeError saying why', async () => {
  const socket = socket_create(AF_INET, SOCK_RAW, 1); // Node.js offers no raw sockets: false
  assert.equal(socket, false);
  await assert.rejects(socket_connect(socket, '127.0.0.1', 9), (err: Error) => err instanceof TypeError &&
    /^socket_connect\(\): Argument #1 \(\$socket\) must be of type Socket, bool given \(false: the call that should have made it failed: socket_create\(\): Unable to create socket \[94\]: Socket type not supported/.test(err.message));
  assert.throws(() => socket_close(socket), /^TypeError: socket_close\(\): Argument #1 \(\$socket\) must be of type Socket, bool given/);
  const fp = await fsockopen('unix:///nonexistent/switchboard.sock', -1);
  assert.equal(fp, false);
  await assert.rejects(fwrite(fp, 'x'), /^TypeError: fwrite\(\): Argument #1 \(\$stream\) must be of type resource, bool given \(false: fsockopen\(\) failed; its error argument says why\)$/);
});
