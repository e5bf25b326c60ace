/**
 * The `switchboard` command line:
 *   switchboard serve NAME [options]       run a ready server (reverse, ack, greet, echo, chat)
 *   switchboard send URL [MESSAGE]         send one message, print what comes back
 *   switchboard connect URL                interactive, like nc: stdin to the server, the server to stdout
 *   switchboard probe HOST PORTS           which TCP ports accept a connection
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { apps } from '../apps/index.js';
import { consoleLogger, type AppOptions } from '../apps/common.js';
import { isHubSpec } from '../hubs/index.js';
import { runWorkers } from '../core/workers.js';
import { parseAddress } from '../address.js';
import { probePorts } from '../core/probe.js';
import type { Server } from '../core/server.js';
import { parseCount, parseDuration, parsePorts, parseSize } from './args.js';
import { runConnect, runSend } from './client-commands.js';

const USAGE = `usage: switchboard <command> [options]

  serve NAME            run a ready server: ${Object.keys(apps).join(', ')}
      --listen URL          address to listen on (repeatable); e.g. text://127.0.0.1:5353, ws://[::1]:8080/chat
      --bare                plain echo: every message back unchanged, no banner (messages up to 64m)
      --deflate             offer permessage-deflate on ws:// and wss:// listeners (off by default)
      --ws-path PATH        WebSocket upgrades only at PATH (other paths get the HTTP handler / 404)
      --max-connections N   clients at once; the next one is told "server full" and closed
      --max-accepts N       stop after N connections
      --idle-timeout T      close connections quiet for T (e.g. 30s; default off)
      --max-message-size S  largest message (e.g. 64k; default 1m)
      --greeting TEXT       greet: the first line sent (default 测试成功！)
      --reply TEXT          greet: the answer to the client's message (default success)
      --tls-cert FILE --tls-key FILE   certificate for tls:// and wss:// listeners
      --workers N           N processes share the ports; rooms span them (no Redis needed)
      --hub URL             rooms span processes and machines: redis://HOST:PORT (or memory, cluster)
      --quiet               no connection log
  send URL [MESSAGE]    connect, send MESSAGE (or stdin), print replies until the peer closes or goes quiet
      -e                    interpret \\n \\r \\t \\xHH escapes in MESSAGE
      --quiet-time T        stop after T without data (default 1s)
      --timeout T           connect timeout (default 5s)
      --ca FILE             trust this certificate authority (tls://, wss://); --insecure: trust any
  connect URL           stdin lines to the server, the server's messages to stdout
  probe HOST PORTS      e.g. probe 127.0.0.1 22,80,8000-8100 [--concurrency N] [--timeout T]

URLs: tcp:// text:// frame:// ws:// wss:// tls:// tls+text:// tls+frame:// unix:///path unix+text:///path ...`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': return serve(rest);
    case 'send': return runSend(rest);
    case 'connect': return runConnect(rest);
    case 'probe': return probe(rest);
    case undefined: case 'help': case '--help': case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`switchboard: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function serve(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'listen': { type: 'string', multiple: true },
      'bare': { type: 'boolean' },
      'max-connections': { type: 'string' },
      'max-accepts': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'max-message-size': { type: 'string' },
      'greeting': { type: 'string' },
      'reply': { type: 'string' },
      'room': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'quiet': { type: 'boolean' },
      'workers': { type: 'string' },
      'deflate': { type: 'boolean' },
      'ws-path': { type: 'string' },
      'hub': { type: 'string' },
    },
  });
  const name = positionals[0];
  const app = name ? apps[name] : undefined;
  if (!app) {
    console.error(`switchboard serve: ${name ? `unknown server "${name}"` : 'which server?'}; choose one of:\n` +
      Object.entries(apps).map(([n, a]) => `  ${n.padEnd(8)} ${a.about}`).join('\n'));
    return 2;
  }
  const options: AppOptions & Record<string, unknown> = {};
  if (values.listen) {
    for (const url of values.listen) parseAddress(url); // a bad URL stops us before any socket opens
    options.listen = values.listen;
  }
  if (values.bare) {
    options.bare = true;
    // The bare echo is what conformance suites drive; Autobahn sends messages of up to 16 MiB.
    options.maxMessageSize = 64 * 1024 * 1024;
  }
  if (values.deflate || values['ws-path']) {
    options.websocket = {
      ...(values.deflate ? { perMessageDeflate: true } : {}),
      ...(values['ws-path'] ? { path: values['ws-path'] } : {}),
    };
  }
  if (values['max-connections']) options.maxConnections = parseCount(values['max-connections'], '--max-connections');
  if (values['max-accepts']) options.maxAccepts = parseCount(values['max-accepts'], '--max-accepts');
  if (values['idle-timeout']) options.idleTimeout = parseDuration(values['idle-timeout'], '--idle-timeout');
  if (values['max-message-size']) options.maxMessageSize = parseSize(values['max-message-size'], '--max-message-size');
  if (values.greeting !== undefined) options.greeting = values.greeting;
  if (values.reply !== undefined) options.reply = values.reply;
  if (values.room !== undefined) options.room = values.room;
  if (values['tls-cert'] || values['tls-key']) {
    if (!values['tls-cert'] || !values['tls-key']) throw new Error('--tls-cert and --tls-key go together');
    options.tls = { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) };
  }
  if (values.quiet) options.log = () => {};
  if (values.hub !== undefined) {
    if (!isHubSpec(values.hub)) throw new Error(`--hub: "${values.hub}" is not a hub; use redis://HOST:PORT, memory or cluster`);
    options.hub = values.hub;
  }
  const workers = values.workers ? parseCount(values.workers, '--workers') : 1;
  if (workers > 1) {
    // Every process runs this same code: the primary forks, each worker starts the app.
    const handle = await runWorkers(workers, async () => {
      const index = process.env.SWITCHBOARD_WORKER_INDEX ?? '?';
      const log = options.log ?? ((line: string) => consoleLogger(`[w${index}] ${line}`));
      const server = await app.start({ ...options, log });
      return () => server.close();
    }, { log: (m) => consoleLogger(m) });
    if (handle.role === 'primary') {
      consoleLogger(`[${name}] ${workers} workers started: pids ${handle.pids().join(' ')}`);
      await handle.stopped;
    }
    return 0;
  }

  const server: Server = await app.start(options);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`switchboard: ${signal}, closing (again to force)`);
    void server.close();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await server.closed();
  return 0;
}

async function probe(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { concurrency: { type: 'string' }, timeout: { type: 'string' } },
  });
  const [host, ports] = positionals;
  if (!host || !ports) {
    console.error('usage: switchboard probe HOST PORTS   (e.g. probe 127.0.0.1 22,80,8000-8100)');
    return 2;
  }
  const results = await probePorts(host, parsePorts(ports), {
    concurrency: values.concurrency ? parseCount(values.concurrency, '--concurrency') : undefined,
    timeout: values.timeout ? parseDuration(values.timeout, '--timeout') : undefined,
  });
  const open = results.filter((r) => r.open);
  for (const r of open) console.log(`${r.port} open`);
  console.error(`${open.length} of ${results.length} ports open on ${host}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: Error) => {
    console.error(`switchboard: ${err.message}`);
    // A hub that cannot be reached is trouble at run time (1), not a wrong command line (2).
    process.exitCode = (err as { code?: unknown }).code === 'ERR_HUB' ? 1 : 2;
  },
);
