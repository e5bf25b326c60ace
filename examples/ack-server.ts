/**
 * Seed 001, server.php: greets each client with "connect", then answers every line it sends
 * with "Information Received". Serves clients one after another, forever.
 *
 *   npx tsx examples/ack-server.ts [port]        (port: argv, or $PORT, default 10008; $HOST default 127.0.0.1)
 */
import {
  AF_INET, PHP_NORMAL_READ, SOCK_STREAM, socket_accept, socket_bind, socket_close, socket_create, socket_listen,
  socket_read, socket_write,
} from '../src/sockets/index.js';
import { die, echo, getprotobyname, hostEnv, portArg, printf } from './lib/php.js';

// 建立server端socket
const tcp = getprotobyname('tcp') || 0;
const socket = socket_create(AF_INET, SOCK_STREAM, tcp) || die('socket_create() failed\n');
await socket_bind(socket, hostEnv('127.0.0.1'), portArg(10008)); //绑定要监听的端口
await socket_listen(socket); //监听端口
//初始化一个数据,和客户端通信
const buffer = String('connect'); // a variable in the seed too, so the else branch stays reachable
while (true) {
  // 接受一个socket连接
  const connection = await socket_accept(socket);
  if (!connection) {
    echo('connect fail');
  } else {
    echo('Socket connected\n');
    // 向客户端传递一个信息数据
    if (buffer != '') {
      echo('send data to client\n');
      await socket_write(connection, buffer + '\n');
      echo('Wrote to socket\n');
    } else {
      echo('no data in the buffer\n');
    }
    // 从客户端取得信息 (PHP_NORMAL_READ: one line, "\n" included; '' when the client is gone)
    let data: string | false;
    while ((data = await socket_read(connection, 1024, PHP_NORMAL_READ))) {
      printf('Buffer: ' + data + '\n');
      //取得信息给客户端一个反馈
      await socket_write(connection, 'Information Received\n');
    }
    // PHP closed the finished connection when $connection was overwritten by the next accept;
    // JS has no such destructor, so it is closed here.
    socket_close(connection);
  }
}
// As in the seed, this is never reached (the loop above does not end):
// socket_close(connection); //关闭 socket
// printf("Closed the socket\n");
