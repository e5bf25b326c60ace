/**
 * One URL picks transport and protocol, for listening and for connecting alike.
 *
 *   tcp://host:port        raw bytes            tls://host:port         raw bytes over TLS
 *   text://host:port       lines (\n or \r\n)   tls+text://host:port    lines over TLS
 *   frame://host:port      4-byte length prefix tls+frame://host:port   frames over TLS
 *   ws://host:port/path    WebSocket            wss://host:port/path    WebSocket over TLS
 *   unix:///path.sock      raw over a Unix socket; unix+text://, unix+frame://, unix+ws:// likewise
 *   udp://host:port        datagrams
 *
 * The spelling is always TRANSPORT+PROTOCOL, transport first. Hosts may be IPv4 literals,
 * IPv6 literals in brackets ([::1]) or host names.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SwitchboardError } from './errors.js';

export type Transport = 'tcp' | 'tls' | 'unix' | 'udp';
export type ProtocolName = 'raw' | 'line' | 'frame' | 'ws';

export interface Address {
  /** The URL as given. */
  readonly url: string;
  readonly scheme: string;
  readonly transport: Transport;
  readonly protocol: ProtocolName;
  /** Host name or IP literal without brackets ('' for unix). */
  readonly host: string;
  /** Port number (0 for unix, or for "any free port" when listening). */
  readonly port: number;
  /** Unix socket path, for the unix transport. */
  readonly socketPath?: string;
  /** HTTP path for WebSocket (default '/'), with its query string. */
  readonly path: string;
}

const SCHEMES: Record<string, { transport: Transport; protocol: ProtocolName; defaultPort?: number }> = {
  'tcp': { transport: 'tcp', protocol: 'raw' },
  'text': { transport: 'tcp', protocol: 'line' },
  'frame': { transport: 'tcp', protocol: 'frame' },
  'ws': { transport: 'tcp', protocol: 'ws', defaultPort: 80 },
  'tls': { transport: 'tls', protocol: 'raw' },
  'tls+text': { transport: 'tls', protocol: 'line' },
  'tls+frame': { transport: 'tls', protocol: 'frame' },
  'wss': { transport: 'tls', protocol: 'ws', defaultPort: 443 },
  'tls+ws': { transport: 'tls', protocol: 'ws', defaultPort: 443 },
  'unix': { transport: 'unix', protocol: 'raw' },
  'unix+text': { transport: 'unix', protocol: 'line' },
  'unix+frame': { transport: 'unix', protocol: 'frame' },
  'unix+ws': { transport: 'unix', protocol: 'ws' },
  'udp': { transport: 'udp', protocol: 'raw' },
};

export const KNOWN_SCHEMES: readonly string[] = Object.keys(SCHEMES);

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function invalid(url: string, why: string): SwitchboardError {
  return new SwitchboardError('ERR_INVALID_URL', `invalid address "${url}": ${why}`);
}

/** Parses and checks an address URL; throws SwitchboardError before any socket is opened. */
export function parseAddress(url: string): Address {
  if (typeof url !== 'string' || url.length === 0) throw invalid(String(url), 'empty; expected e.g. text://127.0.0.1:5353');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(url);
  if (!m) throw invalid(url, 'missing scheme; expected SCHEME://HOST:PORT, e.g. text://127.0.0.1:5353');
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  const kind = SCHEMES[scheme];
  if (!kind) {
    throw new SwitchboardError('ERR_UNKNOWN_SCHEME',
      `invalid address "${url}": unknown scheme "${scheme}://"; known: ${KNOWN_SCHEMES.map((s) => s + '://').join(' ')}`);
  }
  if (/\s/.test(rest)) throw invalid(url, 'contains white space');

  if (kind.transport === 'unix') {
    // unix:///tmp/s.sock: empty authority, absolute path. For unix+ws an HTTP path may follow '?path=/chat'.
    if (!rest.startsWith('/')) throw invalid(url, 'a Unix socket URL is unix:///absolute/path.sock (three slashes)');
    const [socketPath, query] = splitOnce(rest, '?');
    if (socketPath.length < 2) throw invalid(url, 'the Unix socket path is empty');
    let path = '/';
    if (query !== undefined) {
      const p = new URLSearchParams(query).get('path');
      if (p) path = p.startsWith('/') ? p : '/' + p;
    }
    return { url, scheme, transport: kind.transport, protocol: kind.protocol, host: '', port: 0, socketPath, path };
  }

  // Authority, then an optional path (WebSocket only).
  const slash = rest.search(/[/?#]/);
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  let path = slash === -1 ? '/' : rest.slice(slash);
  if (path.startsWith('?')) path = '/' + path;
  if (path.includes('#')) throw invalid(url, 'a fragment (#...) has no meaning here');
  if (kind.protocol !== 'ws' && path !== '/' && path !== '') {
    throw invalid(url, `${scheme}:// takes no path ("${path}"); only ws:// and wss:// do`);
  }
  if (authority.includes('@')) throw invalid(url, 'user names and passwords are not supported in addresses');

  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) throw invalid(url, 'IPv6 literal is missing its closing "]"');
    host = authority.slice(1, close);
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw invalid(url, `unexpected "${after}" after the IPv6 literal`);
    portText = after === '' ? undefined : after.slice(1);
    if (!isIPv6(host)) throw invalid(url, `"${host}" is not an IPv6 address`);
  } else {
    const parts = authority.split(':');
    if (parts.length > 2) throw invalid(url, 'an IPv6 address must be written in brackets, e.g. text://[::1]:5353');
    host = parts[0]!;
    portText = parts[1];
    if (host === '') throw invalid(url, 'the host is missing');
    if (/^[0-9.]+$/.test(host)) {
      if (!isIPv4(host)) throw invalid(url, `"${host}" is not a valid IPv4 address`);
    } else if (!HOST_NAME.test(host)) {
      throw invalid(url, `"${host}" is not a valid host name`);
    }
  }

  let port: number;
  if (portText === undefined || portText === '') {
    if (kind.defaultPort === undefined) throw invalid(url, `the port is missing; write ${scheme}://${authority}:PORT`);
    port = kind.defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) throw invalid(url, `port "${portText}" is not a number`);
    port = Number(portText);
    if (port > 65535) throw invalid(url, `port ${port} is out of range (0-65535)`);
  }
  return { url, scheme, transport: kind.transport, protocol: kind.protocol, host, port, path: path || '/' };
}

/** Formats host and port the way they appear in a URL ("[::1]:80", "127.0.0.1:80"). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i === -1 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
