/** `switchboard send` and `switchboard connect`: clients for any URL the toolkit speaks. */
import { createInterface } from 'node:readline';
import { connect } from '../core/client.js';
import type { Connection } from '../core/connection.js';
import type { CloseInfo, Message } from '../codec/types.js';
import { parseDuration, unescapeText } from './args.js';
import type { TlsClientOptions } from '../transport/index.js';
import { HELP_OPTION, UsageError, addressArgument, describeError, noExtraArguments, parseCommandLine, readOptionFile } from './usage.js';

const CONNECT_HELP = `  --timeout T           connect timeout (default 5s)
  --ca FILE             trust this certificate authority (tls://, wss://)
  --insecure            trust any certificate (for tests)
  -h, --help            this text`;

export const SEND_USAGE = `usage: switchboard send URL [MESSAGE] [options]

Connects to URL, sends MESSAGE (omitted or "-": stdin; on text:// each line is one message) and
prints what comes back until the peer closes or is quiet for --quiet-time.

  -e                    interpret \\n \\r \\t \\0 \\\\ \\xHH escapes in MESSAGE
  --quiet-time T        stop after T without data (default 1s)
${CONNECT_HELP}

Exit 0 when it connected and the exchange ended cleanly, 1 when it could not connect or the
connection failed (refused datagram, reset, protocol error), 2 on bad usage.`;

export const CONNECT_USAGE = `usage: switchboard connect URL [options]

Like nc: stdin to the server (a line per message on text:// and ws://), the server's messages to stdout.

  --quiet-time T        udp://: after the end of input, wait until T passes without data (default 1s)
${CONNECT_HELP}

Exit 0 when the connection ended cleanly, 1 when it could not connect or failed, 2 on bad usage.`;

function printMessage(conn: Connection, m: Message): void {
  if (typeof m !== 'string') process.stdout.write(m);
  else process.stdout.write(conn.protocol === 'raw' ? m : m + '\n');
}

/** Exit codes: 0 connected and sent; 1 could not connect or the connection failed; 2 bad usage. */
export async function runSend(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('send', {
    args: argv,
    allowPositionals: true,
    options: {
      ...CONNECT_OPTIONS,
      'e': { type: 'boolean', short: 'e' },
      'quiet-time': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(SEND_USAGE);
    return 0;
  }
  const [url, message] = positionals;
  if (!url) throw new UsageError('which URL? e.g. switchboard send tcp://127.0.0.1:5353 \'Hello Server\'');
  noExtraArguments(positionals, 2);
  addressArgument(url); // a malformed URL is a usage error (exit 2), not a failed connection
  const quiet = values['quiet-time'] ? parseDuration(values['quiet-time'], '--quiet-time') : 1000;
  let payload: string | Buffer;
  if (message === undefined || message === '-') payload = await readStdin();
  else payload = values.e ? unescapeText(message) : message;

  const conn = await open('send', url, values);
  if (conn === null) return 1;
  // Each line goes as one message; the protocol adds the newline.
  if (conn.protocol === 'line') {
    const text = typeof payload === 'string' ? payload : payload.toString('utf8');
    for (const line of text.replace(/\r?\n$/, '').split(/\r?\n/)) conn.send(line);
  } else conn.send(payload);

  conn.on('message', (m) => printMessage(conn, m));
  closeWhenQuiet(conn, quiet);
  return reportClose('send', url, await conn.closed());
}

export async function runConnect(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('connect', {
    args: argv,
    allowPositionals: true,
    options: { ...CONNECT_OPTIONS, 'quiet-time': { type: 'string' } },
  });
  if (values.help) {
    console.log(CONNECT_USAGE);
    return 0;
  }
  const [url] = positionals;
  if (!url) throw new UsageError('which URL? e.g. switchboard connect text://127.0.0.1:9999');
  noExtraArguments(positionals, 1);
  addressArgument(url);
  const conn = await open('connect', url, values);
  if (conn === null) return 1;
  const quiet = values['quiet-time'] ? parseDuration(values['quiet-time'], '--quiet-time') : 1000;
  console.error(`connected to ${url} (${conn.remote}); end input with Ctrl-D`);
  conn.on('message', (m) => printMessage(conn, m));
  // A stream is half-closed at the end of input and the peer's last words still arrive; UDP has
  // no half-close, so the answers to the last datagrams are awaited until the peer is quiet.
  const endOfInput = (): void => {
    if (conn.address.transport === 'udp') closeWhenQuiet(conn, quiet);
    else conn.close();
  };
  if (conn.protocol === 'raw') {
    process.stdin.on('data', (chunk: Buffer) => conn.send(chunk));
    process.stdin.on('end', endOfInput);
  } else {
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (line) => conn.send(line));
    rl.on('close', endOfInput);
  }
  const info = await conn.closed();
  process.stdin.pause();
  process.stdin.unref?.();
  if (!info.error) console.error(`connection closed (${info.code}${info.reason ? ' ' + info.reason : ''})`);
  return reportClose('connect', url, info);
}

/** Closes the connection once nothing has arrived for `quiet` ms. */
function closeWhenQuiet(conn: Connection, quiet: number): void {
  let timer = setTimeout(() => conn.close(), quiet);
  conn.on('message', () => {
    clearTimeout(timer);
    timer = setTimeout(() => conn.close(), quiet);
  });
  void conn.closed().then(() => clearTimeout(timer));
}

/** A connection that ended with an error (a refused datagram, a reset, a protocol error) failed: exit 1. */
function reportClose(command: string, url: string, info: CloseInfo): number {
  if (!info.error) return 0;
  const text = describeError(info.error);
  console.error(`switchboard ${command}: ${text.includes(url) ? text : `${url}: ${text}`}`);
  return 1;
}

/** The options both client commands take: --timeout T, --ca FILE, --insecure, --help. */
const CONNECT_OPTIONS = {
  ...HELP_OPTION,
  'timeout': { type: 'string' },
  'ca': { type: 'string' },
  'insecure': { type: 'boolean' },
} as const;

/** Connects, or says why not on stderr and gives null (the command then exits 1). */
async function open(command: string, url: string, values: { timeout?: string; ca?: string; insecure?: boolean }): Promise<Connection | null> {
  // Bad option values throw here, before the try: they are usage errors (exit 2), not failed connections.
  const options = { connectTimeout: values.timeout ? parseDuration(values.timeout, '--timeout') : 5000, tls: tlsOptions(values) };
  try {
    return await connect(url, options);
  } catch (err) {
    // A certificate that is not trusted is the usual first meeting with tls://: say what to do.
    const code = String((err as NodeJS.ErrnoException).code ?? '');
    const hint = /CERT|SELF_SIGNED|ALTNAME/.test(code) ? ' (--ca FILE trusts the authority that signed it; --insecure trusts any certificate)' : '';
    console.error(`switchboard ${command}: cannot connect to ${url}: ${describeError(err)}${hint}`);
    return null;
  }
}

/** --ca FILE trusts that certificate authority; --insecure accepts any certificate (testing only). */
function tlsOptions(values: { ca?: string; insecure?: boolean }): TlsClientOptions | undefined {
  if (!values.ca && !values.insecure) return undefined;
  return { ...(values.ca ? { ca: readOptionFile('--ca', values.ca) } : {}), ...(values.insecure ? { rejectUnauthorized: false } : {}) };
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
