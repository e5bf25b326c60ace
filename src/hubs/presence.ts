/**
 * Presence kept in one process: the memory hub's (its members are this process's), and the
 * cluster primary's (every worker's, each entry owned by the worker that made it, so that a
 * worker's entries and claims go when it exits).
 */
import { randomBytes } from 'node:crypto';
import type { HubPresence, PresenceEntry, PresenceListing } from './types.js';

export class PresenceStore<Owner = null> {
  private readonly topics = new Map<string, Map<string, { meta: string; owner: Owner }>>();
  private readonly claims = new Map<string, { holder: string; owner: Owner }>();

  join(topic: string, id: string, meta: string, owner: Owner): void {
    let members = this.topics.get(topic);
    if (members === undefined) this.topics.set(topic, (members = new Map()));
    members.set(id, { meta, owner });
  }

  leave(topic: string, id: string): void {
    const members = this.topics.get(topic);
    if (members === undefined || !members.delete(id)) return;
    if (members.size === 0) this.topics.delete(topic);
  }

  list(topic: string, limit: number): PresenceListing {
    const members = this.topics.get(topic);
    if (members === undefined) return { entries: [], total: 0 };
    const entries: PresenceEntry[] = [];
    for (const [id, { meta }] of members) {
      if (entries.length >= limit) break;
      entries.push({ id, meta });
    }
    return { entries, total: members.size };
  }

  claim(key: string, holder: string, owner: Owner): boolean {
    const held = this.claims.get(key);
    if (held !== undefined && held.holder !== holder) return false;
    this.claims.set(key, { holder, owner });
    return true;
  }

  release(key: string, holder: string): void {
    if (this.claims.get(key)?.holder === holder) this.claims.delete(key);
  }

  /** Forgets every entry and claim of `owner` (a worker that exited). */
  dropOwner(owner: Owner): void {
    for (const [topic, members] of this.topics) {
      for (const [id, m] of members) if (m.owner === owner) members.delete(id);
      if (members.size === 0) this.topics.delete(topic);
    }
    for (const [key, c] of this.claims) if (c.owner === owner) this.claims.delete(key);
  }

  clear(): void {
    this.topics.clear();
    this.claims.clear();
  }
}

/** One process's presence: nothing to share, nothing that can be lost. */
export class LocalPresence implements HubPresence {
  readonly origin = randomBytes(6).toString('hex');
  private readonly store = new PresenceStore<null>();

  join(topic: string, id: string, meta: string): void {
    this.store.join(topic, id, meta, null);
  }

  leave(topic: string, id: string): void {
    this.store.leave(topic, id);
  }

  list(topic: string, limit: number): Promise<PresenceListing> {
    return Promise.resolve(this.store.list(topic, limit));
  }

  claim(key: string, holder: string): Promise<boolean> {
    return Promise.resolve(this.store.claim(key, holder, null));
  }

  release(key: string, holder: string): void {
    this.store.release(key, holder);
  }

  onClaimLost(): void {
    // A claim held in this process is never taken by another.
  }

  clear(): void {
    this.store.clear();
  }
}
