/**
 * socket_select(read, write, except, seconds, microseconds): waits until a socket of `read` is
 * readable (data, EOF, an error, or a pending connection on a listening socket) or one of `write`
 * is writable (connected with room under SO_SNDBUF, or a non-blocking connect finished), narrows
 * the arrays in place to the ready sockets and resolves with their count (0 on timeout).
 * `seconds = null` waits without limit. Node delivers no out-of-band data, so `except` always
 * comes back empty.
 */
import { globalError, strerror } from './errors.js';
import { assertSocket, toMillis } from './resolve.js';
import { Socket, nextTurn, waitUntil } from './socket.js';

function narrow(list: Socket[] | null | undefined, ready: (s: Socket) => boolean): number {
  if (!list) return 0;
  const keep = list.filter(ready);
  list.splice(0, list.length, ...keep);
  return keep.length;
}

export async function socket_select(
  read: Socket[] | null | undefined,
  write: Socket[] | null | undefined,
  except: Socket[] | null | undefined,
  seconds: number | null,
  microseconds = 0,
): Promise<number | false> {
  const all = [...(read ?? []), ...(write ?? []), ...(except ?? [])];
  all.forEach((s, i) => assertSocket('socket_select', s, i + 1));
  const closed = all.find((s) => s.state === 'closed');
  if (closed) {
    globalError.errno = 9;
    globalError.detail = `socket_select(): unable to select [9]: ${strerror(9)} (a socket in the arrays is closed)`;
    return false;
  }
  if (seconds !== null && (seconds < 0 || microseconds < 0)) {
    globalError.errno = 22;
    globalError.detail = `socket_select(): unable to select [22]: ${strerror(22)}`;
    return false;
  }
  if (all.length === 0 && seconds === null) {
    globalError.errno = 22;
    globalError.detail = 'socket_select(): At least one array argument must be passed';
    return false;
  }
  const readSet = read ?? [];
  const writeSet = write ?? [];
  const anyReady = (): boolean => readSet.some((s) => s.readable) || writeSet.some((s) => s.writable);
  // One turn of the event loop first, so that a loop around select never starves Node's I/O.
  await nextTurn();
  if (!anyReady()) {
    const ms = seconds === null ? 0 : toMillis(seconds, microseconds);
    if (seconds === null || ms > 0) await waitUntil(all, anyReady, ms);
  }
  const n = narrow(read, (s) => s.readable) + narrow(write, (s) => s.writable);
  narrow(except, () => false);
  return n;
}
