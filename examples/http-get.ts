/**
 * Seed 004, the client socket: a raw HTTP GET with socket_send(), and one socket_recv() with
 * MSG_WAITALL of up to 2045 bytes, printed as it came.
 *
 *   npx tsx examples/http-get.ts [host] [port]   (default 127.0.0.1 80; the seed used 104.193.88.77, www.baidu.com)
 *
 * Naive bits kept: the request has no Host header (HTTP/1.1 requires one; many servers answer
 * 400), and MSG_WAITALL waits for 2045 bytes, so a shorter answer on a kept-alive connection
 * arrives only when the server closes it.
 */
import { AF_INET, MSG_WAITALL, SOCK_STREAM, type Socket, socket_close, socket_connect, socket_create, socket_last_error, socket_recv, socket_send, socket_strerror } from '../src/sockets/index.js';
import { die, echo, strlen } from './lib/php.js';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 80);

let socket: Socket | false;
if (!(socket = socket_create(AF_INET, SOCK_STREAM, 0))) {
  const _errorcode = socket_last_error();
  const _errormsg = socket_strerror(_errorcode); // computed and not shown, as in the seed
  die("Couldn't create socket");
}

if (!(await socket_connect(socket, host, port))) {
  const _errorcode = socket_last_error();
  const _errormsg = socket_strerror(_errorcode);
  die('connect failed !');
}

const message = 'GET / HTTP/1.1\r\n\r\n';
if (!(await socket_send(socket, message, strlen(message), 0))) {
  const _errorcode = socket_last_error();
  const _errormsg = socket_strerror(_errorcode);
  die('send failed !');
}

const buf = { data: null as string | null }; // PHP's &$buf
if ((await socket_recv(socket, buf, 2045, MSG_WAITALL)) === false) {
  const _errorcode = socket_last_error();
  const _errormsg = socket_strerror(_errorcode);
  die('receive failed !');
}
echo(buf.data ?? '');

socket_close(socket);
