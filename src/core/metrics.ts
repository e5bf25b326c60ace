/**
 * What a server did, counted where it costs least: one stats object per listener address, shared
 * by its connections (found once, in the connection's per-listener `Shared` record). The hot paths
 * add to a field of it per socket read (bytes in), per flush (bytes out) and per message; gauges
 * (open connections, buffered bytes, topics) are not kept at all but read at scrape time.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Address } from '../address.js';

/** Counters of one listener (one per Address object: a server's listen URL). */
export class ListenerStats {
  /** Connections admitted (after the limits and the accept hook). */
  accepted = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Messages not sent because the buffer policy ('drop') dropped them. */
  dropped = 0;
  /** Closed connections by reason: the error's code (ERR_BUFFER_FULL, ECONNRESET, ...) or the close code. */
  readonly closed = new Map<string, number>();

  /** @internal Once per closed connection. */
  countClose(reason: string): void {
    const m = this.closed;
    // Reasons come from a small set of codes; a cap keeps a stream of odd errno names bounded.
    const key = m.has(reason) || m.size < MAX_REASONS ? reason : 'other';
    m.set(key, (m.get(key) ?? 0) + 1);
  }
}

const MAX_REASONS = 32;
const statsByAddress = new WeakMap<Address, ListenerStats>();

/** The stats object of a listener address (made on first use). */
export function listenerStats(address: Address): ListenerStats {
  let s = statsByAddress.get(address);
  if (s === undefined) statsByAddress.set(address, (s = new ListenerStats()));
  return s;
}

/** One listener's figures in a snapshot. */
export interface ListenerSnapshot {
  url: string;
  protocol: string;
  connections: number;
  accepted: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
  /** Bytes accepted by send() and not yet handed to the kernel, summed over the connections. */
  buffered: number;
  closed: Record<string, number>;
}

/** One process's figures (a Server, or the sum of a worker's servers): plain data, sent over IPC as is. */
export interface Snapshot {
  pid: number;
  /** 0 outside workers; 1..N in a worker. */
  worker: number;
  state: 'starting' | 'serving' | 'draining' | 'closed';
  uptimeSeconds: number;
  listeners: ListenerSnapshot[];
  refused: Record<string, number>;
  rateLimitPauses: number;
  rateLimitCloses: number;
  datagramsDropped: number;
  topics: number;
  subscribers: number;
  /** The busiest topics by subscribers here (at most TOP_TOPICS). */
  topTopics: { topic: string; subscribers: number }[];
  hub: { kind: string; up: boolean; dropped: number } | null;
  /** Event-loop delay since the previous snapshot, in seconds. */
  eventLoop: { mean: number; p50: number; p99: number; max: number };
}

export const TOP_TOPICS = 10;

let histogram: IntervalHistogram | null = null;

/** Event-loop delay since the last call, sampled every 20 ms (one timer per process, started on first use). */
export function eventLoopDelay(): Snapshot['eventLoop'] {
  if (histogram === null) {
    histogram = monitorEventLoopDelay({ resolution: 20 });
    histogram.enable();
  }
  const h = histogram;
  const s = (ns: number): number => (Number.isFinite(ns) ? ns / 1e9 : 0);
  const out = h.count > 0 ? { mean: s(h.mean), p50: s(h.percentile(50)), p99: s(h.percentile(99)), max: s(h.max) } : { mean: 0, p50: 0, p99: 0, max: 0 };
  h.reset();
  return out;
}

/** Classifies a refusal reason (Server's 'refused' event) into a label. */
export function refusalKind(reason: string): string {
  if (reason.startsWith('server full')) return 'server_full';
  if (reason.startsWith('too many connections from')) return 'max_per_ip';
  if (reason.includes('accept hook')) return 'accept_hook';
  return 'other';
}

/** Adds snapshots of several servers of one process into one. */
export function mergeSnapshots(list: Snapshot[]): Snapshot {
  if (list.length === 1) return list[0]!;
  const first = list[0]!;
  const out: Snapshot = { ...first, listeners: [], refused: {}, topTopics: [], rateLimitPauses: 0, rateLimitCloses: 0, datagramsDropped: 0, topics: 0, subscribers: 0 };
  const tops = new Map<string, number>();
  for (const s of list) {
    out.listeners.push(...s.listeners);
    for (const [k, v] of Object.entries(s.refused)) out.refused[k] = (out.refused[k] ?? 0) + v;
    out.rateLimitPauses += s.rateLimitPauses;
    out.rateLimitCloses += s.rateLimitCloses;
    out.datagramsDropped += s.datagramsDropped;
    out.topics += s.topics;
    out.subscribers += s.subscribers;
    for (const t of s.topTopics) tops.set(t.topic, (tops.get(t.topic) ?? 0) + t.subscribers);
    if (s.state === 'draining' || (s.state === 'closed' && out.state === 'serving')) out.state = s.state;
  }
  out.topTopics = topOf(tops);
  return out;
}

export function topOf(counts: Map<string, number>): { topic: string; subscribers: number }[] {
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP_TOPICS).map(([topic, subscribers]) => ({ topic, subscribers }));
}

/** What a Server hands to snapshotOf (its own fields; nothing is copied until a scrape asks). */
export interface SnapshotSource {
  addresses: readonly Address[];
  bound: readonly string[];
  connections: Iterable<{ address: Address; bufferedAmount: number }>;
  state: Snapshot['state'];
  startedAt: number;
  limitStats: { rateLimitPauses: number; rateLimitCloses: number; datagramsDropped: number };
  refusedBy: ReadonlyMap<string, number>;
  topics: ReadonlyMap<string, ReadonlySet<unknown>>;
  hub: { kind: string; up?: boolean; dropped?: number } | null;
}

/** Reads a server's counters and walks its connections once (O(connections), at scrape time only). */
export function snapshotOf(src: SnapshotSource): Snapshot {
  const open = new Map<Address, { n: number; buffered: number }>();
  for (const c of src.connections) {
    let o = open.get(c.address);
    if (o === undefined) open.set(c.address, (o = { n: 0, buffered: 0 }));
    o.n++;
    o.buffered += c.bufferedAmount;
  }
  const listeners = src.addresses.map((a, i): ListenerSnapshot => {
    const s = listenerStats(a);
    const o = open.get(a);
    return {
      url: src.bound[i] ?? a.url, protocol: a.protocol, connections: o?.n ?? 0, accepted: s.accepted,
      messagesIn: s.messagesIn, messagesOut: s.messagesOut, bytesIn: s.bytesIn, bytesOut: s.bytesOut,
      dropped: s.dropped, buffered: o?.buffered ?? 0, closed: Object.fromEntries(s.closed),
    };
  });
  let subscribers = 0;
  const counts = new Map<string, number>();
  for (const [topic, set] of src.topics) {
    subscribers += set.size;
    counts.set(topic, set.size);
  }
  const hub = src.hub;
  return {
    pid: process.pid,
    worker: Number(process.env.SWITCHBOARD_WORKER_INDEX ?? 0) || 0,
    state: src.state,
    uptimeSeconds: (Date.now() - src.startedAt) / 1000,
    listeners,
    refused: Object.fromEntries(src.refusedBy),
    rateLimitPauses: src.limitStats.rateLimitPauses,
    rateLimitCloses: src.limitStats.rateLimitCloses,
    datagramsDropped: src.limitStats.datagramsDropped,
    topics: src.topics.size,
    subscribers,
    topTopics: topOf(counts),
    hub: hub === null ? null : { kind: hub.kind, up: hub.up ?? true, dropped: hub.dropped ?? 0 },
    eventLoop: eventLoopDelay(),
  };
}
