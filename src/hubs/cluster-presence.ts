/**
 * Presence for worker processes: the primary holds every worker's members and claims (it sees
 * each worker's messages in order on its IPC channel, and its exit), and answers listings and
 * claims. No TTL is needed: when a worker exits, however it died, the primary drops its entries.
 */
import type { Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { SwitchboardError } from '../errors.js';
import { PresenceStore } from './presence.js';
import type { HubPresence, PresenceListing } from './types.js';

/** Most members a listing may ask the primary for (the server bounds it lower). */
const MAX_LIST = 10_000;
/** Listings and claims waiting for the primary at once; beyond, they are refused. */
const MAX_IN_FLIGHT = 1000;

export type PresenceToPrimary =
  | { sbhub: 'pjoin'; topic: string; id: string; meta: string }
  | { sbhub: 'pleave'; topic: string; id: string }
  | { sbhub: 'plist'; seq: number; topic: string; limit: number }
  | { sbhub: 'pclaim'; seq: number; key: string; holder: string }
  | { sbhub: 'prelease'; key: string; holder: string };
export type PresenceToWorker =
  | { sbhub: 'plisted'; seq: number; listing: PresenceListing }
  | { sbhub: 'pclaimed'; seq: number; ok: boolean };

/** The worker's half: requests go to the primary on the hub's ordered channel. */
export class ClusterPresence implements HubPresence {
  readonly origin = randomBytes(6).toString('hex');
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly send: (msg: PresenceToPrimary) => boolean, private readonly timeout = 5000) {}

  join(topic: string, id: string, meta: string): void {
    this.send({ sbhub: 'pjoin', topic, id, meta });
  }

  leave(topic: string, id: string): void {
    this.send({ sbhub: 'pleave', topic, id });
  }

  list(topic: string, limit: number): Promise<PresenceListing> {
    return this.ask<PresenceListing>((seq) => ({ sbhub: 'plist', seq, topic, limit }));
  }

  claim(key: string, holder: string): Promise<boolean> {
    return this.ask<boolean>((seq) => ({ sbhub: 'pclaim', seq, key, holder }));
  }

  release(key: string, holder: string): void {
    this.send({ sbhub: 'prelease', key, holder });
  }

  onClaimLost(): void {
    // The primary outlives its workers' claims: none is taken from a live worker.
  }

  private ask<T>(make: (seq: number) => PresenceToPrimary): Promise<T> {
    if (this.waiting.size >= MAX_IN_FLIGHT) return Promise.reject(new SwitchboardError('ERR_HUB', 'cluster hub: too many presence requests wait for the primary'));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new SwitchboardError('ERR_HUB', `cluster hub: the primary did not answer within ${this.timeout} ms`));
      }, this.timeout);
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject, timer });
      if (!this.send(make(seq))) {
        clearTimeout(timer);
        this.waiting.delete(seq);
        reject(new SwitchboardError('ERR_HUB', 'cluster hub: no channel to the primary'));
      }
    });
  }

  /** An answer from the primary; false if `msg` is not one. */
  receive(msg: Partial<PresenceToWorker>): boolean {
    if (msg.sbhub !== 'plisted' && msg.sbhub !== 'pclaimed') return false;
    const w = this.waiting.get(msg.seq as number);
    if (w === undefined) return true;
    this.waiting.delete(msg.seq as number);
    clearTimeout(w.timer);
    const m = msg as { listing?: PresenceListing; ok?: boolean };
    w.resolve(msg.sbhub === 'plisted' ? m.listing : m.ok === true);
    return true;
  }

  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new SwitchboardError('ERR_CLOSED', 'cluster hub: closed'));
    }
    this.waiting.clear();
  }
}

/** The primary's half: one store for every worker. */
export class PrimaryPresence {
  private readonly store = new PresenceStore<Worker>();

  /** Handles `msg` if it is a presence message (true); `reply` answers the worker that sent it. */
  handle(worker: Worker, msg: Partial<PresenceToPrimary>, reply: (m: PresenceToWorker) => void): boolean {
    switch (msg.sbhub) {
      case 'pjoin':
        if (typeof msg.topic === 'string' && typeof msg.id === 'string' && typeof msg.meta === 'string') this.store.join(msg.topic, msg.id, msg.meta, worker);
        return true;
      case 'pleave':
        this.store.leave(msg.topic as string, msg.id as string);
        return true;
      case 'plist': {
        const limit = Math.max(0, Math.min(MAX_LIST, Number(msg.limit) || 0));
        reply({ sbhub: 'plisted', seq: msg.seq as number, listing: this.store.list(msg.topic as string, limit) });
        return true;
      }
      case 'pclaim':
        reply({ sbhub: 'pclaimed', seq: msg.seq as number, ok: this.store.claim(msg.key as string, msg.holder as string, worker) });
        return true;
      case 'prelease':
        this.store.release(msg.key as string, msg.holder as string);
        return true;
      default:
        return false;
    }
  }

  /** A worker exited: its members and claims go with it. */
  forget(worker: Worker): void {
    this.store.dropOwner(worker);
  }

  clear(): void {
    this.store.clear();
  }
}
