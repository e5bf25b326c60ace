// What the socket functions accept, checked by `npm run typecheck`: the result of socket_create(),
// socket_accept() and fsockopen() as it is (Socket|false, SocketStream|false: passing false throws
// PHP 8's TypeError at run time), and nothing else. Each @ts-expect-error fails the type check if
// the line below it ever type-checks.
import {
  AF_INET, SOCK_STREAM, type Socket, type SocketStream, fclose, fsockopen, fwrite, socket_accept, socket_close,
  socket_connect, socket_create, socket_last_error, socket_read, socket_write,
} from 'switchboard/sockets';

const socket = socket_create(AF_INET, SOCK_STREAM, 0);
const accepted = await socket_accept(socket);
await socket_write(accepted, 'as PHP: the result of socket_accept() goes straight in');
socket_close(socket);
socket_last_error(socket);
const fp = await fsockopen('tcp://127.0.0.1', 13);
await fwrite(fp, 'x');
fclose(fp);

// Results keep their precise types: a read is string | false, not widened.
const text: string | false = await socket_read(socket, 1024);
// @ts-expect-error a read may fail: it is not a plain string
const wrong: string = await socket_read(socket, 1024);

declare const maybe: Socket | null | undefined;
declare const stream: SocketStream;
// @ts-expect-error null is not a socket
await socket_connect(null, '127.0.0.1', 5353);
// @ts-expect-error undefined is not a socket
await socket_connect(undefined, '127.0.0.1', 5353);
// @ts-expect-error nor is a possibly missing one
socket_close(maybe);
// @ts-expect-error true is not what any call returns
socket_close(true);
// @ts-expect-error a number (PHP 5's resource ids) is not a socket
await socket_write(3, 'x');
// @ts-expect-error a stream from fsockopen() is not a Socket
socket_close(stream);
// @ts-expect-error a Socket is not a stream
fclose(socket);

export { text, wrong };
