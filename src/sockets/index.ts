/**
 * switchboard/sockets: PHP's socket functions for line-by-line ports of socket programs.
 *
 *   import { socket_create, socket_bind, socket_listen, socket_accept, socket_read, socket_write,
 *            socket_close, AF_INET, SOCK_STREAM, SOL_TCP } from 'switchboard/sockets';
 *   const sock = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
 *   await socket_bind(sock, '127.0.0.1', 5353); await socket_listen(sock, 3);
 *   const spawn = await socket_accept(sock);
 *   const input = await socket_read(spawn, 1024);
 *
 * PHP names, constants (Linux values), return values (false on failure) and errors
 * (socket_last_error() / socket_strerror() with Linux errno numbers and glibc's messages).
 * Where PHP blocks, the function returns a Promise: await it. See src/sockets/README.md for
 * every difference from PHP (by-reference parameters, strings and bytes, what Node cannot do).
 */
export * from './constants.js';
export { Socket } from './socket.js';
export type { SocketEncoding } from './socket.js';
export {
  socket_create, socket_create_listen, socket_bind, socket_listen, socket_accept, socket_connect,
  socket_shutdown, socket_close, socket_getpeername, socket_getsockname, socket_set_block, socket_set_nonblock,
} from './lifecycle.js';
export type { AddressRef } from './lifecycle.js';
export { socket_read, socket_write, socket_recv, socket_recvfrom, socket_send, socket_sendto } from './io.js';
export type { DataRef } from './io.js';
export { socket_select } from './select.js';
export { socket_import_stream, socket_export_stream } from './streams.js';
export { socket_sendmsg, socket_recvmsg, socket_cmsg_space } from './msg.js';
export type { MessageHeader, MessageName, ControlMessage, Credentials } from './msg.js';
export {
  socket_iovec_alloc, socket_iovec_add, socket_iovec_set, socket_iovec_fetch, socket_iovec_delete, socket_iovec_free,
  socket_readv, socket_writev, Iovec, IOV_MAX,
} from './iovec.js';
export { socket_set_option, socket_get_option, socket_setopt, socket_getopt } from './options.js';
export type { SocketOptionValue, TimevalOption, LingerOption } from './options.js';
export type { MulticastRequest } from './multicast.js';
export { socket_create_pair } from './pair.js';
export {
  socket_last_error, socket_strerror, socket_clear_error, socket_last_error_detail, socket_set_encoding,
} from './report.js';
export {
  fsockopen, fwrite, fputs, fread, fgets, feof, fclose, stream_set_timeout, stream_set_blocking, stream_get_meta_data,
  SocketStream,
} from './fsockopen.js';
export type { FsockopenError, StreamContext, StreamMetaData } from './fsockopen.js';
