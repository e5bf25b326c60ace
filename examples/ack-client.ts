/**
 * Seed 001, client.php: reads the server's greeting line, sends "SOME DATA", prints the answers.
 *
 *   npx tsx examples/ack-client.ts [port]        (port: argv, or $PORT, default 10008; $HOST default 127.0.0.1)
 *
 * The original then waits forever for more lines (server and client both wait to read). This
 * port sets a receive timeout ($ACK_TIMEOUT seconds, default 0.5) so the read loops end.
 */
import {
  AF_INET, PHP_NORMAL_READ, SOCK_STREAM, SOL_SOCKET, SOL_TCP, SO_RCVTIMEO, socket_close, socket_connect, socket_create,
  socket_read, socket_set_option, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg } from './lib/php.js';

// 建立客户端的socet连接
const socket = socket_create(AF_INET, SOCK_STREAM, SOL_TCP) || die('socket_create() failed\n');
await socket_connect(socket, hostEnv('127.0.0.1'), portArg(10008)); //连接服务器端socket
// Not in the seed: without it both sides would wait for each other forever.
const wait = Number(process.env.ACK_TIMEOUT ?? 0.5);
socket_set_option(socket, SOL_SOCKET, SO_RCVTIMEO, { sec: Math.floor(wait), usec: Math.round((wait % 1) * 1e6) });
let buffer: string | false;
while ((buffer = await socket_read(socket, 1024, PHP_NORMAL_READ))) {
  //服务端告诉客户端,自己的状态
  if (/not connect/.test(buffer)) {
    echo('don`t connect\n');
    break;
  } else {
    //服务器传来信息
    echo('Buffer Data: ' + buffer + '\n');
    echo('Writing to Socket\n');
    // 将客户的信息写到通道中,传给服务器端
    if (!(await socket_write(socket, 'SOME DATA\n'))) {
      echo('Write failed\n');
    }
    //服务器端收到信息后,给于的回应信息
    while ((buffer = await socket_read(socket, 1024, PHP_NORMAL_READ))) {
      echo('sent to server: SOME DATA\n response from server was:' + buffer + '\n');
    }
  }
}
// PHP closes the socket when the script ends; Node keeps running while it is open.
socket_close(socket);
