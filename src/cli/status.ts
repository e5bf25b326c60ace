/** `switchboard status URL`: a readable summary of a server's admin endpoint (its /status JSON). */
import type { AdminStatus } from '../core/admin.js';
import type { Snapshot } from '../core/metrics.js';
import { parseDuration } from './args.js';
import { HELP_OPTION, UsageError, noExtraArguments, parseCommandLine } from './usage.js';

export const STATUS_USAGE = `usage: switchboard status URL [options]

  URL                   the admin endpoint of \`switchboard serve --admin URL\`, e.g. http://127.0.0.1:9100
  --token TOKEN         its bearer token (or set SWITCHBOARD_ADMIN_TOKEN)
  --json                print the /status JSON as it came
  --timeout T           give up after T (default 5s)
  -h, --help            this text

Prints per worker, per listener and the busiest topics. Exit 0 when the server is healthy, 1 when
it cannot be reached, refuses the token or is not healthy (starting, draining, hub down), 2 on bad usage.`;

export async function runStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('status', {
    args: argv,
    allowPositionals: true,
    options: { ...HELP_OPTION, token: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' } },
  });
  if (values.help) {
    console.log(STATUS_USAGE);
    return 0;
  }
  const base = positionals[0];
  if (base === undefined) throw new UsageError('which server? give its admin URL, e.g. http://127.0.0.1:9100');
  noExtraArguments(positionals, 1);
  let url: URL;
  try {
    url = new URL(/^\d+$/.test(base) ? `http://127.0.0.1:${base}` : base.includes('://') ? base : `http://${base}`);
  } catch {
    throw new UsageError(`"${base}" is not a URL such as http://127.0.0.1:9100`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`"${base}": the admin endpoint speaks http://`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/status';
  const timeout = values.timeout !== undefined ? parseDuration(values.timeout, '--timeout') : 5000;
  const token = values.token ?? process.env.SWITCHBOARD_ADMIN_TOKEN;
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeout) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? (err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${timeout} ms` : String(err));
    console.error(`switchboard status: cannot reach ${url.href}: ${why}`);
    return 1;
  }
  const body = await res.text();
  if (res.status === 401) {
    console.error(`switchboard status: ${url.href} wants a token: --token TOKEN (or SWITCHBOARD_ADMIN_TOKEN)`);
    return 1;
  }
  if (!res.ok) {
    console.error(`switchboard status: ${url.href} answered ${res.status}: ${body.trim().slice(0, 200)}`);
    return 1;
  }
  let status: AdminStatus;
  try {
    status = JSON.parse(body) as AdminStatus;
    if (typeof status !== 'object' || status === null || !Array.isArray(status.workers)) throw new Error('no workers');
  } catch {
    console.error(`switchboard status: ${url.href} did not answer with switchboard's /status JSON`);
    return 1;
  }
  console.log(values.json ? body.trimEnd() : formatStatus(status, url.origin));
  return status.healthy ? 0 : 1;
}

/** The summary, as plain aligned text. */
export function formatStatus(s: AdminStatus, where: string): string {
  const t = s.total;
  const out: string[] = [];
  const sum = (f: (l: Snapshot['listeners'][number]) => number, snap: Snapshot): number => snap.listeners.reduce((n, l) => n + f(l), 0);
  const refused = Object.values(t.refused).reduce((n, v) => n + v, 0);
  out.push(`${where}: ${s.healthy ? 'healthy' : `NOT healthy (${s.problem})`}; ${s.role === 'primary' ? `primary pid ${s.pid}, ${s.workers.length} worker(s)` : `pid ${s.pid}`}, up ${duration(t.uptimeSeconds)}`);
  out.push(`  ${sum((l) => l.connections, t)} connection(s); messages ${sum((l) => l.messagesIn, t)} in, ${sum((l) => l.messagesOut, t)} out; ` +
    `${bytes(sum((l) => l.bytesIn, t))} in, ${bytes(sum((l) => l.bytesOut, t))} out; ${sum((l) => l.dropped, t)} dropped; ${refused} refused; ` +
    `${bytes(sum((l) => l.buffered, t))} buffered`);
  out.push('');
  out.push(table(['worker', 'pid', 'state', 'conns', 'msgs in', 'msgs out', 'bytes in', 'bytes out', 'loop p99'], s.workers.map((w) => [
    String(w.worker), String(w.pid), w.state, String(sum((l) => l.connections, w)), String(sum((l) => l.messagesIn, w)), String(sum((l) => l.messagesOut, w)),
    bytes(sum((l) => l.bytesIn, w)), bytes(sum((l) => l.bytesOut, w)), `${(w.eventLoop.p99 * 1000).toFixed(1)} ms`,
  ])));
  out.push('');
  out.push(table(['listener', 'proto', 'conns', 'accepted', 'msgs in', 'msgs out', 'dropped', 'closed'], t.listeners.map((l) => [
    l.url, l.protocol, String(l.connections), String(l.accepted), String(l.messagesIn), String(l.messagesOut), String(l.dropped),
    Object.entries(l.closed).map(([k, n]) => `${k}:${n}`).join(' ') || '-',
  ])));
  out.push('');
  out.push(t.topTopics.length === 0 ? 'topics: none' : `topics: ${t.topics} (${t.subscribers} subscription(s)); busiest: ${t.topTopics.map((x) => `${x.topic} (${x.subscribers})`).join(', ')}`);
  if (t.hub !== null) out.push(`hub: ${t.hub.kind} ${t.hub.up ? 'up' : 'DOWN'}, ${t.hub.dropped} dropped`);
  if (s.relay) out.push(`relay: ${s.relay.topics} topic(s), ${s.relay.dropped} dropped`);
  if (t.rateLimitPauses + t.rateLimitCloses + t.datagramsDropped > 0) {
    out.push(`rate limit: ${t.rateLimitPauses} pause(s), ${t.rateLimitCloses} close(s), ${t.datagramsDropped} datagram(s) dropped`);
  }
  return out.join('\n');
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

function duration(s: number): string {
  if (s < 120) return `${Math.round(s)}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}
