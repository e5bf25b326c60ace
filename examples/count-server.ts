/**
 * Seed 003, the server: reads each client's message first, prints it, answers "success", and
 * stops after 5 clients.
 *
 *   npx tsx examples/count-server.ts [port]      (port: argv, or $PORT, default 1935; $HOST default 127.0.0.1)
 *
 * Talk to it with examples/count-client.ts.
 */
import {
  AF_INET, SOCK_STREAM, SOL_TCP, type Socket, socket_accept, socket_bind, socket_close, socket_create, socket_last_error,
  socket_listen, socket_read, socket_strerror, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, strlen } from './lib/php.js';

// header("Content-Type: text/html; charset=UTF-8"); set_time_limit(0): nothing to do in Node

const ip = hostEnv('127.0.0.1');
const port = portArg(1935);

// The seed tests `< 0` and passes the result to socket_strerror(); failures are `false` here.
let sock: Socket | false;
if ((sock = socket_create(AF_INET, SOCK_STREAM, SOL_TCP)) === false) {
  echo('socket_create() 失败的原因是:' + socket_strerror(socket_last_error()) + '\n');
  die('');
}

if ((await socket_bind(sock, ip, port)) === false) {
  echo('socket_bind() 失败的原因是:' + socket_strerror(socket_last_error(sock)) + '\n');
}

if ((await socket_listen(sock, 4)) === false) {
  echo('socket_listen() 失败的原因是:' + socket_strerror(socket_last_error(sock)) + '\n');
}

let count = 0;
let msgsock: Socket | false = false;

do {
  if ((msgsock = await socket_accept(sock)) === false) {
    echo('socket_accept() failed: reason: ' + socket_strerror(socket_last_error(sock)) + '\n');
    break;
  } else {
    echo('success..\n');
    // naive, as in the seed: one read of up to 8192 bytes is taken as the whole message
    const buf = await socket_read(msgsock, 8192);

    const talkback = `receive:${buf}\n`;
    echo(talkback);

    //socket发回一个数据流到客户端
    const msg = 'success\n';
    await socket_write(msgsock, msg, strlen(msg));

    //接受5次信号就跳出循环
    if (++count >= 5) {
      break;
    }
  }
  socket_close(msgsock);
} while (true);

// The seed leaves the 5th connection to PHP's end-of-script cleanup; Node needs it closed.
if (msgsock) socket_close(msgsock);
socket_close(sock);
