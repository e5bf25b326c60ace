/**
 * Seed 002, the client: sends "Ho\r\nfirst blood\r\n" and prints what the server sends back
 * until the server closes the connection.
 *
 *   npx tsx examples/greet-client.ts [port]      (port: argv, or $PORT, default 1935; $HOST default 127.0.0.1)
 */
import {
  AF_INET, SOCK_STREAM, SOL_TCP, type Socket, socket_close, socket_connect, socket_create, socket_last_error, socket_read,
  socket_strerror, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, strlen } from './lib/php.js';

//error_reporting(E_ALL); set_time_limit(0): nothing to do in Node
echo('<h2>TCP/IP Connection</h2>\n');

const port = portArg(1935);
const ip = hostEnv('127.0.0.1');

// The seed tests `$socket < 0` and `$result < 0`; failures are `false` here, with the errno in
// socket_last_error() (the seed printed socket_strerror($result), i.e. of `false`).
const socket: Socket | false = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
if (socket === false) {
  echo('socket_create() failed: reason: ' + socket_strerror(socket_last_error()) + '\n');
  die('');
} else {
  echo('OK.\n');
}

echo(`试图连接 '${ip}' 端口 '${port}'...\n`);
const result = await socket_connect(socket, ip, port);
if (result === false) {
  echo(`socket_connect() failed.\nReason: (${socket_last_error(socket)}) ` + socket_strerror(socket_last_error(socket)) + '\n');
} else {
  echo('连接OK\n');
}

let inText = 'Ho\r\n';
inText += 'first blood\r\n';
let out: string | false = '';

if (!(await socket_write(socket, inText, strlen(inText)))) {
  echo('socket_write() failed: reason: ' + socket_strerror(socket_last_error(socket)) + '\n');
} else {
  echo('发送到服务器信息成功！\n');
  echo(`发送的内容为:<font color='red'>${inText}</font> <br>`);
}

while ((out = await socket_read(socket, 8192))) {
  echo('接收服务器回传信息成功！\n');
  echo('接受的内容为:', out);
}

echo('关闭SOCKET...\n');
socket_close(socket);
echo('关闭OK\n');
