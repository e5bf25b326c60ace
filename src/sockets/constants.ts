/**
 * PHP's socket constants with their Linux values, so that numbers printed or compared by a
 * ported program mean what they meant under PHP on Linux.
 */
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_RDM = 4;
export const SOCK_SEQPACKET = 5;

export const SOL_SOCKET = 1;
export const SOL_TCP = 6;
export const SOL_UDP = 17;
export const IPPROTO_IP = 0;
export const IPPROTO_IPV6 = 41;

export const MSG_OOB = 0x1;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_PEEK = 0x2;
export const MSG_DONTROUTE = 0x4;
export const MSG_EOR = 0x80;
export const MSG_DONTWAIT = 0x40;
export const MSG_WAITALL = 0x100;

export const PHP_NORMAL_READ = 1;
export const PHP_BINARY_READ = 2;

export const SO_DEBUG = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_DONTROUTE = 5;
export const SO_BROADCAST = 6;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_OOBINLINE = 10;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const SO_RCVLOWAT = 18;
export const SO_SNDLOWAT = 19;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;

export const SO_PASSCRED = 16;

/** Control message types (SOL_SOCKET level), as the seed defines them. */
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;

/** IP-level options (level IPPROTO_IP) and their IPv6 counterparts (level IPPROTO_IPV6). */
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51;
export const IPV6_HOPLIMIT = 52;
export const IPV6_RECVTCLASS = 66;
export const IPV6_TCLASS = 67;
/** Protocol-independent multicast (RFC 3678), at level IPPROTO_IP or IPPROTO_IPV6 as the socket's family. */
export const MCAST_JOIN_GROUP = 42;
export const MCAST_BLOCK_SOURCE = 43;
export const MCAST_UNBLOCK_SOURCE = 44;
export const MCAST_LEAVE_GROUP = 45;
export const MCAST_JOIN_SOURCE_GROUP = 46;
export const MCAST_LEAVE_SOURCE_GROUP = 47;

export const TCP_NODELAY = 1;

/** socket_shutdown() modes. */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

/** errno constants PHP defines as SOCKET_E*; the Linux numbers. */
export const SOCKET_EPERM = 1;
export const SOCKET_ENOENT = 2;
export const SOCKET_EBADF = 9;
export const SOCKET_EAGAIN = 11;
export const SOCKET_EWOULDBLOCK = 11;
export const SOCKET_EACCES = 13;
export const SOCKET_EINVAL = 22;
export const SOCKET_EPIPE = 32;
export const SOCKET_ENOTSOCK = 88;
export const SOCKET_EDESTADDRREQ = 89;
export const SOCKET_EMSGSIZE = 90;
export const SOCKET_ENOPROTOOPT = 92;
export const SOCKET_EPROTONOSUPPORT = 93;
export const SOCKET_ESOCKTNOSUPPORT = 94;
export const SOCKET_EOPNOTSUPP = 95;
export const SOCKET_EAFNOSUPPORT = 97;
export const SOCKET_EADDRINUSE = 98;
export const SOCKET_EADDRNOTAVAIL = 99;
export const SOCKET_ENETUNREACH = 101;
export const SOCKET_ECONNABORTED = 103;
export const SOCKET_ECONNRESET = 104;
export const SOCKET_EISCONN = 106;
export const SOCKET_ENOTCONN = 107;
export const SOCKET_ETIMEDOUT = 110;
export const SOCKET_ECONNREFUSED = 111;
export const SOCKET_EHOSTUNREACH = 113;
export const SOCKET_EALREADY = 114;
export const SOCKET_EINPROGRESS = 115;
