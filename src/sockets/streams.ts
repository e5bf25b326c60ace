/**
 * socket_import_stream / socket_export_stream: a socket and an fsockopen() stream over one
 * connection.
 *
 * In PHP they share one descriptor; here they share one resource (the Socket a SocketStream is
 * built on), so what one reads the other does not see again, writes from both go out in the
 * order made, and options, blocking mode and errors are the socket's. Closing either closes the
 * connection (PHP keeps the descriptor open while the other still refers to it).
 */
import { AF_UNIX } from './constants.js';
import { globalError, strerror } from './errors.js';
import { SocketStream } from './fsockopen.js';
import { assertSocket } from './resolve.js';
import type { Socket } from './socket.js';

function fail(errno: number, detail: string): false {
  globalError.errno = errno;
  globalError.detail = detail;
  return false;
}

/** socket_import_stream(stream): the socket under an fsockopen() stream, or false. */
export function socket_import_stream(stream: SocketStream | false): Socket | false {
  const fn = 'socket_import_stream';
  if (!(stream instanceof SocketStream)) {
    const given = stream === null ? 'null' : typeof stream === 'boolean' ? 'bool' : typeof stream;
    throw new TypeError(`${fn}(): Argument #1 ($stream) must be of type resource, ${given} given${stream === false ? ' (false: fsockopen() failed; its error argument says why)' : ''}`);
  }
  if (stream.closed || stream.socket.state === 'closed') return fail(9, `${fn}(): ${strerror(9)} (the stream is closed)`);
  if (stream.transport === 'ssl') {
    return fail(95, `${fn}(): ${strerror(95)} (a TLS stream: its socket would carry the encrypted bytes, which Node.js does not hand out)`);
  }
  return stream.socket;
}

/** socket_export_stream(socket): an fsockopen()-style stream over the socket (fread, fgets, fwrite, ...). */
export function socket_export_stream(socket: Socket | false): SocketStream | false {
  const fn = 'socket_export_stream';
  assertSocket(fn, socket);
  if (socket.state === 'closed') return socket.fail(9);
  if (socket.isDgram && socket.fd >= 0) return socket.fail(95, `${fn}(): ${strerror(95)} (Unix datagram sockets have no stream functions here)`);
  if (socket.isDgram && !socket.peer) return socket.fail(89, `${fn}(): ${strerror(89)} (connect the datagram socket first: a stream writes to its peer)`);
  const transport = socket.isDgram ? 'udp' : socket.domain === AF_UNIX ? 'unix' : 'tcp';
  const fp = new SocketStream(socket, transport);
  fp.blocking = !socket.nonblock;
  return fp;
}
