// socket_iovec_* with socket_readv / socket_writev, against Python's scatter/gather calls
// (socket.sendmsg gathers, socket.recvmsg_into scatters: the kernel's writev/readv) over real
// sockets, with the bytes split into chunks that do not match the vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import {
  AF_INET, SOCK_DGRAM, SOCK_STREAM, type Socket, socket_accept, socket_bind, socket_close, socket_create, socket_getsockname,
  socket_iovec_add, socket_iovec_alloc, socket_iovec_delete, socket_iovec_fetch, socket_iovec_free, socket_iovec_set,
  socket_last_error, socket_listen, socket_readv, socket_set_nonblock, socket_shutdown, socket_writev, socket_create_pair,
  AF_UNIX, socket_write, socket_set_encoding, socket_connect,
} from '../src/sockets/index.js';

const T = { timeout: 15000 };

// The peer: receives what our writev sent into three vectors of its own (MSG_WAITALL), prints
// them, then sends 4+6+5 bytes for our readv in chunks of 2, 5, 1 and 7 bytes, a pause between.
const PEER = `
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
bufs = [bytearray(4), bytearray(6), bytearray(6)]
n = s.recvmsg_into(bufs, 0, socket.MSG_WAITALL)[0]
assert n == 16, n
print(' '.join(b.decode() for b in bufs), flush=True)
data = b'HEADbody-1tail!'
for part in (data[0:2], data[2:7], data[7:8], data[8:]):
    s.sendmsg([part])
    time.sleep(0.05)
time.sleep(0.2)
s.close()
`;

async function listen(): Promise<{ server: Socket; port: number }> {
  const server = socket_create(AF_INET, SOCK_STREAM, 0);
  assert.ok(server);
  assert.equal(await socket_bind(server, '127.0.0.1', 0), true);
  assert.equal(await socket_listen(server, 1), true);
  const name = { address: '', port: 0 };
  socket_getsockname(server, name);
  return { server, port: name.port };
}

test('writev gathers the vectors into one write; readv scatters chunks across vectors in order', T, async () => {
  const { server, port } = await listen();
  const py = spawn('/usr/bin/python3', ['-c', PEER, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  py.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => py.on('exit', r));
  const conn = await socket_accept(server);
  assert.ok(conn);

  const w = socket_iovec_alloc(3, 4, 6, 6);
  assert.ok(w);
  assert.ok(socket_iovec_set(w, 0, 'GET '));
  assert.ok(socket_iovec_set(w, 1, 'vector'));
  assert.ok(socket_iovec_set(w, 2, 's-ok!\n'));
  assert.equal(await socket_writev(conn, w), true);

  // 4 + 6 + 5 bytes; the peer's chunks (2, 5, 1, 7) cut every vector somewhere else.
  const r = socket_iovec_alloc(2, 4, 6);
  assert.ok(r);
  assert.ok(socket_iovec_add(r, 5));
  assert.equal(await socket_readv(conn, r), true);
  assert.deepEqual([0, 1, 2].map((i) => socket_iovec_fetch(r, i)), ['HEAD', 'body-1', 'tail!']);
  // End of stream: false, and no error.
  assert.equal(await socket_readv(conn, r), false);
  assert.equal(socket_last_error(conn), 0);
  assert.equal(await exited, 0);
  assert.equal(out, 'GET  vector s-ok!\n\n');
  assert.ok(socket_iovec_free(w) && socket_iovec_free(r));
  socket_close(conn);
  socket_close(server);
});

test('readv at end of stream fills what came; vectors not reached keep their bytes', T, async () => {
  const pair: Socket[] = [];
  assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
  const [a, b] = pair as [Socket, Socket];
  const v = socket_iovec_alloc(3, 3, 3, 3);
  assert.ok(v);
  assert.ok(socket_iovec_set(v, 2, 'zzz'));
  assert.equal(await socket_write(a, 'abcde'), 5);
  socket_shutdown(a, 1);
  assert.equal(await socket_readv(b, v), true);
  assert.equal(socket_iovec_fetch(v, 0), 'abc');
  assert.equal(socket_iovec_fetch(v, 1), 'de\0');
  assert.equal(socket_iovec_fetch(v, 2), 'zzz');
  socket_close(a);
  socket_close(b);
});

test('non-blocking readv takes what is there; EAGAIN when nothing is', T, async () => {
  const pair: Socket[] = [];
  assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
  const [a, b] = pair as [Socket, Socket];
  socket_set_nonblock(b);
  const v = socket_iovec_alloc(2, 2, 8);
  assert.ok(v);
  assert.equal(await socket_readv(b, v), false);
  assert.equal(socket_last_error(b), 11);
  const two = socket_iovec_alloc(2, 3, 1);
  assert.ok(two);
  socket_iovec_set(two, 0, 'xyz');
  socket_iovec_set(two, 1, 'w');
  assert.equal(await socket_writev(a, two), true);
  const deadline = Date.now() + 3000;
  let ok = false;
  while (!ok && Date.now() < deadline) ok = await socket_readv(b, v);
  assert.ok(ok);
  assert.equal(socket_iovec_fetch(v, 0), 'xy');
  assert.equal(socket_iovec_fetch(v, 1).slice(0, 2), 'zw');
  socket_close(a);
  socket_close(b);
});

test('UDP: writev is one datagram, readv scatters one datagram', T, async () => {
  const rx = socket_create(AF_INET, SOCK_DGRAM, 0);
  assert.ok(rx);
  assert.ok(await socket_bind(rx, '127.0.0.1', 0));
  const name = { address: '', port: 0 };
  socket_getsockname(rx, name);
  const peer = dgram.createSocket('udp4');
  const got = new Promise<Buffer>((r) => peer.once('message', r));
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  const peerPort = peer.address().port;
  const tx = socket_create(AF_INET, SOCK_DGRAM, 0);
  assert.ok(tx);
  assert.ok(await socket_connect(tx, '127.0.0.1', peerPort));
  const w = socket_iovec_alloc(2, 0, 0);
  assert.ok(w);
  socket_iovec_set(w, 0, 'one,');
  socket_iovec_set(w, 1, 'two');
  assert.equal(await socket_writev(tx, w), true);
  assert.equal((await got).toString(), 'one,two');
  peer.send('0123456789', name.port, '127.0.0.1');
  const r = socket_iovec_alloc(2, 4, 3);
  assert.ok(r);
  assert.equal(await socket_readv(rx, r), true);
  assert.deepEqual([socket_iovec_fetch(r, 0), socket_iovec_fetch(r, 1)], ['0123', '456']);
  peer.close();
  socket_close(tx);
  socket_close(rx);
});

test('iovec bookkeeping: bad positions and lengths fail with 22, a freed iovec with 9', T, async () => {
  assert.equal(socket_iovec_alloc(2, 1), false);
  assert.equal(socket_last_error(), 22);
  assert.equal(socket_iovec_alloc(1, -1), false);
  const v = socket_iovec_alloc(2, 1, 2);
  assert.ok(v);
  assert.equal(socket_iovec_set(v, 5, 'x'), false);
  assert.equal(socket_last_error(), 22);
  assert.equal(socket_iovec_fetch(v, 2), '');
  assert.ok(socket_iovec_delete(v, 0));
  assert.equal(socket_iovec_fetch(v, 0), '\0\0');
  assert.equal(socket_iovec_delete(v, 1), false);
  assert.ok(socket_iovec_free(v));
  assert.equal(socket_iovec_add(v, 1), false);
  assert.equal(socket_last_error(), 9);
  const pair: Socket[] = [];
  assert.ok(await socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair));
  assert.equal(await socket_writev(pair[0]!, v), false);
  assert.equal(socket_last_error(pair[0]!), 9);
  // Bytes, not characters: a vector boundary may cut a UTF-8 character; latin1 keeps the bytes.
  socket_set_encoding(pair[1]!, 'latin1');
  const u = socket_iovec_alloc(2, 1, 2);
  assert.ok(u);
  assert.equal(await socket_write(pair[0]!, '中'), 3);
  assert.ok(await socket_readv(pair[1]!, u));
  assert.equal(Buffer.from(socket_iovec_fetch(u, 0) + socket_iovec_fetch(u, 1), 'latin1').toString(), '中');
  assert.throws(() => socket_iovec_fetch(false as unknown as never, 0), TypeError);
  for (const s of pair) socket_close(s);
});
