/**
 * errno numbers and messages as Linux and glibc give them, and the last-error state that
 * socket_last_error() / socket_clear_error() read and reset.
 */

/** glibc's strerror() text for the errno values a socket program meets (generated from glibc). */
const MESSAGES: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  4: 'Interrupted system call',
  5: 'Input/output error',
  9: 'Bad file descriptor',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  20: 'Not a directory',
  22: 'Invalid argument',
  23: 'Too many open files in system',
  24: 'Too many open files',
  28: 'No space left on device',
  32: 'Broken pipe',
  36: 'File name too long',
  38: 'Function not implemented',
  61: 'No data available',
  62: 'Timer expired',
  71: 'Protocol error',
  88: 'Socket operation on non-socket',
  89: 'Destination address required',
  90: 'Message too long',
  91: 'Protocol wrong type for socket',
  92: 'Protocol not available',
  93: 'Protocol not supported',
  94: 'Socket type not supported',
  95: 'Operation not supported',
  96: 'Protocol family not supported',
  97: 'Address family not supported by protocol',
  98: 'Address already in use',
  99: 'Cannot assign requested address',
  100: 'Network is down',
  101: 'Network is unreachable',
  102: 'Network dropped connection on reset',
  103: 'Software caused connection abort',
  104: 'Connection reset by peer',
  105: 'No buffer space available',
  106: 'Transport endpoint is already connected',
  107: 'Transport endpoint is not connected',
  108: 'Cannot send after transport endpoint shutdown',
  110: 'Connection timed out',
  111: 'Connection refused',
  112: 'Host is down',
  113: 'No route to host',
  114: 'Operation already in progress',
  115: 'Operation now in progress',
  125: 'Operation canceled',
};

/** Node's error codes (libuv names) to Linux errno numbers. */
const CODES: Record<string, number> = {
  EPERM: 1, ENOENT: 2, EBADF: 9, EAGAIN: 11, EWOULDBLOCK: 11, ENOMEM: 12, EACCES: 13, EEXIST: 17, ENODEV: 19,
  ENOTDIR: 20, EINVAL: 22, EMFILE: 24, ENFILE: 23, EPIPE: 32, ENAMETOOLONG: 36, ENOSYS: 38, ENOTSOCK: 88,
  EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92, EPROTONOSUPPORT: 93,
  ESOCKTNOSUPPORT: 94, EOPNOTSUPP: 95, ENOTSUP: 95, EAFNOSUPPORT: 97, EADDRINUSE: 98,
  EADDRNOTAVAIL: 99, ENETDOWN: 100, ENETUNREACH: 101, ECONNABORTED: 103, ECONNRESET: 104,
  ENOBUFS: 105, EISCONN: 106, ENOTCONN: 107, ESHUTDOWN: 108, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EHOSTDOWN: 112, EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ECANCELED: 125,
};

/** PHP reports a failed host lookup as -(10000 + h_errno); HOST_NOT_FOUND is 1. */
export const HOST_NOT_FOUND = -10001;
const HOST_MESSAGES: Record<number, string> = {
  1: 'Unknown host', 2: 'Host name lookup failure', 3: 'Unknown server error', 4: 'No address associated with name',
};

export function strerror(errno: number): string {
  if (errno < -10000) return HOST_MESSAGES[-errno - 10000] ?? 'Resolver internal error';
  if (errno === 0) return 'Success';
  return MESSAGES[errno] ?? `Unknown error ${errno}`;
}

/** The Linux errno for an error Node raised (libuv sets `errno` to -errno on Linux). */
export function errnoOf(err: unknown): number {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (e && typeof e.code === 'string') {
    if (e.code in CODES) return CODES[e.code]!;
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_NONAME' || e.code === 'EAI_NODATA') return HOST_NOT_FOUND;
  }
  if (e && typeof e.errno === 'number' && e.errno < 0) return -e.errno;
  return 5; // EIO: something failed that has no better number
}

/** What the last failed call recorded: the errno, and a sentence saying what happened. */
export interface ErrorRecord {
  errno: number;
  detail: string;
}

export const globalError: ErrorRecord = { errno: 0, detail: '' };
