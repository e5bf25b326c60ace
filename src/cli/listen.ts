/**
 * `switchboard listen URL`: the server end of nc/websocat for any scheme. What arrives is printed;
 * stdin goes to the last peer (or to all, --broadcast); or, with --exec, a program per connection.
 */
import { Server, type Connection, type ServerOptions } from '../index.js';
import { parseCount } from './args.js';
import { EXEC_TERM_GRACE, checkProgram, execFor, splitCommand, stopPrograms } from './exec.js';
import { MESSAGE_HELP, MESSAGE_OPTIONS, inputMode, printMessage, readMessages, sendPaced } from './messages.js';
import { HELP_OPTION, UsageError, describeError, noExtraArguments, parseCommandLine, readOptionFile, urlArgument } from './usage.js';

/** The longest input line (stdin, a program's output) sent as one message; a longer one is cut. */
const MAX_INPUT_LINE = 1024 * 1024;
/** --exec: programs running at once, unless --max-connections says otherwise. */
const EXEC_MAX_CONNECTIONS = 64;

export const LISTEN_USAGE = `usage: switchboard listen URL [options]

Listens on URL (tcp:// text:// frame:// ws:// wss:// tls:// udp:// unix:///path ...) and prints
what each peer sends; with several peers connected, each message is prefixed with [peer].
Stdin goes to the peer that connected last (a line per message on text://, ws://, frame://;
bytes on tcp://), or to every peer with --broadcast. Connections and closes are noted on stderr.

  --broadcast           stdin to every connected peer
  --quiet-peers         never prefix messages with the peer
  --quiet               no notes on stderr about peers (connected, closed, refused)
  --exec CMD            run CMD for each connection, its stdin/stdout on the connection (lines on
                        text:// and ws://, bytes on tcp://); CMD is split into words without a
                        shell ('...' and "..." quote); the connection closes when CMD exits, and
                        CMD gets EOF when the connection closes (SIGTERM ${EXEC_TERM_GRACE / 1000}s later if still running)
  --sh-c CMD            the same, through sh -c CMD (pipes, redirections, $VARIABLES)
                        (programs see SWITCHBOARD_PEER=host:port and SWITCHBOARD_URL in their environment)
  --max-connections N   peers at once; the next one is told "server full" (default 10000, with --exec ${EXEC_MAX_CONNECTIONS})
  --max-accepts N       stop after N connections, once they are done (exit 0)
  --tls-cert FILE --tls-key FILE   certificate for tls:// and wss://
${MESSAGE_HELP}
  -h, --help            this text

Runs until SIGINT or SIGTERM (exit 0) or --max-accepts. Exit 1 when it cannot listen (address in
use, ...), 2 on bad usage.`;

/** What listen and bridge share on the listening side. */
export const LISTEN_OPTIONS = {
  ...HELP_OPTION,
  'max-connections': { type: 'string' },
  'max-accepts': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'quiet': { type: 'boolean' },
} as const;

/** Server options from the listening side's command line; every mistake is a UsageError. */
export function serverOptions(url: string, values: { 'max-connections'?: string; 'max-accepts'?: string; 'tls-cert'?: string; 'tls-key'?: string }, maxConnections?: number): ServerOptions {
  const address = urlArgument(url);
  const options: ServerOptions = { listen: url };
  if (values['max-connections']) options.maxConnections = parseCount(values['max-connections'], '--max-connections', 1);
  else if (maxConnections !== undefined) options.maxConnections = maxConnections;
  if (values['max-accepts']) options.maxAccepts = parseCount(values['max-accepts'], '--max-accepts', 1);
  if (values['tls-cert'] || values['tls-key']) {
    if (!values['tls-cert'] || !values['tls-key']) throw new UsageError('--tls-cert and --tls-key go together');
    options.tls = { cert: readOptionFile('--tls-cert', values['tls-cert']), key: readOptionFile('--tls-key', values['tls-key']) };
  } else if (address.transport === 'tls') throw new UsageError(`${url} needs a certificate: --tls-cert FILE --tls-key FILE`);
  return options;
}

/** Listens, says where on stderr, and closes gracefully on SIGINT/SIGTERM; resolves when the server is closed. */
export async function serveUntilStopped(server: Server, command: string, url: string, note: (line: string) => void): Promise<number> {
  try {
    await server.listen();
  } catch (err) {
    console.error(`switchboard ${command}: ${describeError(err).includes(url) ? describeError(err) : `cannot listen on ${url}: ${describeError(err)}`}`);
    return 1;
  }
  // Said even with --quiet: with port 0 it is the only way to learn the port.
  console.error(`listening on ${server.addresses.join(' ')}`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(130);
    stopping = true;
    note(`${signal}, closing (again to force)`);
    void server.close();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await server.closed();
  return 0;
}

/** How a peer is named: host:port, or #id for Unix sockets (where every peer has the same address). */
export function peerName(conn: Connection): string {
  return conn.address.transport === 'unix' ? `#${conn.id}` : conn.remote;
}

export async function runListen(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('listen', {
    args: argv,
    allowPositionals: true,
    options: {
      ...LISTEN_OPTIONS,
      ...MESSAGE_OPTIONS,
      'broadcast': { type: 'boolean' },
      'quiet-peers': { type: 'boolean' },
      'exec': { type: 'string' },
      'sh-c': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(LISTEN_USAGE);
    return 0;
  }
  const [url] = positionals;
  if (!url) throw new UsageError('which URL? e.g. switchboard listen text://127.0.0.1:9999');
  noExtraArguments(positionals, 1);
  const address = urlArgument(url);
  const mode = inputMode(address.protocol, values);
  if (values.exec !== undefined && values['sh-c'] !== undefined) throw new UsageError('--exec and --sh-c: choose one');
  let program: string[] | null = null;
  if (values.exec !== undefined) {
    program = splitCommand(values.exec);
    checkProgram(program[0]!);
  } else if (values['sh-c'] !== undefined) {
    if (values['sh-c'].trim() === '') throw new UsageError('--sh-c: which command?');
    program = ['sh', '-c', values['sh-c']];
  }
  if (program !== null && values.broadcast) throw new UsageError('--broadcast is for stdin; with --exec each program talks to its own peer');
  const options = serverOptions(url, values, program !== null ? EXEC_MAX_CONNECTIONS : undefined);
  const note = values.quiet ? () => {} : (line: string) => console.error(line);
  const server = new Server(options);
  const hex = values.hex === true;

  /** Open peers in the order they connected: stdin goes to the last. */
  const peers: Connection[] = [];
  server.on('connection', (conn) => {
    const name = peerName(conn);
    note(`+ ${name} connected${conn.subprotocol ? ` (subprotocol ${conn.subprotocol})` : ''}`);
    peers.push(conn);
    void conn.closed().then((info) => {
      const i = peers.indexOf(conn);
      if (i !== -1) peers.splice(i, 1);
      note(`- ${name} closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`);
    });
    if (program !== null) execFor(conn, program, mode, MAX_INPUT_LINE, (line) => console.error(`switchboard listen: ${line}`));
    else conn.on('message', (m) => printMessage(m, hex, peers.length > 1 && !values['quiet-peers'] ? `[${name}] ` : '', conn));
  });
  server.on('refused', ({ remote, reason }) => note(`! ${remote} refused: ${reason}`));
  server.on('error', (err) => console.error(`switchboard listen: ${describeError(err)}`));

  if (program === null) void pumpStdin(server, peers, mode, values.broadcast === true, note);
  const code = await serveUntilStopped(server, 'listen', url, note);
  await stopPrograms();
  process.stdin.pause();
  process.stdin.unref?.();
  return code;
}

/** Stdin to the last peer (at its pace) or to all of them; input with nobody to take it is dropped, with a note. */
async function pumpStdin(server: Server, peers: Connection[], mode: 'lines' | 'chunks', broadcast: boolean, note: (line: string) => void): Promise<void> {
  let warned = false;
  for await (const m of readMessages(process.stdin, mode, MAX_INPUT_LINE)) {
    if (peers.length === 0) {
      if (!warned) note('no peer connected: input is dropped until one connects');
      warned = true;
      continue;
    }
    warned = false;
    // A broadcast goes to every peer at once; one that does not read is dropped by the send-buffer limit.
    if (broadcast) server.broadcast(m);
    else await sendPaced(peers[peers.length - 1]!, m);
  }
}
