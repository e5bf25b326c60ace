// The README's "Porting socket programs" snippet, verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text, and runs it against the reverse server).
import { socket_create, socket_connect, socket_write, socket_read, socket_close, AF_INET, SOCK_STREAM, SOL_TCP } from 'switchboard/sockets';
const socket = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
await socket_connect(socket, '127.0.0.1', 5353);
await socket_write(socket, 'Hello Server');
console.log('Reply From Server  :' + await socket_read(socket, 1024));
socket_close(socket);
