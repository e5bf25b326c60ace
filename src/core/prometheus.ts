/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: a few dozen lines,
 * no dependency, and nothing on the hot path (the figures are plain counters read at scrape).
 * Every series carries a `worker` label ("0" outside runWorkers()); sum() over it gives totals.
 */
import type { AdminStatus } from './admin.js';
import type { Snapshot } from './metrics.js';

type Labels = Record<string, string | number>;

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escape(String(v))}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

class Writer {
  private readonly out: string[] = [];
  private readonly seen = new Set<string>();

  /** One sample; the HELP and TYPE lines come once, before the metric's first sample. */
  sample(name: string, type: 'counter' | 'gauge', help: string, labels: Labels, value: number): void {
    if (!this.seen.has(name)) {
      this.seen.add(name);
      this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    }
    this.out.push(`${name}${labelText(labels)} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    return this.out.join('\n') + '\n';
  }
}

/** Renders every worker's figures (one block per metric: its samples must stay together). */
export function renderMetrics(status: AdminStatus): string {
  const w = new Writer();
  const each = (fn: (s: Snapshot, worker: Labels) => void): void => {
    for (const s of status.workers) fn(s, { worker: s.worker });
  };
  w.sample('switchboard_healthy', 'gauge', '1 while serving (what /healthz says), 0 while starting, draining or with the hub down.', {}, status.healthy ? 1 : 0);
  each((s, l) => w.sample('switchboard_serving', 'gauge', '1 while the process serves, 0 while it starts or drains.', { ...l, pid: s.pid }, s.state === 'serving' ? 1 : 0));
  each((s, l) => w.sample('switchboard_uptime_seconds', 'gauge', 'Seconds since the server was created.', l, s.uptimeSeconds));
  const perListener = (name: string, type: 'counter' | 'gauge', help: string, pick: (l: Snapshot['listeners'][number]) => number): void => {
    each((s, lab) => {
      for (const l of s.listeners) w.sample(name, type, help, { ...lab, listener: l.url, protocol: l.protocol }, pick(l));
    });
  };
  perListener('switchboard_connections', 'gauge', 'Open connections.', (l) => l.connections);
  perListener('switchboard_connections_accepted_total', 'counter', 'Connections admitted (after the limits and the accept hook).', (l) => l.accepted);
  each((s, l) => {
    for (const [reason, n] of Object.entries(s.refused)) {
      w.sample('switchboard_connections_refused_total', 'counter', 'Connections turned away: server_full, max_per_ip, accept_hook.', { ...l, reason }, n);
    }
  });
  each((s, lab) => {
    for (const l of s.listeners) {
      for (const [reason, n] of Object.entries(l.closed)) {
        w.sample('switchboard_connections_closed_total', 'counter', 'Connections closed, by error code (ERR_BUFFER_FULL, ECONNRESET, ...) or close code (1000, 1001, 1006, ...).',
          { ...lab, listener: l.url, protocol: l.protocol, reason }, n);
      }
    }
  });
  perListener('switchboard_messages_received_total', 'counter', 'Messages received from clients.', (l) => l.messagesIn);
  perListener('switchboard_messages_sent_total', 'counter', 'Messages sent to clients (a broadcast counts once per receiver).', (l) => l.messagesOut);
  perListener('switchboard_bytes_received_total', 'counter', 'Bytes read from clients (protocol framing included).', (l) => l.bytesIn);
  perListener('switchboard_bytes_sent_total', 'counter', 'Bytes handed to the kernel for clients (protocol framing included).', (l) => l.bytesOut);
  perListener('switchboard_messages_dropped_total', 'counter', "Messages dropped by the buffer policy ('drop') for slow readers.", (l) => l.dropped);
  perListener('switchboard_buffered_bytes', 'gauge', 'Bytes waiting to be sent, summed over the connections.', (l) => l.buffered);
  each((s, l) => w.sample('switchboard_rate_limit_pauses_total', 'counter', 'Times the rate limit paused reading from a connection.', l, s.rateLimitPauses));
  each((s, l) => w.sample('switchboard_rate_limit_closes_total', 'counter', "Connections closed by the rate limit ('close' policy).", l, s.rateLimitCloses));
  each((s, l) => w.sample('switchboard_datagrams_dropped_total', 'counter', 'UDP datagrams dropped by the rate limit.', l, s.datagramsDropped));
  each((s, l) => w.sample('switchboard_topics', 'gauge', 'Topics with at least one subscriber in the process.', l, s.topics));
  each((s, l) => w.sample('switchboard_subscribers', 'gauge', 'Subscriptions (connection, topic) in the process.', l, s.subscribers));
  each((s, l) => {
    if (s.hub !== null) w.sample('switchboard_hub_up', 'gauge', '1 while the hub carries messages between processes.', { ...l, kind: s.hub.kind }, s.hub.up ? 1 : 0);
  });
  each((s, l) => {
    if (s.hub !== null) w.sample('switchboard_hub_dropped_total', 'counter', 'Publishes the hub dropped (outage or congestion).', { ...l, kind: s.hub.kind }, s.hub.dropped);
  });
  if (status.relay) {
    w.sample('switchboard_relay_dropped_total', 'counter', "Messages the primary's cluster relay dropped to congested workers.", {}, status.relay.dropped);
    w.sample('switchboard_relay_topics', 'gauge', "Topics the primary's cluster relay knows.", {}, status.relay.topics);
  }
  for (const [key, help] of [['p50', 'median'], ['p99', '99th percentile'], ['max', 'maximum']] as const) {
    each((s, l) => w.sample(`switchboard_event_loop_delay_${key}_seconds`, 'gauge', `Event-loop delay, ${help}, since the previous scrape.`, l, s.eventLoop[key]));
  }
  return w.text();
}
