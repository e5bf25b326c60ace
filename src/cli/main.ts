/**
 * The `switchboard` command line:
 *   switchboard serve NAME [options]       run a ready server (reverse, ack, greet, echo, chat, ...)
 *   switchboard send URL [MESSAGE]         send one message, print what comes back
 *   switchboard connect URL                interactive, like nc: stdin to the server, the server to stdout
 *   switchboard probe HOST PORTS           which TCP ports accept a connection
 *   switchboard status URL                 a server's figures, from its admin endpoint (serve --admin)
 *   switchboard listen URL                 like nc -l: peers to stdout, stdin to peers (or --exec CMD per peer)
 *   switchboard bridge FROM TO             one connection to TO per client of FROM, messages both ways
 *
 * Exit codes, for every command: 0 success, 1 could not connect or failed at run time, 2 bad usage
 * (the command line itself is wrong; nothing was attempted).
 */
import { apps } from '../apps/index.js';
import { BRIDGE_USAGE, runBridge } from './bridge.js';
import { CONNECT_USAGE, SEND_USAGE, runConnect, runSend } from './client-commands.js';
import { LISTEN_USAGE, runListen } from './listen.js';
import { PROBE_USAGE, runProbe } from './probe.js';
import { SERVE_USAGE, runServe } from './serve.js';
import { STATUS_USAGE, runStatus } from './status.js';
import { UsageError, describeError } from './usage.js';
import { packageVersion } from './version.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; usage: string }> = {
  serve: { run: runServe, usage: SERVE_USAGE },
  send: { run: runSend, usage: SEND_USAGE },
  connect: { run: runConnect, usage: CONNECT_USAGE },
  probe: { run: runProbe, usage: PROBE_USAGE },
  status: { run: runStatus, usage: STATUS_USAGE },
  listen: { run: runListen, usage: LISTEN_USAGE },
  bridge: { run: runBridge, usage: BRIDGE_USAGE },
};

const USAGE = `usage: switchboard <command> [options]

  serve NAME            run a ready server: ${Object.keys(apps).join(', ')}
  send URL [MESSAGE]    connect, send MESSAGE (or stdin), print replies until the peer closes or goes quiet
  connect URL           like nc: stdin lines to the server, the server's messages to stdout
  probe HOST PORTS      which TCP ports accept a connection, e.g. probe 127.0.0.1 22,80,8000-8100
  status URL            a running server's figures from its admin endpoint (serve --admin URL)
  listen URL            like nc -l / websocat -s: print what peers send, stdin to them (or --exec CMD per peer)
  bridge FROM TO        listen on FROM, one connection to TO per client, messages both ways (text:// as ws://, ...)

  switchboard <command> --help    that command's options
  switchboard --version           the version

URLs: tcp:// text:// frame:// ws:// wss:// tls:// tls+text:// tls+frame:// udp:// unix:///path unix+text:///path ...
Exit codes: 0 success, 1 could not connect or failed at run time, 2 bad usage.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'help') {
    // `switchboard help send` is `switchboard send --help`.
    const topic = rest[0];
    if (topic === undefined) console.log(USAGE);
    else if (COMMANDS[topic]) console.log(COMMANDS[topic].usage);
    else throw new UsageError(`no command "${topic}"; the commands are ${Object.keys(COMMANDS).join(', ')}`);
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    console.log(packageVersion());
    return 0;
  }
  if (command === undefined) {
    console.error(USAGE);
    return 2;
  }
  const entry = COMMANDS[command];
  if (!entry) throw new UsageError(`unknown command "${command}"; the commands are ${Object.keys(COMMANDS).join(', ')} (switchboard --help)`);
  return entry.run(rest);
}

const command = process.argv[2];
const known = command !== undefined && command in COMMANDS ? command : undefined;
const prefix = known ? `switchboard ${known}` : 'switchboard';
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`${prefix}: ${err.message}`);
      process.exitCode = 2;
    } else {
      console.error(`${prefix}: ${describeError(err)}`);
      process.exitCode = 1;
    }
  },
);
