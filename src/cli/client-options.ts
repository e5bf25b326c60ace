/**
 * The options of every command that connects somewhere (send, connect, bridge's upstream):
 * timeouts, TLS trust, and the WebSocket request (headers, Origin, subprotocols), turned into
 * connect()'s options. A value that cannot be right is bad usage (exit 2) before anything connects.
 */
import type { ConnectOptions } from '../index.js';
import { parseAddress } from '../index.js';
import type { TlsClientOptions } from '../transport/index.js';
import { parseDuration } from './args.js';
import { UsageError, readOptionFile } from './usage.js';

export const CLIENT_HELP = `  -H, --header 'N: V'   a WebSocket request header (repeatable), e.g. -H 'Authorization: Bearer x'
  --origin ORIGIN       the Origin header (what a browser would send), e.g. https://example.com
  --protocol NAME       offer this WebSocket subprotocol (repeatable, in preference order)
  --timeout T           connect timeout (default 5s)
  --ca FILE             trust this certificate authority (tls://, wss://)
  --insecure            trust any certificate (for tests)`;

export const CLIENT_OPTIONS = {
  'header': { type: 'string', short: 'H', multiple: true },
  'origin': { type: 'string' },
  'protocol': { type: 'string', multiple: true },
  'timeout': { type: 'string' },
  'ca': { type: 'string' },
  'insecure': { type: 'boolean' },
} as const;

export interface ClientValues {
  header?: string[];
  origin?: string;
  protocol?: string[];
  timeout?: string;
  ca?: string;
  insecure?: boolean;
}

/** RFC 7230's token: what a header name or a subprotocol may be made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the handshake writes itself: given twice they would make a request servers refuse. */
const OWN_HEADERS = new Set(['host', 'upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

/** connect()'s options from the command line (a bad value is a UsageError; an unreadable --ca file fails at run time). */
export function clientOptions(url: string, values: ClientValues): ConnectOptions {
  const isWs = parseAddress(url).protocol === 'ws';
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const colon = h.indexOf(':');
    const name = colon > 0 ? h.slice(0, colon).trim() : '';
    const value = colon > 0 ? h.slice(colon + 1).trim() : '';
    if (!TOKEN.test(name)) throw new UsageError(`--header: "${h}" is not a header; write it as 'Name: value'`);
    if (/[\r\n\0]/.test(value)) throw new UsageError(`--header: the value of ${name} has a line break or NUL`);
    if (OWN_HEADERS.has(name.toLowerCase())) {
      throw new UsageError(`--header: ${name} is written by the WebSocket handshake itself${name.toLowerCase() === 'sec-websocket-protocol' ? ' (use --protocol NAME)' : ''}`);
    }
    headers[name] = value;
  }
  if (values.origin !== undefined) {
    if (/[\r\n\0]/.test(values.origin) || values.origin === '') throw new UsageError('--origin: give an origin such as https://example.com');
    headers['Origin'] = values.origin;
  }
  const protocols = values.protocol ?? [];
  for (const p of protocols) if (!TOKEN.test(p)) throw new UsageError(`--protocol: "${p}" is not a subprotocol name (a token: letters, digits, - . _ ...)`);
  const wsOnly = Object.keys(headers).length > 0 || protocols.length > 0;
  if (wsOnly && !isWs) throw new UsageError(`--header, --origin and --protocol are for ws:// and wss:// (not ${url})`);
  const options: ConnectOptions = { connectTimeout: values.timeout ? parseDuration(values.timeout, '--timeout') : 5000 };
  const tls = tlsOptions(values);
  if (tls) options.tls = tls;
  if (wsOnly) options.websocket = { ...(protocols.length > 0 ? { protocols } : {}), ...(Object.keys(headers).length > 0 ? { headers } : {}) };
  return options;
}

/** --ca FILE trusts that certificate authority; --insecure accepts any certificate (testing only). */
function tlsOptions(values: { ca?: string; insecure?: boolean }): TlsClientOptions | undefined {
  if (!values.ca && !values.insecure) return undefined;
  return { ...(values.ca ? { ca: readOptionFile('--ca', values.ca) } : {}), ...(values.insecure ? { rejectUnauthorized: false } : {}) };
}
