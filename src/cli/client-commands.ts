/** `switchboard send` and `switchboard connect`: clients for any URL the toolkit speaks. */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect } from '../core/client.js';
import type { Connection } from '../core/connection.js';
import type { Message } from '../codec/types.js';
import { parseDuration, unescapeText } from './args.js';
import { parseAddress } from '../address.js';
import type { TlsClientOptions } from '../transport/index.js';

function printMessage(conn: Connection, m: Message): void {
  if (typeof m !== 'string') process.stdout.write(m);
  else process.stdout.write(conn.protocol === 'raw' ? m : m + '\n');
}

/** Exit codes: 0 connected and sent; 1 could not connect; 2 bad usage. */
export async function runSend(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...CONNECT_OPTIONS,
      'e': { type: 'boolean', short: 'e' },
      'quiet-time': { type: 'string' },
    },
  });
  const [url, message] = positionals;
  if (!url) {
    console.error('usage: switchboard send URL [MESSAGE]   (MESSAGE omitted or "-": read stdin)');
    return 2;
  }
  parseAddress(url); // a malformed URL is a usage error (exit 2), not a failed connection
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

  let timer = setTimeout(() => conn.close(), quiet);
  conn.on('message', (m) => {
    printMessage(conn, m);
    clearTimeout(timer);
    timer = setTimeout(() => conn.close(), quiet);
  });
  const info = await conn.closed();
  clearTimeout(timer);
  if (info.error) console.error(`switchboard send: ${info.error.message}`);
  return 0;
}

export async function runConnect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: CONNECT_OPTIONS,
  });
  const [url] = positionals;
  if (!url) {
    console.error('usage: switchboard connect URL');
    return 2;
  }
  parseAddress(url);
  const conn = await open('connect', url, values);
  if (conn === null) return 1;
  console.error(`connected to ${url} (${conn.remote}); end input with Ctrl-D`);
  conn.on('message', (m) => printMessage(conn, m));
  if (conn.protocol === 'raw') {
    process.stdin.on('data', (chunk: Buffer) => conn.send(chunk));
    process.stdin.on('end', () => conn.close());
  } else {
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (line) => conn.send(line));
    rl.on('close', () => conn.close());
  }
  const info = await conn.closed();
  process.stdin.pause();
  process.stdin.unref?.();
  console.error(`connection closed (${info.code}${info.reason ? ' ' + info.reason : ''})`);
  return 0;
}

/** The options both client commands take: --timeout T, --ca FILE, --insecure. */
const CONNECT_OPTIONS = {
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
    console.error(`switchboard ${command}: cannot connect to ${url}: ${(err as Error).message}`);
    return null;
  }
}

/** --ca FILE trusts that certificate authority; --insecure accepts any certificate (testing only). */
function tlsOptions(values: { ca?: string; insecure?: boolean }): TlsClientOptions | undefined {
  if (!values.ca && !values.insecure) return undefined;
  return { ...(values.ca ? { ca: readFileSync(values.ca) } : {}), ...(values.insecure ? { rejectUnauthorized: false } : {}) };
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
