/**
 * Seed 000, server.php: accepts one client, reads its message, replies with it reversed, exits.
 *
 *   npx tsx examples/reverse-server.ts [port]        (port: argv, or $PORT, default 5353; $HOST default 127.0.0.1)
 *
 * Talk to it with examples/reverse-client.ts. The seed's naive bits are kept: one connection
 * only, and one socket_read() of up to 1024 bytes taken as the whole message.
 */
import {
  AF_INET, SOCK_STREAM, socket_accept, socket_bind, socket_close, socket_create, socket_listen, socket_read, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, strlen, strrev, trim } from './lib/php.js';

// set some variables
const host = hostEnv('127.0.0.1');
const port = portArg(5353);
// don't timeout! (set_time_limit(0): a Node script has no time limit to lift)
// create socket
const socket = socket_create(AF_INET, SOCK_STREAM, 0) || die('Could not create socket\n');
// bind socket to port
if (!(await socket_bind(socket, host, port))) die('Could not bind to socket\n');
// start listening for connections
if (!(await socket_listen(socket, 3))) die('Could not set up socket listener\n');

// accept incoming connections
// spawn another socket to handle communication
const spawn = (await socket_accept(socket)) || die('Could not accept incoming connection\n');
// read client input (naive, as in the seed: one read of up to 1024 bytes is taken as the message)
let input = (await socket_read(spawn, 1024)) || die('Could not read input\n');
// clean up input string
input = trim(input);
echo('Client Message : ' + input);
// reverse client input and send back (strrev here reverses characters, not bytes: see lib/php.ts)
const output = strrev(input) + '\n';
if (!(await socket_write(spawn, output, strlen(output)))) die('Could not write output\n');
// close sockets
socket_close(spawn);
socket_close(socket);
