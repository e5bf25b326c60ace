/** `switchboard probe HOST PORTS`: which TCP ports accept a connection. */
import { probePorts, type ProbeResult } from '../core/probe.js';
import { parseCount, parseDuration, parsePorts } from './args.js';
import { HELP_OPTION, UsageError, noExtraArguments, parseCommandLine } from './usage.js';

export const PROBE_USAGE = `usage: switchboard probe HOST PORTS [options]

  HOST                  an IP address or a host name (looked up once)
  PORTS                 ports and ranges, e.g. 22,80,8000-8100
  --concurrency N       connections attempted at once (default 100, at most 1000)
  --timeout T           a port that does not answer within T counts as closed (default 1s)
  -h, --help            this text

Prints each open port on stdout and a summary on stderr. Exit 0 when the probe ran (whatever it
found), 1 when the host does not resolve, 2 on bad usage.`;

export async function runProbe(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('probe', {
    args: argv,
    allowPositionals: true,
    options: { ...HELP_OPTION, concurrency: { type: 'string' }, timeout: { type: 'string' } },
  });
  if (values.help) {
    console.log(PROBE_USAGE);
    return 0;
  }
  const [host, ports] = positionals;
  if (!host || !ports) throw new UsageError('which host and ports? e.g. switchboard probe 127.0.0.1 22,80,8000-8100');
  noExtraArguments(positionals, 2);
  const results = await probePorts(host, parsePorts(ports), {
    concurrency: values.concurrency ? parseCount(values.concurrency, '--concurrency', 1) : undefined,
    timeout: values.timeout ? parseDuration(values.timeout, '--timeout') : undefined,
  });
  const open = results.filter((r) => r.open);
  for (const r of open) console.log(`${r.port} open`);
  console.error(`${open.length} of ${results.length} ports open on ${host}${closedSummary(results)}`);
  return 0;
}

/** Why the others are closed, by count: "; 3 refused, 1 no answer (ETIMEDOUT)". */
function closedSummary(results: readonly ProbeResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) if (!r.open) counts.set(r.error ?? 'closed', (counts.get(r.error ?? 'closed') ?? 0) + 1);
  if (counts.size === 0) return '';
  const words: Record<string, string> = { ECONNREFUSED: 'refused', ETIMEDOUT: 'no answer within the timeout' };
  return '; ' + [...counts].map(([why, n]) => `${n} ${words[why] ?? why}`).join(', ');
}
