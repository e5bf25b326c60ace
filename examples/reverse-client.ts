/**
 * Seed 000, client.php: sends "Hello Server" to the reverse server and prints the reply.
 *
 *   npx tsx examples/reverse-client.ts [port] [message]   (port: argv, or $PORT, default 5353; $HOST default 127.0.0.1)
 */
import { AF_INET, SOCK_STREAM, socket_close, socket_connect, socket_create, socket_read, socket_write } from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, strlen } from './lib/php.js';

const host = hostEnv('127.0.0.1');
const port = portArg(5353);
const message = process.argv[3] ?? 'Hello Server';
echo('Message To server :' + message);
// create socket
const socket = socket_create(AF_INET, SOCK_STREAM, 0) || die('Could not create socket\n');
// connect to server
if (!(await socket_connect(socket, host, port))) die('Could not connect to server\n');
// send string to server
if (!(await socket_write(socket, message, strlen(message)))) die('Could not send data to server\n');
// get server response
const result = (await socket_read(socket, 1024)) || die('Could not read server response\n');
echo('Reply From Server  :' + result);
// close socket
socket_close(socket);
