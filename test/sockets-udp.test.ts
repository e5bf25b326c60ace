// switchboard/sockets over real UDP sockets, IPv4 and IPv6, and fsockopen() over udp://, tcp://, tls://.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AF_INET, AF_INET6, MSG_PEEK, SOCK_DGRAM, SOL_SOCKET, SO_BROADCAST, SO_RCVBUF, SO_RCVTIMEO, type Socket, fclose, feof, fgets,
  fread, fsockopen, fwrite, socket_bind, socket_close, socket_connect, socket_create, socket_get_option, socket_getsockname,
  socket_last_error, socket_listen, socket_read, socket_recv, socket_recvfrom, socket_select, socket_sendto,
  socket_set_nonblock, socket_set_option, socket_write, stream_get_meta_data, stream_set_timeout,
} from '../src/sockets/index.js';

const T = { timeout: 5000 };

function udp(domain = AF_INET): Socket {
  const s = socket_create(domain, SOCK_DGRAM, 0);
  assert.ok(s);
  return s;
}

async function boundUdp(host: string, domain: number): Promise<{ s: Socket; port: number }> {
  const s = udp(domain);
  assert.equal(await socket_bind(s, host, 0), true);
  const name = { address: '', port: 0 };
  socket_getsockname(s, name);
  assert.equal(name.address, host);
  return { s, port: name.port };
}

for (const [family, host, domain] of [['IPv4', '127.0.0.1', AF_INET], ['IPv6', '::1', AF_INET6]] as const) {
  test(`UDP round trip over ${family}: sendto, recvfrom with the sender's address, reply`, T, async () => {
    const { s: server, port } = await boundUdp(host, domain);
    const { s: client, port: clientPort } = await boundUdp(host, domain);
    assert.equal(await socket_sendto(client, 'ping 你好', 100, 0, host, port), 11);
    const buf = { data: null as string | null };
    const from = { address: '', port: 0 };
    assert.equal(await socket_recvfrom(server, buf, 1024, 0, from), 11);
    assert.equal(buf.data, 'ping 你好');
    assert.deepEqual(from, { address: host, port: clientPort });
    assert.equal(await socket_sendto(server, 'pong', 4, 0, from.address, from.port), 4);
    assert.equal(await socket_recvfrom(client, buf, 1024, 0, from), 4);
    assert.equal(buf.data, 'pong');
    assert.deepEqual(from, { address: host, port });
    socket_close(server);
    socket_close(client);
  });
}

test('UDP: datagrams keep their boundaries, MSG_PEEK, truncation, non-blocking EAGAIN, select', T, async () => {
  const { s: server, port } = await boundUdp('127.0.0.1', AF_INET);
  const client = udp();
  socket_set_nonblock(server);
  const buf = { data: null as string | null };
  const from = { address: '', port: 0 };
  assert.equal(await socket_recvfrom(server, buf, 100, 0, from), false);
  assert.equal(socket_last_error(server), 11);
  await socket_sendto(client, 'first', 5, 0, '127.0.0.1', port);
  await socket_sendto(client, 'second datagram', 15, 0, '127.0.0.1', port);
  const read = [server];
  assert.equal(await socket_select(read, null, null, 2), 1);
  assert.equal(await socket_recv(server, buf, 100, MSG_PEEK), 5);
  assert.equal(buf.data, 'first');
  assert.equal(await socket_recv(server, buf, 100, 0), 5);
  assert.equal(buf.data, 'first');
  for (let i = 0; i < 50 && server.datagrams.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await socket_recv(server, buf, 6, 0), 6, 'the rest of a datagram longer than asked is discarded');
  assert.equal(buf.data, 'second');
  assert.equal(await socket_recv(server, buf, 100, 0), false);
  socket_close(server);
  socket_close(client);
});

test('UDP: socket_connect sets the default peer for socket_write / socket_read; options', T, async () => {
  const { s: server, port } = await boundUdp('127.0.0.1', AF_INET);
  const client = udp();
  assert.equal(await socket_connect(client, '127.0.0.1', port), true);
  assert.equal(await socket_write(client, 'hello'), 5);
  const buf = { data: null as string | null };
  const from = { address: '', port: 0 };
  assert.equal(await socket_recvfrom(server, buf, 100, 0, from), 5);
  await socket_sendto(server, 'back', 4, 0, from.address, from.port);
  assert.equal(await socket_read(client, 100), 'back');
  assert.ok(socket_set_option(client, SOL_SOCKET, SO_BROADCAST, 1));
  assert.equal(socket_get_option(client, SOL_SOCKET, SO_BROADCAST), 1);
  assert.ok(socket_set_option(server, SOL_SOCKET, SO_RCVBUF, 65536));
  const size = socket_get_option(server, SOL_SOCKET, SO_RCVBUF);
  assert.ok(typeof size === 'number' && size >= 65536, `kernel buffer ${String(size)}`);
  assert.ok(socket_set_option(server, SOL_SOCKET, SO_RCVTIMEO, { sec: 0, usec: 100_000 }));
  assert.equal(await socket_read(server, 10), false);
  assert.equal(socket_last_error(server), 11);
  assert.equal(await socket_listen(server, 1), false);
  assert.equal(socket_last_error(server), 95);
  socket_close(server);
  socket_close(client);
});

test('fsockopen("udp://127.0.0.1", port): daytime asked with fwrite("\\n"), answer read with fread(26)', T, async () => {
  const daytime = dgram.createSocket('udp4');
  daytime.on('message', (_m, r) => daytime.send('Sat Nov 21 12:00:00 2026\r\n', r.port, r.address));
  await new Promise<void>((r) => daytime.bind(0, '127.0.0.1', () => r()));
  const err = { errno: 0, errstr: '' };
  const fp = await fsockopen('udp://127.0.0.1', daytime.address().port, err);
  assert.ok(fp, err.errstr);
  stream_set_timeout(fp, 2);
  assert.equal(await fwrite(fp, '\n'), 1);
  assert.equal(await fread(fp, 26), 'Sat Nov 21 12:00:00 2026\r\n');
  assert.equal(feof(fp), false);
  fclose(fp);
  daytime.close();
});

test('fsockopen over tcp: fwrite, fgets line by line until feof; refused gives errno 111', T, async () => {
  const server = net.createServer((c) => {
    c.once('data', () => c.end('HTTP/1.0 200 OK\r\nX: 1\r\n\r\nbody line\nno newline'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const fp = await fsockopen('127.0.0.1', port);
  assert.ok(fp);
  await fwrite(fp, 'GET / HTTP/1.0\r\n\r\n');
  const lines: string[] = [];
  while (!feof(fp)) {
    const line = await fgets(fp, 128);
    if (line !== false) lines.push(line);
  }
  assert.deepEqual(lines, ['HTTP/1.0 200 OK\r\n', 'X: 1\r\n', '\r\n', 'body line\n', 'no newline']);
  fclose(fp);
  await new Promise((r) => server.close(r));
  const err = { errno: 0, errstr: '' };
  assert.equal(await fsockopen('tcp://127.0.0.1', port, err, 2), false);
  assert.deepEqual(err, { errno: 111, errstr: 'Connection refused' });
});

test('fsockopen: a read that times out sets timed_out and feof()', T, async () => {
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const fp = await fsockopen('127.0.0.1', (server.address() as net.AddressInfo).port);
  assert.ok(fp);
  stream_set_timeout(fp, 0, 100_000);
  assert.equal(await fgets(fp), false);
  assert.equal(stream_get_meta_data(fp).timed_out, true);
  assert.equal(feof(fp), true);
  fclose(fp);
  server.close();
});

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}

test('fsockopen("ssl://...") and tls:// with a verified self-signed certificate', { ...T, skip: haveOpenssl ? false : 'openssl not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const server = tls.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (c) => {
      c.on('data', (d) => c.end('secure ' + d.toString()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const err = { errno: 0, errstr: '' };
    assert.equal(await fsockopen('ssl://127.0.0.1', port, err, 2), false, 'an unknown issuer is refused, as PHP verifies peers');
    assert.match(err.errstr, /Failed to enable crypto/);
    for (const scheme of ['ssl', 'tls']) {
      const fp = await fsockopen(`${scheme}://localhost`, port, err, 2, { ssl: { cafile: join(dir, 'cert.pem') } });
      assert.ok(fp, err.errstr);
      await fwrite(fp, 'hi\n');
      assert.equal(await fgets(fp), 'secure hi\n');
      fclose(fp);
    }
    server.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
