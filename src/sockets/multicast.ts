/**
 * IP-level socket options (levels IPPROTO_IP and IPPROTO_IPV6) and SO_REUSEPORT.
 *
 * Multicast goes through node:dgram where its calls are the system's own: IP_MULTICAST_TTL /
 * IPV6_MULTICAST_HOPS = setMulticastTTL, IP(V6)_MULTICAST_LOOP = setMulticastLoopback,
 * IP(V6)_MULTICAST_IF = setMulticastInterface, MCAST_JOIN_GROUP / MCAST_LEAVE_GROUP =
 * add/dropMembership, MCAST_JOIN/LEAVE_SOURCE_GROUP = add/dropSourceSpecificMembership,
 * IPV6_UNICAST_HOPS = setTTL (IPV6_UNICAST_HOPS on udp6). IPV6_V6ONLY is given to the bind
 * (dgram's and net's ipv6Only), as Linux takes it only before bind. IPV6_TCLASS goes to the
 * kernel with the sockets addon's setsockopt on the socket's descriptor. Values set before the
 * socket exists (Node creates it at bind) are kept and applied then, as the kernel would have them.
 *
 * Interfaces are given as PHP takes them: an index (0: the system's choice) or a name ('lo').
 */
import { readFileSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import {
  AF_INET, AF_INET6, IPPROTO_IP, IPPROTO_IPV6, IPV6_HOPLIMIT, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_LOOP,
  IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO, IPV6_RECVTCLASS, IPV6_TCLASS, IPV6_UNICAST_HOPS, IPV6_V6ONLY,
  IP_MULTICAST_IF, IP_MULTICAST_LOOP, IP_MULTICAST_TTL, MCAST_BLOCK_SOURCE, MCAST_JOIN_GROUP, MCAST_JOIN_SOURCE_GROUP,
  MCAST_LEAVE_SOURCE_GROUP, MCAST_UNBLOCK_SOURCE,
} from './constants.js';
import { errnoOf, strerror } from './errors.js';
import { intValue, sockAddon } from './native.js';
import type { Socket } from './socket.js';
import { fdOf } from './unix.js';
import type { Membership } from './ip-options.js';

/** What socket_set_option takes for MCAST_* (PHP's array keys). */
export interface MulticastRequest {
  group: string;
  interface?: number | string;
  source?: string;
}

export type IpOptionValue = number | boolean | string | MulticastRequest;

function fail(socket: Socket, fn: string, errno: number, why?: string): false {
  return socket.fail(errno, `${fn}(): Unable to ${fn === 'socket_set_option' ? 'set' : 'retrieve'} socket option [${errno}]: ${strerror(errno)}${why ? ` (${why})` : ''}`);
}

/** An interface index's name, from /sys/class/net (Linux). */
function nameOfIndex(index: number): string | undefined {
  try {
    for (const name of readdirSync('/sys/class/net')) {
      if (Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8')) === index) return name;
    }
  } catch {
    // not Linux: no names by index
  }
  return undefined;
}

/**
 * The interface argument as node:dgram wants it: an IPv4 address of the interface for AF_INET,
 * '::%name' for AF_INET6; undefined for 0 (the system's choice); null when there is no such
 * interface (19 ENODEV, what Linux says).
 */
function ifaceArg(family: number, iface: number | string | undefined): string | undefined | null {
  if (iface === undefined || iface === 0 || iface === '') return undefined;
  if (typeof iface === 'string' && isIP(iface) !== 0) return iface; // an address, as IP_MULTICAST_IF's struct in_addr
  const name = typeof iface === 'number' ? nameOfIndex(iface) : iface;
  if (name === undefined) return null;
  const addrs = networkInterfaces()[name];
  if (!addrs) return null;
  if (family === AF_INET6) return `::%${name}`;
  const v4 = addrs.find((a) => a.family === 'IPv4');
  return v4 ? v4.address : null;
}

function isRequest(v: unknown): v is MulticastRequest {
  return typeof v === 'object' && v !== null && typeof (v as MulticastRequest).group === 'string';
}

function asInt(v: IpOptionValue): number | null {
  if (typeof v === 'boolean') return Number(v);
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
}

/** Calls a dgram setter, turning what it throws into an errno (0 on success). */
function tryCall(f: () => void): number {
  try {
    f();
    return 0;
  } catch (err) {
    return errnoOf(err);
  }
}

function bound(socket: Socket): boolean {
  const u = socket.udp;
  if (!u) return false;
  try {
    u.address();
    return true;
  } catch {
    return false;
  }
}

/** Applies what was set before the dgram socket was bound (called once it is). */
export function applyIpOptions(socket: Socket): void {
  const o = socket.ip;
  const u = socket.udp;
  if (!u || !o.pending || !bound(socket)) return;
  o.pending = false;
  tryCall(() => u.setMulticastTTL(o.mcastTtl));
  tryCall(() => u.setMulticastLoopback(o.mcastLoop));
  const ifa = ifaceArg(socket.domain, o.mcastIf);
  if (ifa) tryCall(() => u.setMulticastInterface(ifa));
  if (o.unicastHops >= 0 && socket.domain === AF_INET6) tryCall(() => u.setTTL(o.unicastHops));
  for (const m of o.memberships) {
    tryCall(() => (m.source ? u.addSourceSpecificMembership(m.source, m.group, m.iface) : u.addMembership(m.group, m.iface)));
  }
  if (o.tclass) rawSet(socket, IPPROTO_IPV6, IPV6_TCLASS, o.tclass);
}

/** setsockopt() on the resource's descriptor with the addon: 0 or an errno. */
function rawSet(socket: Socket, level: number, name: number, value: number): number {
  const a = sockAddon();
  const fd = fdOf(socket);
  if (!a) return 38;
  if (fd < 0) return -1; // no descriptor yet
  const r = a.setsockopt(fd, level, name, intValue(value));
  return r < 0 ? -r : 0;
}

const NO_CMSG = 'Node.js reads datagrams without their control messages, so what this asks the kernel to attach would be dropped';

/** socket_set_option() at IPPROTO_IP / IPPROTO_IPV6. */
export function setIpOption(socket: Socket, fn: string, level: number, option: number, value: IpOptionValue): boolean {
  const o = socket.ip;
  const v6 = socket.domain === AF_INET6;
  if ((level === IPPROTO_IP && socket.domain !== AF_INET && !isMcast(option)) || (level === IPPROTO_IPV6 && !v6)) {
    return fail(socket, fn, 92, `level ${level} on a ${v6 ? 'AF_INET6' : socket.domain === AF_INET ? 'AF_INET' : 'AF_UNIX'} socket`);
  }
  if (option === IPV6_V6ONLY) {
    const n = asInt(value);
    if (n === null) return socket.fail(22);
    if (socket.state !== 'fresh') return fail(socket, fn, 22, 'IPV6_V6ONLY is taken only before bind');
    o.v6only = n !== 0;
    return true;
  }
  if (option === IPV6_TCLASS && level === IPPROTO_IPV6) {
    const n = asInt(value);
    if (n === null || n < -1 || n > 255) return socket.fail(22);
    const r = rawSet(socket, level, option, n);
    if (r > 0) return fail(socket, fn, r, r === 38 ? 'it needs the sockets addon' : undefined);
    o.tclass = n < 0 ? 0 : n;
    if (r < 0) o.pending = true;
    return true;
  }
  if (level === IPPROTO_IPV6 && [IPV6_RECVPKTINFO, IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT, IPV6_RECVTCLASS].includes(option)) {
    return fail(socket, fn, 92, NO_CMSG);
  }
  if (!socket.isDgram) return fail(socket, fn, 92, 'multicast and hop options apply to datagram sockets here (Node.js offers no setsockopt for TCP)');
  const u = socket.udp;
  const now = bound(socket);
  const apply = (f: () => void): boolean => {
    if (!now) {
      o.pending = true;
      return true;
    }
    const errno = tryCall(f);
    return errno === 0 ? true : fail(socket, fn, errno);
  };
  if ((level === IPPROTO_IP && option === IP_MULTICAST_TTL) || (level === IPPROTO_IPV6 && option === IPV6_MULTICAST_HOPS)) {
    const n = asInt(value);
    if (n === null || n < -1 || n > 255) return fail(socket, fn, 22, 'a TTL is 0 to 255');
    o.mcastTtl = n < 0 ? 1 : n;
    return apply(() => u!.setMulticastTTL(o.mcastTtl));
  }
  if ((level === IPPROTO_IP && option === IP_MULTICAST_LOOP) || (level === IPPROTO_IPV6 && option === IPV6_MULTICAST_LOOP)) {
    const n = asInt(value);
    if (n === null) return socket.fail(22);
    o.mcastLoop = n !== 0;
    return apply(() => u!.setMulticastLoopback(o.mcastLoop));
  }
  if ((level === IPPROTO_IP && option === IP_MULTICAST_IF) || (level === IPPROTO_IPV6 && option === IPV6_MULTICAST_IF)) {
    if (typeof value !== 'number' && typeof value !== 'string') return socket.fail(22);
    const ifa = ifaceArg(socket.domain, value);
    if (ifa === null) return fail(socket, fn, 19, `no interface ${JSON.stringify(value)}`);
    o.mcastIf = value;
    return apply(() => u!.setMulticastInterface(ifa ?? (v6 ? '::' : '0.0.0.0')));
  }
  if (level === IPPROTO_IPV6 && option === IPV6_UNICAST_HOPS) {
    const n = asInt(value);
    if (n === null || n < -1 || n > 255) return fail(socket, fn, 22, 'hops are -1 to 255');
    o.unicastHops = n;
    return apply(() => u!.setTTL(n < 0 ? 64 : n));
  }
  if (isMcast(option)) return membership(socket, fn, option, value);
  return fail(socket, fn, 92, `level ${level}, option ${option}`);
}

function isMcast(option: number): boolean {
  return option >= MCAST_JOIN_GROUP && option <= MCAST_LEAVE_SOURCE_GROUP;
}

function membership(socket: Socket, fn: string, option: number, value: IpOptionValue): boolean {
  if (!isRequest(value)) return fail(socket, fn, 22, 'MCAST_* options take { group, interface } (and source)');
  if (option === MCAST_BLOCK_SOURCE || option === MCAST_UNBLOCK_SOURCE) {
    return fail(socket, fn, 92, 'Node.js has no call to block a source of an any-source group');
  }
  const family = isIP(value.group);
  if (family !== (socket.domain === AF_INET6 ? 6 : 4)) return fail(socket, fn, 22, `"${value.group}" is not an ${socket.domain === AF_INET6 ? 'IPv6' : 'IPv4'} address`);
  const iface = ifaceArg(socket.domain, value.interface);
  if (iface === null) return fail(socket, fn, 19, `no interface ${JSON.stringify(value.interface)}`);
  const withSource = option === MCAST_JOIN_SOURCE_GROUP || option === MCAST_LEAVE_SOURCE_GROUP;
  if (withSource && typeof value.source !== 'string') return fail(socket, fn, 22, 'MCAST_*_SOURCE_GROUP needs a "source"');
  const m: Membership = { group: value.group, iface: iface ?? undefined, source: withSource ? value.source : undefined };
  const o = socket.ip;
  const join = option === MCAST_JOIN_GROUP || option === MCAST_JOIN_SOURCE_GROUP;
  const same = (x: Membership): boolean => x.group === m.group && x.iface === m.iface && x.source === m.source;
  const known = o.memberships.findIndex(same);
  if (join && known >= 0) return fail(socket, fn, 98, 'already a member'); // Linux: EADDRINUSE
  if (!join && known < 0) return fail(socket, fn, 99, 'not a member'); // Linux: EADDRNOTAVAIL
  const u = socket.udp;
  if (u && bound(socket)) {
    const errno = tryCall(() => {
      if (join) {
        if (m.source) u.addSourceSpecificMembership(m.source, m.group, m.iface);
        else u.addMembership(m.group, m.iface);
      } else if (m.source) u.dropSourceSpecificMembership(m.source, m.group, m.iface);
      else u.dropMembership(m.group, m.iface);
    });
    if (errno !== 0) return fail(socket, fn, errno);
  } else {
    o.pending = true;
  }
  if (join) o.memberships.push(m);
  else o.memberships.splice(known, 1);
  return true;
}

/** socket_get_option() at IPPROTO_IP / IPPROTO_IPV6. */
export function getIpOption(socket: Socket, fn: string, level: number, option: number): number | false {
  const o = socket.ip;
  const v6 = socket.domain === AF_INET6;
  if ((level === IPPROTO_IP && socket.domain !== AF_INET) || (level === IPPROTO_IPV6 && !v6)) return fail(socket, fn, 92);
  if (level === IPPROTO_IP) {
    if (option === IP_MULTICAST_TTL) return o.mcastTtl;
    if (option === IP_MULTICAST_LOOP) return o.mcastLoop ? 1 : 0;
    if (option === IP_MULTICAST_IF) return typeof o.mcastIf === 'number' ? o.mcastIf : o.mcastIf === '' ? 0 : indexOf(o.mcastIf);
    return fail(socket, fn, 92, `level ${level}, option ${option}`);
  }
  switch (option) {
    case IPV6_MULTICAST_HOPS: return o.mcastTtl;
    case IPV6_MULTICAST_LOOP: return o.mcastLoop ? 1 : 0;
    case IPV6_MULTICAST_IF: return typeof o.mcastIf === 'number' ? o.mcastIf : indexOf(o.mcastIf);
    case IPV6_UNICAST_HOPS: return o.unicastHops < 0 ? 64 : o.unicastHops;
    case IPV6_V6ONLY: return o.v6only ? 1 : 0;
    case IPV6_TCLASS: return o.tclass;
    default: return fail(socket, fn, 92, `level ${level}, option ${option}`);
  }
}

function indexOf(name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'));
  } catch {
    return 0;
  }
}
