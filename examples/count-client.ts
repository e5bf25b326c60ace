/**
 * Seed 003, the client: sends "Ho\r\nfirst blood\r\n", prints the server's answers until it
 * closes the connection.
 *
 *   npx tsx examples/count-client.ts [port]      (port: argv, or $PORT, default 1935; $HOST default 127.0.0.1)
 */
import {
  AF_INET, SOCK_STREAM, SOL_TCP, type Socket, socket_close, socket_connect, socket_create, socket_last_error, socket_read,
  socket_strerror, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, strlen } from './lib/php.js';

// header(...); error_reporting(E_ALL); set_time_limit(0): nothing to do in Node
echo('<h2>TCP/IP Connection</h2>\n');

const port = portArg(1935);
const ip = hostEnv('127.0.0.1');

// The seed tests `< 0`; failures are `false` here, with the errno in socket_last_error().
const socket: Socket | false = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
if (socket === false) {
  echo('socket_create() failed: reason: ' + socket_strerror(socket_last_error()) + '\n');
  die('');
} else {
  echo('OK.\n');
}

echo(`connect '${ip}' port '${port}'...\n`);
const result = await socket_connect(socket, ip, port);
if (result === false) {
  echo(`socket_connect() failed.\nReason: (${socket_last_error(socket)}) ` + socket_strerror(socket_last_error(socket)) + '\n');
} else {
  echo('connectOK\n');
}

let inText = 'Ho\r\n';
inText += 'first blood\r\n';
let out: string | false = '';

if (!(await socket_write(socket, inText, strlen(inText)))) {
  echo('socket_write() failed: reason: ' + socket_strerror(socket_last_error(socket)) + '\n');
} else {
  echo('send success\n');
  echo(`send msg:<font color='red'>${inText}</font> <br>`);
}

while ((out = await socket_read(socket, 8192))) {
  echo('recevie server msg\n');
  echo('receive msg:', out);
}

echo(' close SOCKET...\n');
socket_close(socket);
echo('close OK\n');
