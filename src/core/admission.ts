/**
 * Who may connect, decided before a connection costs anything: the pre-accept hook, and the
 * count of connections per client IP address (maxConnectionsPerIp).
 */
import { SwitchboardError } from '../errors.js';

/** The peer of a connection being accepted (an accept hook's first argument). */
export interface AcceptRemote {
  /** As the socket gives it ('127.0.0.1', '::1', '::ffff:10.0.0.1'; the socket path for unix://). */
  readonly address: string;
  readonly port: number;
  /** 'IPv4', 'IPv6' or 'unix'. */
  readonly family: string;
}

/**
 * Called for each new connection (each new UDP endpoint) before anything is read from it, with
 * the peer and the listen URL; false refuses it: the socket is destroyed at once and the server
 * emits 'refused'. Synchronous on purpose: a pending answer would hold a socket per attempt.
 */
export type AcceptHook = (remote: AcceptRemote, address: string) => boolean;

/** The address an IP counts as: IPv4-mapped IPv6 ('::ffff:1.2.3.4') is the IPv4 address. */
export function ipKey(address: string): string {
  return address.length > 7 && address.startsWith('::ffff:') && address.includes('.', 7) ? address.slice(7) : address;
}

/** Connections held per client IP, against a cap. */
export class PerIpCount {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Counts a connection from `address`; false (and nothing counted) when that IP is at the cap. */
  add(address: string): boolean {
    const key = ipKey(address);
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  /** A counted connection from `address` closed. */
  remove(address: string): void {
    const key = ipKey(address);
    const n = this.counts.get(key);
    if (n === undefined) return;
    // Forgotten at zero: the map holds only the IPs that have a connection now.
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  /** Connections counted for `address` now. */
  count(address: string): number {
    return this.counts.get(ipKey(address)) ?? 0;
  }
}

/** Checks maxConnectionsPerIp: a whole number >= 1, or undefined/0/Infinity for no cap. */
export function parseMaxPerIp(v: unknown): number {
  if (v === undefined || v === 0 || v === Infinity) return Infinity;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `option maxConnectionsPerIp must be a whole number >= 1, or 0 for no cap (got ${String(v)})`);
  }
  return v;
}

/** "host:port" as Connection.remote writes it. */
export function formatRemote(r: AcceptRemote): string {
  if (r.family === 'unix') return r.address || 'unix';
  return r.family === 'IPv6' ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`;
}
