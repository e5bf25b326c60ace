/**
 * The operator's HTTP endpoint: GET /metrics (Prometheus text format 0.0.4), /healthz (200 while
 * serving, 503 while starting, draining or with the hub down) and /status (JSON). Loopback only
 * unless a bearer token is set. Figures come from snapshots taken when asked (see metrics.ts):
 * one Server's, or in the primary of runWorkers() every worker's, fetched over the IPC channel.
 */
import http from 'node:http';
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { SwitchboardError, transportError } from '../errors.js';
import { eventLoopDelay, mergeSnapshots, topOf, type ListenerSnapshot, type Snapshot } from './metrics.js';
import { renderMetrics } from './prometheus.js';

/** 'http://127.0.0.1:9100' (or '127.0.0.1:9100', '9100'), or with a token: { url, token }. */
export type AdminOption = string | { url: string; token?: string };

/** What /status answers (and `switchboard status` reads). */
export interface AdminStatus {
  healthy: boolean;
  /** Why not healthy ('' when healthy). */
  problem: string;
  role: 'server' | 'primary';
  pid: number;
  /** The sum over workers (or the one server's figures). */
  total: Snapshot;
  /** One per worker process (one entry outside workers). */
  workers: Snapshot[];
  /** The primary's cluster relay: messages dropped to congested workers. */
  relay?: { dropped: number; topics: number };
}

export interface AdminView {
  role: 'server' | 'primary';
  snapshots: Snapshot[];
  /** The primary is stopping or restarting workers: not healthy whatever the workers say. */
  draining?: boolean;
  relay?: { dropped: number; topics: number };
}

export interface AdminHandle {
  /** The bound URL (a port 0 replaced). */
  readonly url: string;
  close(): Promise<void>;
}

/** Parses and checks the option before anything is bound. */
export function parseAdminOption(option: AdminOption): { host: string; port: number; token: string | null } {
  const spec = typeof option === 'string' ? option : option?.url;
  const token = typeof option === 'object' && option !== null && option.token !== undefined ? option.token : null;
  if (typeof spec !== 'string' || spec === '') throw new SwitchboardError('ERR_INVALID_OPTION', 'option admin needs a URL such as http://127.0.0.1:9100');
  if (token !== null && (typeof token !== 'string' || token.length === 0)) throw new SwitchboardError('ERR_INVALID_OPTION', 'option admin.token must be a non-empty string');
  let url: URL;
  try {
    url = new URL(/^\d+$/.test(spec) ? `http://127.0.0.1:${spec}` : spec.includes('://') ? spec : `http://${spec}`);
  } catch {
    throw new SwitchboardError('ERR_INVALID_OPTION', `option admin: "${spec}" is not a URL such as http://127.0.0.1:9100`);
  }
  if (url.protocol !== 'http:' || url.port === '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `option admin: "${spec}" must be http://HOST:PORT (no path)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (token === null && !isLoopback(host)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `option admin: ${host} is not a loopback address; give a token (admin: { url, token }) to serve metrics beyond this machine`);
  }
  return { host, port: Number(url.port), token };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export async function startAdmin(option: AdminOption, view: () => Promise<AdminView> | AdminView): Promise<AdminHandle> {
  const { host, port, token } = parseAdminOption(option);
  const want = token === null ? null : digest(`Bearer ${token}`);
  eventLoopDelay(); // starts the sampling now, so the first scrape has figures
  const srv = http.createServer((req, res) => {
    if (want !== null) {
      // Compared as digests, in constant time: no length or prefix leaks through timing.
      const got = digest(req.headers.authorization ?? '');
      if (!timingSafeEqual(got, want)) {
        res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="switchboard"' }).end('401 Unauthorized: send Authorization: Bearer TOKEN\n');
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('405 Method Not Allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/status') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 Not Found: try /metrics, /healthz or /status\n');
      return;
    }
    Promise.resolve(view()).then((v) => {
      const status = statusOf(v);
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderMetrics(status));
      } else if (path === '/healthz') {
        res.writeHead(status.healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(status.healthy ? 'ok\n' : `${status.problem}\n`);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status, null, 2) + '\n');
      }
    }, (err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`500 ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  // An operator's endpoint: small requests, answered at once; nobody may hold it open for long.
  srv.headersTimeout = 5_000;
  srv.requestTimeout = 10_000;
  srv.keepAliveTimeout = 5_000;
  srv.maxHeadersCount = 50;
  await new Promise<void>((resolve, reject) => {
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(transportError(err, 'ERR_LISTEN', `cannot listen on the admin address http://${host.includes(':') ? `[${host}]` : host}:${port}: ${err.message}`));
    });
    srv.listen({ host, port, exclusive: true }, () => resolve());
  });
  const a = srv.address() as net.AddressInfo;
  srv.unref();
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`,
    close: () => new Promise<void>((resolve) => {
      srv.close(() => resolve());
      srv.closeAllConnections();
    }),
  };
}

export function statusOf(v: AdminView): AdminStatus {
  const total = totalOf(v.snapshots);
  let problem = '';
  if (v.snapshots.length === 0) problem = 'no worker is running';
  else if (v.draining === true) problem = 'draining';
  else {
    const notServing = v.snapshots.find((s) => s.state !== 'serving');
    const hubDown = v.snapshots.find((s) => s.hub !== null && !s.hub.up);
    if (notServing) problem = notServing.state === 'starting' ? 'starting' : 'draining';
    else if (hubDown) problem = `hub down (${hubDown.hub!.kind})`;
  }
  return { healthy: problem === '', problem, role: v.role, pid: process.pid, total, workers: v.snapshots, ...(v.relay ? { relay: v.relay } : {}) };
}

/** The sum of several processes' snapshots: listeners with the same URL are added up. */
export function totalOf(list: Snapshot[]): Snapshot {
  if (list.length === 0) return mergeSnapshots([emptySnapshot()]);
  const merged = mergeSnapshots(list.length === 1 ? list : [...list]);
  const byUrl = new Map<string, ListenerSnapshot>();
  for (const l of merged.listeners) {
    const t = byUrl.get(l.url);
    if (t === undefined) {
      byUrl.set(l.url, { ...l, closed: { ...l.closed } });
      continue;
    }
    t.connections += l.connections;
    t.accepted += l.accepted;
    t.messagesIn += l.messagesIn;
    t.messagesOut += l.messagesOut;
    t.bytesIn += l.bytesIn;
    t.bytesOut += l.bytesOut;
    t.dropped += l.dropped;
    t.buffered += l.buffered;
    for (const [k, n] of Object.entries(l.closed)) t.closed[k] = (t.closed[k] ?? 0) + n;
  }
  const tops = new Map<string, number>();
  for (const s of list) for (const t of s.topTopics) tops.set(t.topic, (tops.get(t.topic) ?? 0) + t.subscribers);
  const hubs = list.map((s) => s.hub).filter((h) => h !== null);
  return {
    ...merged,
    pid: process.pid,
    worker: 0,
    listeners: [...byUrl.values()],
    topTopics: topOf(tops),
    hub: hubs.length === 0 ? null : { kind: hubs[0]!.kind, up: hubs.every((h) => h.up), dropped: hubs.reduce((n, h) => n + h.dropped, 0) },
    eventLoop: list.reduce((m, s) => (s.eventLoop.p99 > m.p99 ? s.eventLoop : m), list[0]!.eventLoop),
  };
}

function emptySnapshot(): Snapshot {
  return {
    pid: process.pid, worker: 0, state: 'starting', uptimeSeconds: 0, listeners: [], refused: {}, rateLimitPauses: 0, rateLimitCloses: 0,
    datagramsDropped: 0, topics: 0, subscribers: 0, topTopics: [], hub: null, eventLoop: { mean: 0, p50: 0, p99: 0, max: 0 },
  };
}

// ---- workers: the primary asks, each worker answers with its servers' snapshot ----

type AdminMessage = { sbadmin: 'snapshot?'; id: number } | { sbadmin: 'snapshot'; id: number; snapshot: Snapshot | null };

interface Watched {
  readonly state: Snapshot['state'];
  snapshot(): Snapshot;
  once(event: 'close', listener: () => void): unknown;
}
const watched = new Set<Watched>();
let answering = false;

/** In a runWorkers() worker: the primary's admin endpoint may ask for this server's snapshot. */
export function watchWorkerServer(server: Watched): void {
  watched.add(server);
  eventLoopDelay();
  server.once('close', () => watched.delete(server));
  if (answering) return;
  answering = true;
  process.on('message', (raw: unknown) => {
    const msg = raw as Partial<AdminMessage> | null;
    if (typeof msg !== 'object' || msg === null || msg.sbadmin !== 'snapshot?' || typeof msg.id !== 'number') return;
    const list = [...watched].map((s) => s.snapshot());
    const reply: AdminMessage = { sbadmin: 'snapshot', id: msg.id, snapshot: list.length > 0 ? mergeSnapshots(list) : null };
    if (process.connected && process.send !== undefined) process.send(reply, undefined, undefined, () => {});
  });
}

let nextRequest = 1;
const pending = new Map<number, (s: Snapshot | null) => void>();
let listening = false;

/**
 * In the primary: every worker's snapshot (workers that do not answer within `timeout` ms, or
 * have no server yet, appear as 'starting' with zeros, so that /healthz is not fooled).
 */
export async function askWorkers(workers: readonly { worker: Worker; index: number }[], timeout = 2000): Promise<Snapshot[]> {
  if (!listening) {
    listening = true;
    cluster.on('message', (_w: Worker, raw: unknown) => {
      const msg = raw as Partial<AdminMessage> | null;
      if (typeof msg !== 'object' || msg === null || msg.sbadmin !== 'snapshot' || typeof msg.id !== 'number') return;
      const done = pending.get(msg.id);
      if (done !== undefined) done((msg as { snapshot: Snapshot | null }).snapshot);
    });
  }
  return Promise.all(workers.map(({ worker, index }) => new Promise<Snapshot>((resolve) => {
    const id = nextRequest++;
    const fallback = (): Snapshot => ({ ...emptySnapshot(), pid: worker.process.pid ?? 0, worker: index });
    const timer = setTimeout(() => finish(null), timeout);
    const finish = (s: Snapshot | null): void => {
      clearTimeout(timer);
      pending.delete(id);
      resolve(s ?? fallback());
    };
    pending.set(id, finish);
    if (!worker.isConnected()) finish(null);
    else worker.send({ sbadmin: 'snapshot?', id } satisfies AdminMessage, undefined, () => {});
  })));
}
