/** The IP-level options of a socket resource (see multicast.ts), with Linux's defaults. */

export interface Membership {
  group: string;
  iface: string | undefined;
  source: string | undefined;
}

/** The IP-level state of a resource (Linux's defaults). */
export class IpOptions {
  mcastTtl = 1;
  mcastLoop = true;
  mcastIf: number | string = 0;
  unicastHops = -1; // -1: the route's default (64), as Linux reports it after setting -1
  v6only = false;
  reuseport = false;
  tclass = 0;
  memberships: Membership[] = [];
  /** Set before the dgram socket was bound: applied at bind. */
  pending = false;
}
