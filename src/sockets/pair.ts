/**
 * socket_create_pair(AF_UNIX, SOCK_STREAM, 0, pair): two connected sockets (await it).
 *
 * Node has no socketpair(): a private Unix socket server is opened in a fresh temporary directory
 * (mode 0700), one connection is made to it and accepted, then the server and its directory are
 * removed. The two ends behave as socketpair()'s do. Linux offers pairs only for AF_UNIX
 * (95 "Operation not supported" otherwise); Unix datagram pairs are not available in Node (94).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_STREAM } from './constants.js';
import { errnoOf, globalError, strerror } from './errors.js';
import { Socket } from './socket.js';
import { sockAddon } from './native.js';
import { pairUnix } from './unix.js';

function fail(errno: number, detail: string): false {
  globalError.errno = errno;
  globalError.detail = detail;
  return false;
}

export async function socket_create_pair(domain: number, type: number, protocol: number, pair: Socket[]): Promise<boolean> {
  const fn = 'socket_create_pair';
  if (domain === AF_INET || domain === AF_INET6) return fail(95, `${fn}(): Unable to create socket pair [95]: ${strerror(95)}`);
  if (domain !== AF_UNIX) return fail(97, `${fn}(): Unable to create socket pair [97]: ${strerror(97)}`);
  if (sockAddon() && (type === SOCK_STREAM || type === SOCK_DGRAM) && protocol === 0) {
    const errno = pairUnix(type, pair); // socketpair() itself
    return errno === 0 ? true : fail(errno, `${fn}(): Unable to create socket pair [${errno}]: ${strerror(errno)}`);
  }
  if (type === SOCK_DGRAM || type !== SOCK_STREAM) {
    return fail(94, `${fn}(): Unable to create socket pair [94]: ${strerror(94)} (Node.js offers only SOCK_STREAM pairs)`);
  }
  if (protocol !== 0) return fail(93, `${fn}(): Unable to create socket pair [93]: ${strerror(93)}`);
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-pair-'));
  const path = join(dir, 's');
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  try {
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    const client = net.connect({ path, allowHalfOpen: true });
    client.pause();
    await new Promise<void>((resolve, reject) => {
      client.once('error', reject);
      client.once('connect', () => resolve());
    });
    const other = await accepted;
    const a = new Socket(AF_UNIX, SOCK_STREAM, 0);
    const b = new Socket(AF_UNIX, SOCK_STREAM, 0);
    a.attach(client);
    b.attach(other);
    pair.splice(0, pair.length, a, b);
    return true;
  } catch (err) {
    const errno = errnoOf(err);
    return fail(errno, `${fn}(): Unable to create socket pair [${errno}]: ${strerror(errno)}`);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
