/**
 * Seed 004's socket_sendmsg / socket_recvmsg with SCM_RIGHTS and SCM_CREDENTIALS: a master that
 * accepts TCP clients and hands each connection, as an open socket, to a worker process over a
 * Unix socket; the worker serves it (seed 000's reverse: one line in, reversed line out).
 *
 *   npx tsx examples/fd-passing.ts [port] [count]     (port: argv, or $PORT, default 5360; stops after count clients, default 5)
 *
 * Try `nc 127.0.0.1 5360`: the answer comes from the worker, whose log names the master's pid
 * as the kernel reported it (SO_PASSCRED). Needs the sockets addon (`npm run build:native`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AF_INET, AF_UNIX, PHP_NORMAL_READ, SCM_CREDENTIALS, SCM_RIGHTS, SOCK_STREAM, SOL_SOCKET, SO_PASSCRED, type MessageHeader,
  Socket, socket_accept, socket_bind, socket_close, socket_cmsg_space, socket_connect, socket_create, socket_last_error,
  socket_listen, socket_read, socket_recvmsg, socket_sendmsg, socket_set_option, socket_strerror, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, strlen, strrev, trim } from './lib/php.js';

async function worker(path: string): Promise<void> {
  const sock = socket_create(AF_UNIX, SOCK_STREAM, 0) || die(`worker: socket_create: ${socket_strerror(socket_last_error())}\n`);
  if (!(await socket_connect(sock, path))) die(`worker: socket_connect: ${socket_strerror(socket_last_error(sock))}\n`);
  // Ask the kernel for the sender's credentials with every message.
  socket_set_option(sock, SOL_SOCKET, SO_PASSCRED, 1);
  for (;;) {
    const msg: MessageHeader = {
      name: {}, buffer_size: 2000,
      controllen: socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 1)! + socket_cmsg_space(SOL_SOCKET, SCM_CREDENTIALS)!,
    };
    const n = await socket_recvmsg(sock, msg, 0);
    if (n === false) die(`worker: socket_recvmsg: ${socket_strerror(socket_last_error(sock))}\n`);
    if (n === 0) break; // the master is gone
    let client: Socket | undefined;
    let from = -1;
    for (const c of msg.control ?? []) {
      if (c.type === SCM_RIGHTS && Array.isArray(c.data) && c.data[0] instanceof Socket) client = c.data[0];
      if (c.type === SCM_CREDENTIALS && !Array.isArray(c.data)) from = c.data.pid;
    }
    if (!client) continue;
    echo(`worker ${process.pid}: ${msg.iov?.[0] ?? ''} from master pid ${from}\n`);
    const input = await socket_read(client, 1024, PHP_NORMAL_READ);
    if (input) {
      const output = strrev(trim(input)) + '\n';
      await socket_write(client, output, strlen(output));
    }
    socket_close(client);
  }
  socket_close(sock);
}

async function master(): Promise<void> {
  const host = hostEnv('127.0.0.1');
  const port = portArg(5360);
  const count = Number(process.argv[3] ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'fd-passing-'));
  const path = join(dir, 'worker.sock');
  const unix = socket_create(AF_UNIX, SOCK_STREAM, 0) || die('socket_create(AF_UNIX) failed\n');
  if (!(await socket_bind(unix, path)) || !(await socket_listen(unix, 1))) die(`Unix socket: ${socket_strerror(socket_last_error(unix))}\n`);
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'worker', path], { stdio: 'inherit' });
  const toWorker = (await socket_accept(unix)) || die('the worker did not connect\n');
  socket_close(unix);
  rmSync(dir, { recursive: true, force: true });

  const sock = socket_create(AF_INET, SOCK_STREAM, 0) || die('Could not create socket\n');
  if (!(await socket_bind(sock, host, port))) die(`Could not bind to socket: ${socket_strerror(socket_last_error(sock))}\n`);
  if (!(await socket_listen(sock, 4))) die('Could not set up socket listener\n');
  echo(`master ${process.pid}: listening on ${host}:${port}, worker ${child.pid}\n`);
  for (let i = 1; i <= count; i++) {
    const conn = await socket_accept(sock);
    if (!conn) break;
    const sent = await socket_sendmsg(toWorker, {
      iov: [`connection ${i}`],
      control: [
        { level: SOL_SOCKET, type: SCM_RIGHTS, data: [conn] },
        { level: SOL_SOCKET, type: SCM_CREDENTIALS, data: { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() } },
      ],
    }, 0);
    if (sent === false) echo(`master: socket_sendmsg: ${socket_strerror(socket_last_error(toWorker))}\n`);
    else echo(`master ${process.pid}: passed connection ${i} to the worker\n`);
    socket_close(conn); // our descriptor only: the worker's stays open
  }
  socket_close(sock);
  socket_close(toWorker); // the worker reads EOF and ends
  await new Promise((resolve) => child.once('exit', resolve));
}

if (process.argv[2] === 'worker') await worker(process.argv[3]!);
else await master();
