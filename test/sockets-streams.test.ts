// socket_import_stream / socket_export_stream: one connection used through both the stream
// functions (fgets, fwrite, ...) and the socket functions, against a raw TCP peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import {
  AF_INET, PHP_NORMAL_READ, SOCK_DGRAM, SOCK_STREAM, fclose, feof, fgets, fsockopen, fwrite, socket_close, socket_connect,
  socket_create, socket_export_stream, socket_import_stream, socket_last_error, socket_read, socket_recv, socket_select,
  socket_write, SocketStream, Socket,
} from '../src/sockets/index.js';

const T = { timeout: 10000 };

async function server(): Promise<{ srv: net.Server; port: number; conn: Promise<net.Socket> }> {
  const srv = net.createServer();
  const conn = new Promise<net.Socket>((r) => srv.once('connection', r));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, port: (srv.address() as net.AddressInfo).port, conn };
}

function nextData(s: net.Socket): Promise<string> {
  return new Promise((r) => s.once('data', (c: Buffer) => r(c.toString())));
}

test('socket_import_stream: an fsockopen stream\'s socket reads, writes and selects; both views share the bytes', T, async () => {
  const { srv, port, conn } = await server();
  const fp = await fsockopen('127.0.0.1', port);
  assert.ok(fp);
  const peer = await conn;
  const sock = socket_import_stream(fp);
  assert.ok(sock instanceof Socket);
  assert.equal(await socket_write(sock, 'via socket\n'), 11);
  assert.equal(await nextData(peer), 'via socket\n');
  assert.equal(await fwrite(fp, 'via stream\n'), 11);
  assert.equal(await nextData(peer), 'via stream\n');
  peer.write('line one\nline two\n');
  const ready = [sock];
  assert.equal(await socket_select(ready, null, null, 5), 1);
  assert.equal(await fgets(fp), 'line one\n');
  assert.equal(await socket_read(sock, 100, PHP_NORMAL_READ), 'line two\n'); // what the stream read is not read again
  socket_close(sock);
  assert.equal(feof(fp), true);
  assert.equal(await fgets(fp), false);
  srv.close();
  peer.destroy();
});

test('socket_export_stream: a connected socket as a stream (fwrite, fgets, feof, fclose)', T, async () => {
  const { srv, port, conn } = await server();
  const sock = socket_create(AF_INET, SOCK_STREAM, 0);
  assert.ok(sock);
  assert.ok(await socket_connect(sock, '127.0.0.1', port));
  const peer = await conn;
  const fp = socket_export_stream(sock);
  assert.ok(fp instanceof SocketStream);
  assert.equal(await fwrite(fp, 'hello\n'), 6);
  assert.equal(await nextData(peer), 'hello\n');
  peer.end('bye\n');
  assert.equal(await fgets(fp), 'bye\n');
  assert.equal(await fgets(fp), false);
  assert.equal(feof(fp), true);
  assert.ok(fclose(fp));
  assert.equal(await socket_read(sock, 10), false);
  assert.equal(socket_last_error(sock), 9);
  srv.close();
});

test('UDP: an imported udp:// stream receives with socket_recv; export needs a connected datagram socket', T, async () => {
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  const fp = await fsockopen('udp://127.0.0.1', peer.address().port);
  assert.ok(fp);
  const from = new Promise<dgram.RemoteInfo>((r) => peer.once('message', (_m, info) => r(info)));
  assert.equal(await fwrite(fp, 'ping'), 4);
  const info = await from;
  const sock = socket_import_stream(fp);
  assert.ok(sock);
  peer.send('pong', info.port, '127.0.0.1');
  const buf = { data: null as string | null };
  assert.equal(await socket_recv(sock, buf, 100, 0), 4);
  assert.equal(buf.data, 'pong');
  const lone = socket_create(AF_INET, SOCK_DGRAM, 0);
  assert.ok(lone);
  assert.equal(socket_export_stream(lone), false);
  assert.equal(socket_last_error(lone), 89);
  fclose(fp);
  assert.equal(socket_import_stream(fp), false);
  assert.equal(socket_last_error(), 9);
  assert.throws(() => socket_import_stream(false), TypeError);
  socket_close(lone);
  peer.close();
});
