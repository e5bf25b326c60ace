/**
 * The Server's side of presence: a connection whose application set its metadata
 * (server.setPresence(conn, { name })) is a member of every topic it subscribes to, in every
 * process sharing the hub; claims are names one connection at a time may hold across them.
 * Both end with the connection. The hub stores (see hubs/types.ts HubPresence); without a hub
 * that has presence, this process's own store is used.
 */
import { SwitchboardError } from '../errors.js';
import { LocalPresence } from '../hubs/presence.js';
import type { HubPresence } from '../hubs/types.js';
import type { Connection } from './connection.js';

/** What the application shows about a member: a flat object of JSON values (a nickname, a user id). */
export type PresenceMeta = Readonly<Record<string, string | number | boolean | null>>;

export interface PresenceMember {
  /** Unique across the processes sharing the hub. */
  readonly id: string;
  readonly meta: PresenceMeta;
  /** A connection of this process. */
  readonly local: boolean;
}

export interface Presence {
  /** At most the limit asked for. */
  readonly members: readonly PresenceMember[];
  /** Members of the topic in every process (members.length <= total). */
  readonly total: number;
}

export interface PresenceOptions {
  /** Bytes of one member's metadata as JSON, and of a claim key; more is refused (ERR_INVALID_OPTION). Default 512. */
  maxEntryBytes?: number;
  /** Members one presence() call lists at most, whatever limit it asks for. Default 1000. */
  maxListed?: number;
}

/** presence(topic) without a limit. */
const DEFAULT_LIST = 100;

export class PresenceTracker {
  private target: HubPresence;
  private readonly metaOf = new Map<Connection, string>();
  private readonly claimsOf = new Map<Connection, Set<string>>();
  /** Holders of claims by id, to tell which connection lost one. */
  private readonly holders = new Map<string, Connection>();
  readonly maxEntryBytes: number;
  readonly maxListed: number;

  constructor(options: PresenceOptions, private readonly lost: (key: string, conn: Connection) => void) {
    this.maxEntryBytes = positiveInt('presence.maxEntryBytes', options.maxEntryBytes ?? 512);
    this.maxListed = positiveInt('presence.maxListed', options.maxListed ?? 1000);
    this.target = new LocalPresence();
  }

  /** The hub's presence, or (null) this process's own. */
  use(presence: HubPresence | null): void {
    this.target = presence ?? new LocalPresence();
    this.target.onClaimLost((key, holder) => {
      const conn = this.holders.get(holder);
      if (conn === undefined || this.claimsOf.get(conn)?.delete(key) !== true) return;
      this.lost(key, conn);
    });
  }

  private idOf(conn: Connection): string {
    return `${this.target.origin}:${conn.id}`;
  }

  set(conn: Connection, meta: PresenceMeta | null): void {
    if (meta === null) {
      if (!this.metaOf.delete(conn)) return;
      for (const topic of conn.topics) this.target.leave(topic, this.idOf(conn));
      return;
    }
    if (typeof meta !== 'object' || Array.isArray(meta)) throw new SwitchboardError('ERR_INVALID_OPTION', 'presence metadata must be an object of JSON values, or null');
    for (const [k, v] of Object.entries(meta)) {
      if (v !== null && typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
        throw new SwitchboardError('ERR_INVALID_OPTION', `presence metadata ${JSON.stringify(k)} must be a string, a finite number, a boolean or null`);
      }
    }
    const json = JSON.stringify(meta);
    const bytes = Buffer.byteLength(json);
    if (bytes > this.maxEntryBytes) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `presence metadata is ${bytes} bytes as JSON; at most ${this.maxEntryBytes} (option presence.maxEntryBytes)`);
    }
    // A connection that is closing has left its topics already; it is not listed again.
    if (!conn.isOpen) return;
    if (this.metaOf.get(conn) === json) return;
    this.metaOf.set(conn, json);
    for (const topic of conn.topics) this.target.join(topic, this.idOf(conn), json);
  }

  subscribed(topic: string, conn: Connection): void {
    const json = this.metaOf.get(conn);
    if (json !== undefined) this.target.join(topic, this.idOf(conn), json);
  }

  unsubscribed(topic: string, conn: Connection): void {
    if (this.metaOf.has(conn)) this.target.leave(topic, this.idOf(conn));
  }

  /** The connection is gone (its topics were left before): its metadata and claims go too. */
  closed(conn: Connection): void {
    this.metaOf.delete(conn);
    const claims = this.claimsOf.get(conn);
    if (claims === undefined) return;
    this.claimsOf.delete(conn);
    const holder = this.idOf(conn);
    this.holders.delete(holder);
    for (const key of claims) this.target.release(key, holder);
  }

  async list(topic: string, limit = DEFAULT_LIST): Promise<Presence> {
    if (typeof limit !== 'number' || !(limit >= 0)) throw new SwitchboardError('ERR_INVALID_OPTION', `presence limit must be a number >= 0 (got ${String(limit)})`);
    const target = this.target;
    const listing = await target.list(topic, Math.min(Math.floor(limit), this.maxListed));
    const mine = `${target.origin}:`;
    const members: PresenceMember[] = [];
    for (const e of listing.entries) {
      let meta: unknown;
      try {
        meta = JSON.parse(e.meta);
      } catch {
        continue; // not written by switchboard
      }
      if (typeof meta === 'object' && meta !== null) members.push({ id: e.id, meta: meta as PresenceMeta, local: e.id.startsWith(mine) });
    }
    return { members, total: Math.max(listing.total, members.length) };
  }

  async claim(key: string, conn: Connection): Promise<boolean> {
    this.checkKey(key);
    if (!conn.isOpen) return false;
    const holder = this.idOf(conn);
    if (this.claimsOf.get(conn)?.has(key) === true) return true;
    const target = this.target;
    const ok = await target.claim(key, holder);
    if (!ok) return false;
    if (!conn.isOpen || target !== this.target) {
      // Closed while the hub answered: its close released what it held then, not this.
      target.release(key, holder);
      return false;
    }
    let claims = this.claimsOf.get(conn);
    if (claims === undefined) this.claimsOf.set(conn, (claims = new Set()));
    claims.add(key);
    this.holders.set(holder, conn);
    return true;
  }

  release(key: string, conn: Connection): void {
    const claims = this.claimsOf.get(conn);
    if (claims === undefined || !claims.delete(key)) return;
    const holder = this.idOf(conn);
    if (claims.size === 0) {
      this.claimsOf.delete(conn);
      this.holders.delete(holder);
    }
    this.target.release(key, holder);
  }

  private checkKey(key: string): void {
    if (typeof key !== 'string' || key === '' || Buffer.byteLength(key) > this.maxEntryBytes) {
      throw new SwitchboardError('ERR_INVALID_OPTION', `a claim key must be a non-empty string of at most ${this.maxEntryBytes} bytes`);
    }
  }
}

function positiveInt(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new SwitchboardError('ERR_INVALID_OPTION', `option ${name} must be a whole number >= 1 (got ${String(v)})`);
  return v;
}
