/**
 * Small parsers for command-line values: durations ("500ms", "5s", "2m", plain ms) and sizes ("64k", "1m").
 * A value they cannot read is bad usage (UsageError: exit 2).
 */
import { UsageError } from './usage.js';

export function parseDuration(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${name}: "${text}" is not a duration (e.g. 500ms, 5s, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

export function parseSize(text: string, name: string): number {
  const m = /^(\d+)([kmg]i?b?)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${name}: "${text}" is not a size (e.g. 4096, 64k, 1m)`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1);
}

export function parseCount(text: string, name: string, min = 0): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${name}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min) throw new UsageError(`${name}: must be at least ${min}, got ${n}`);
  return n;
}

/** "22,80,8000-8010" -> [22, 80, 8000, ..., 8010]; throws on anything outside 1-65535. */
export function parsePorts(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new UsageError(`ports: "${part}" is not a port or a range (e.g. 80, 8000-8010)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to > 65535 || from > to) throw new UsageError(`ports: "${part}" is outside 1-65535 or reversed`);
    for (let p = from; p <= to; p++) out.add(p);
  }
  return [...out];
}

/** Interprets backslash escapes as `echo -e` does: \n \r \t \0 \\ \xHH. */
export function unescapeText(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[nrt0\\])/g, (_, e: string) => {
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '0': return '\0';
      case '\\': return '\\';
      default: return String.fromCharCode(parseInt(e.slice(1), 16));
    }
  });
}
