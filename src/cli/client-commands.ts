/** `switchboard send` and `switchboard connect`: clients for any URL the toolkit speaks (wscat/websocat/nc-like). */
import { connect, reconnecting, type CloseInfo, type Connection, type ConnectOptions, type Message } from '../index.js';
import { parseCount, parseDuration, unescapeText } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientOptions } from './client-options.js';
import { MESSAGE_HELP, MESSAGE_OPTIONS, inputMode, printMessage, readMessages, sendPaced, startPinger, type InputMode } from './messages.js';
import { HELP_OPTION, UsageError, describeError, noExtraArguments, parseCommandLine, urlArgument } from './usage.js';

/** The longest input line sent as one message; a longer one is cut (see readMessages). */
const MAX_INPUT_LINE = 1024 * 1024;

export const SEND_USAGE = `usage: switchboard send URL [MESSAGE] [options]

Connects to URL, sends MESSAGE (omitted or "-": stdin; on text://, ws:// and frame:// each line is
one message) and prints what comes back until the peer closes or is quiet for --quiet-time.

  -e                    interpret \\n \\r \\t \\0 \\\\ \\xHH escapes in MESSAGE
  --quiet-time T        stop after T without data (default 1s)
  --oneshot             print the first reply and exit (0; 1 if the peer closes or --timeout passes first)
  --ping-interval T     ws://: ping every T and print each pong's round trip on stderr
${MESSAGE_HELP}
${CLIENT_HELP}
  -h, --help            this text

Exit 0 when it connected and the exchange ended cleanly, 1 when it could not connect or the
connection failed (refused datagram, reset, protocol error), 2 on bad usage.`;

export const CONNECT_USAGE = `usage: switchboard connect URL [options]

Like nc, wscat and websocat: stdin to the server (a line per message on text://, ws:// and
frame://; bytes on tcp://), the server's messages to stdout, notes on stderr.

  --quiet-time T        udp://: after the end of input, wait until T passes without data (default 1s)
  --oneshot             send the first input line (or chunk), print the first reply, exit 0
  --ping-interval T     ws://: ping every T (e.g. 1s) and print each pong's round trip on stderr
  --reconnect           when the connection drops (or the first connect fails), connect again with
                        exponential backoff (0.5s doubling up to 30s, with jitter); input typed
                        while down is dropped, with a note; ends at the end of input
  --max-attempts N      --reconnect: give up (exit 1) after N failed attempts in a row (default: never)
${MESSAGE_HELP}
${CLIENT_HELP}
  -h, --help            this text

Exit 0 when the connection ended cleanly, 1 when it could not connect or failed, 2 on bad usage.`;

/** What both commands take on top of the connection options. */
const COMMON_OPTIONS = {
  ...HELP_OPTION,
  ...CLIENT_OPTIONS,
  ...MESSAGE_OPTIONS,
  'quiet-time': { type: 'string' },
  'oneshot': { type: 'boolean' },
  'ping-interval': { type: 'string' },
} as const;

interface Common {
  connectOptions: ConnectOptions;
  mode: InputMode;
  hex: boolean;
  quiet: number;
  ping: number;
}

/** Checks what both commands share; every mistake is a UsageError (exit 2) before anything connects. */
function common(url: string, values: { 'quiet-time'?: string; 'ping-interval'?: string; hex?: boolean; text?: boolean; binary?: boolean } & Parameters<typeof clientOptions>[1]): Common {
  const address = urlArgument(url);
  const ping = values['ping-interval'] ? parseDuration(values['ping-interval'], '--ping-interval') : 0;
  if (values['ping-interval'] && address.protocol !== 'ws') throw new UsageError(`--ping-interval: pings are WebSocket's (ws://, wss://), not ${url}'s`);
  if (values['ping-interval'] && ping < 1) throw new UsageError('--ping-interval: at least 1ms');
  return {
    mode: inputMode(address.protocol, values),
    hex: values.hex === true,
    quiet: values['quiet-time'] ? parseDuration(values['quiet-time'], '--quiet-time') : 1000,
    ping,
    connectOptions: clientOptions(url, values),
  };
}

/** Exit codes: 0 connected and sent; 1 could not connect or the connection failed; 2 bad usage. */
export async function runSend(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('send', {
    args: argv,
    allowPositionals: true,
    options: { ...COMMON_OPTIONS, 'e': { type: 'boolean', short: 'e' } },
  });
  if (values.help) {
    console.log(SEND_USAGE);
    return 0;
  }
  const [url, message] = positionals;
  if (!url) throw new UsageError('which URL? e.g. switchboard send tcp://127.0.0.1:5353 \'Hello Server\'');
  noExtraArguments(positionals, 2);
  const c = common(url, values);
  const fromStdin = message === undefined || message === '-';
  const payload: string | Buffer = fromStdin ? await readStdin() : values.e ? unescapeText(message) : message;

  const conn = await open('send', url, c.connectOptions);
  if (conn === null) return 1;
  if (c.ping > 0) startPinger(conn, c.ping, '');
  const replied = values.oneshot ? firstReply('send', conn, c) : null;
  if (!values.oneshot) {
    conn.on('message', (m) => printMessage(m, c.hex, '', conn));
    closeWhenQuiet(conn, c.quiet);
  }
  if (c.mode === 'lines' && fromStdin) {
    // Each line goes as one message; the protocol adds the newline (text://) or the framing.
    for await (const m of readMessages([payload as Buffer], 'lines', MAX_INPUT_LINE)) if (!await sendPaced(conn, m)) break;
  } else if (c.mode === 'lines' && conn.protocol === 'line') {
    for (const line of String(payload).replace(/\r?\n$/, '').split(/\r?\n/)) if (!await sendPaced(conn, line)) break;
  } else if (c.mode === 'chunks' && typeof payload === 'string' && conn.protocol !== 'raw') {
    conn.send(Buffer.from(payload)); // --binary: MESSAGE as one binary message
  } else conn.send(payload);
  if (replied) return replied;
  return reportClose('send', url, await conn.closed());
}

/** --oneshot: the first message is printed and the connection closed; exit 1 when none comes in --timeout. */
async function firstReply(command: string, conn: Connection, c: Common): Promise<number> {
  const timeout = c.connectOptions.connectTimeout ?? 5000;
  let timedOut = false;
  const got = await new Promise<Message | null>((resolve) => {
    const timer = setTimeout(() => { timedOut = true; resolve(null); }, timeout);
    conn.once('message', (m) => { clearTimeout(timer); resolve(m); });
    void conn.closed().then(() => { clearTimeout(timer); resolve(null); });
  });
  if (got !== null) printMessage(got, c.hex);
  conn.close();
  const info = await conn.closed();
  if (got !== null) return 0;
  if (info.error) return reportClose(command, conn.address.url, info);
  console.error(`switchboard ${command}: ${conn.address.url}: no reply ${timedOut ? `within ${timeout} ms (--timeout)` : 'before the connection closed'}`);
  return 1;
}

export async function runConnect(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('connect', {
    args: argv,
    allowPositionals: true,
    options: { ...COMMON_OPTIONS, 'reconnect': { type: 'boolean' }, 'max-attempts': { type: 'string' } },
  });
  if (values.help) {
    console.log(CONNECT_USAGE);
    return 0;
  }
  const [url] = positionals;
  if (!url) throw new UsageError('which URL? e.g. switchboard connect text://127.0.0.1:9999');
  noExtraArguments(positionals, 1);
  const c = common(url, values);
  if (values['max-attempts'] !== undefined && !values.reconnect) throw new UsageError('--max-attempts goes with --reconnect');
  const maxAttempts = values['max-attempts'] !== undefined ? parseCount(values['max-attempts'], '--max-attempts', 1) : undefined;
  if (values.reconnect && values.oneshot) throw new UsageError('--reconnect and --oneshot: choose one');
  if (values.reconnect) return connectAgainAndAgain(url, c, maxAttempts);

  const conn = await open('connect', url, c.connectOptions);
  if (conn === null) return 1;
  if (c.ping > 0) startPinger(conn, c.ping, '');
  if (values.oneshot) {
    const replied = firstReply('connect', conn, c);
    for await (const m of readMessages(process.stdin, c.mode, MAX_INPUT_LINE)) {
      conn.send(m);
      break;
    }
    return replied;
  }
  console.error(`connected to ${url} (${conn.remote}); end input with Ctrl-D`);
  conn.on('message', (m) => printMessage(m, c.hex, '', conn));
  void pumpStdin(conn, c).then(() => {
    // A stream is half-closed at the end of input and the peer's last words still arrive; UDP has
    // no half-close, so the answers to the last datagrams are awaited until the peer is quiet.
    if (conn.address.transport === 'udp') closeWhenQuiet(conn, c.quiet);
    else conn.close();
  });
  const info = await conn.closed();
  stopStdin();
  if (!info.error) console.error(`connection closed (${info.code}${info.reason ? ' ' + info.reason : ''})`);
  return reportClose('connect', url, info);
}

/** Stdin to the connection at its pace; resolves at the end of input (or when the connection closes). */
async function pumpStdin(conn: Connection, c: Common): Promise<void> {
  for await (const m of readMessages(process.stdin, c.mode, MAX_INPUT_LINE)) if (!await sendPaced(conn, m)) return;
}

function stopStdin(): void {
  process.stdin.pause();
  process.stdin.unref?.();
}

/** connect --reconnect: reconnecting() with its backoff; the end of input ends it (exit 0), giving up exits 1. */
async function connectAgainAndAgain(url: string, c: Common, maxAttempts: number | undefined): Promise<number> {
  const client = reconnecting(url, { ...c.connectOptions, reconnect: maxAttempts !== undefined ? { maxAttempts } : {} });
  client.on('open', (conn, { reconnected }) => {
    console.error(`${reconnected ? 'reconnected' : 'connected'} to ${url} (${conn.remote})`);
    if (c.ping > 0) startPinger(conn, c.ping, '');
  });
  client.on('message', (m) => printMessage(m, c.hex, '', client.connection ?? undefined));
  client.on('close', (info) => console.error(`connection closed (${info.code}${info.reason ? ' ' + info.reason : ''})`));
  client.on('reconnecting', ({ attempt, delay, error }) => {
    console.error(`reconnecting in ${delay} ms (attempt ${attempt})${error ? `: ${describeError(error)}` : ''}`);
  });
  const ended = new Promise<{ reason: 'closed' | 'gave up'; error?: Error }>((resolve) => client.once('end', resolve));
  let dropped = 0;
  void (async () => {
    for await (const m of readMessages(process.stdin, c.mode, MAX_INPUT_LINE)) {
      const conn = client.connection;
      // Not queued while down (that queue would have no bound): said once per outage.
      if (conn === null || !conn.isOpen) {
        if (dropped++ === 0) console.error('not connected: input is dropped until the connection is back');
        continue;
      }
      dropped = 0;
      await sendPaced(conn, m);
    }
    client.close();
  })();
  const end = await ended;
  stopStdin();
  if (end.reason === 'closed') return 0;
  console.error(`switchboard connect: gave up on ${url} after ${maxAttempts} attempts${end.error ? `: ${describeError(end.error)}` : ''}`);
  return 1;
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

/** Connects, or says why not on stderr and gives null (the command then exits 1). */
export async function open(command: string, url: string, options: ConnectOptions): Promise<Connection | null> {
  try {
    return await connect(url, options);
  } catch (err) {
    console.error(`switchboard ${command}: cannot connect to ${url}: ${describeError(err)}${certificateHint(err)}`);
    return null;
  }
}

/** A certificate that is not trusted is the usual first meeting with tls://: say what to do. */
export function certificateHint(err: unknown): string {
  const code = String((err as NodeJS.ErrnoException).code ?? '');
  return /CERT|SELF_SIGNED|ALTNAME/.test(code) ? ' (--ca FILE trusts the authority that signed it; --insecure trusts any certificate)' : '';
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
