/** `switchboard serve NAME`: one of the ready servers, in one process or in --workers N. */
import cluster from 'node:cluster';
import { apps } from '../apps/index.js';
import { consoleLogger, recordLogger, type AppOptions } from '../apps/common.js';
import { parseAdminOption, startAdmin, type AdminOption } from '../core/admin.js';
import { isHubSpec } from '../hubs/index.js';
import { runWorkers } from '../core/workers.js';
import { parseAddress } from '../address.js';
import type { Server } from '../core/server.js';
import { parseCount, parseDuration, parseSize } from './args.js';
import { HELP_OPTION, UsageError, addressArgument, noExtraArguments, parseCommandLine, readOptionFile } from './usage.js';

export const SERVE_USAGE = `usage: switchboard serve NAME [options]

  NAME                  ${Object.keys(apps).join(', ')}
${Object.entries(apps).map(([n, a]) => `      ${n.padEnd(18)}${a.about}`).join('\n')}

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
  --hub URL             rooms span processes and machines: redis://HOST:PORT,
                        redis+streams://HOST:PORT (Redis Streams: history and replay),
                        redis+cluster://HOST:PORT[,HOST:PORT...] (sharded pub/sub on a Redis Cluster),
                        nats://HOST:PORT[,HOST:PORT...] (or memory, cluster)
  --history N           chat: show a newcomer the room's last N lines (memory, cluster or redis+streams hub)
  --quiet               no connection log
  --log-format F        text (default) or json: one JSON object per line (time, level, event, remote, code, reason, ...)
  --admin URL           operator endpoint: GET /metrics (Prometheus), /healthz, /status; e.g. http://127.0.0.1:9100
  --admin-token TOKEN   require "Authorization: Bearer TOKEN" there (or set SWITCHBOARD_ADMIN_TOKEN); needed off loopback
  --drain T             on SIGTERM (and SIGHUP with --workers), close clients spread over T (e.g. 10s; default 0: at once)
  -h, --help            this text

Runs until SIGINT or SIGTERM (then closes gracefully; exit 0). Exit 1 when it cannot start
(address in use, hub unreachable, ...), 2 on bad usage. With --workers, SIGHUP replaces the
workers one at a time (clients of the worker being replaced get WebSocket 1012; the port stays open).`;

export async function runServe(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('serve', {
    args: argv,
    allowPositionals: true,
    options: {
      ...HELP_OPTION,
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
      'history': { type: 'string' },
      'admin': { type: 'string' },
      'admin-token': { type: 'string' },
      'log-format': { type: 'string' },
      'drain': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const name = positionals[0];
  const app = name ? apps[name] : undefined;
  if (!app) {
    throw new UsageError(`${name ? `unknown server "${name}"` : 'which server?'}; choose one of:\n` +
      Object.entries(apps).map(([n, a]) => `  ${n.padEnd(8)} ${a.about}`).join('\n'));
  }
  noExtraArguments(positionals, 1);
  const options: AppOptions & Record<string, unknown> = {};
  if (values.listen) {
    // A bad URL stops us before any socket opens.
    for (const url of values.listen) addressArgument(url);
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
  if (values['max-accepts']) options.maxAccepts = parseCount(values['max-accepts'], '--max-accepts', 1);
  if (values['idle-timeout']) options.idleTimeout = parseDuration(values['idle-timeout'], '--idle-timeout');
  if (values['max-message-size']) options.maxMessageSize = parseSize(values['max-message-size'], '--max-message-size');
  if (values.greeting !== undefined) options.greeting = values.greeting;
  if (values.reply !== undefined) options.reply = values.reply;
  if (values.room !== undefined) options.room = values.room;
  if (values['tls-cert'] || values['tls-key']) {
    if (!values['tls-cert'] || !values['tls-key']) throw new UsageError('--tls-cert and --tls-key go together');
    options.tls = { cert: readOptionFile('--tls-cert', values['tls-cert']), key: readOptionFile('--tls-key', values['tls-key']) };
  } else {
    const tls = (values.listen ?? []).find((url) => parseAddress(url).transport === 'tls');
    if (tls) throw new UsageError(`${tls} needs a certificate: --tls-cert FILE --tls-key FILE`);
  }
  if (values.quiet) options.log = () => {};
  if (values.hub !== undefined) {
    if (!isHubSpec(values.hub)) throw new UsageError(`--hub: "${values.hub}" is not a hub; use redis://HOST:PORT, redis+streams://HOST:PORT, redis+cluster://HOST:PORT,HOST:PORT, nats://HOST:PORT, memory or cluster`);
    options.hub = values.hub;
  }
  if (values.history !== undefined) {
    if (name !== 'chat') throw new UsageError('--history is an option of serve chat');
    if (values.hub !== undefined && /^rediss?:\/\//.test(values.hub)) {
      throw new UsageError('--history needs a hub that keeps history: redis+streams://HOST:PORT (redis:// is pub/sub only), memory or cluster');
    }
    const lines = (options.historyLines = parseCount(values.history, '--history'));
    if (lines > 10_000) throw new UsageError('--history: at most 10000 lines');
  }
  const logFormat = values['log-format'] ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`--log-format: "${logFormat}" is not a format; use text or json`);
  if (logFormat === 'json') options.logFormat = 'json';
  const drain = values.drain !== undefined ? parseDuration(values.drain, '--drain') : 0;
  let admin: AdminOption | undefined;
  const token = values['admin-token'] ?? process.env.SWITCHBOARD_ADMIN_TOKEN;
  if (values.admin !== undefined) {
    admin = token ? { url: values.admin, token } : values.admin;
    try {
      parseAdminOption(admin);
    } catch (err) {
      throw new UsageError(`--admin: ${err instanceof Error ? err.message.replace(/^option admin: /, '') : String(err)}`);
    }
  } else if (values['admin-token'] !== undefined) throw new UsageError('--admin-token needs --admin URL');
  const workers = values.workers ? parseCount(values.workers, '--workers', 1) : 1;
  if (workers > 1) return serveWorkers(name!, app, options, workers, { admin, drain });

  if (admin !== undefined) options.admin = admin;
  const server: Server = await app.start(options);
  if (server.adminUrl !== null) recordLogger(options.logFormat, options.log)({ level: 'info', event: 'admin', message: `[${name}] admin endpoint on ${server.adminUrl}`, url: server.adminUrl });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`switchboard: ${signal}, closing${drain > 0 ? ` over ${drain} ms` : ''} (again to force)`);
    void server.close({ drain });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await server.closed();
  return 0;
}

async function serveWorkers(name: string, app: (typeof apps)[string], options: AppOptions, workers: number,
  ops: { admin: AdminOption | undefined; drain: number }): Promise<number> {
  // Every process runs this same code: the primary forks, each worker starts the app.
  const json = options.logFormat === 'json';
  const record = recordLogger(options.logFormat, options.log);
  const primaryLog = (m: string): void => record({ level: 'info', event: 'workers', message: m });
  let handle;
  try {
    handle = await runWorkers(workers, async () => {
      const index = process.env.SWITCHBOARD_WORKER_INDEX ?? '?';
      const log = options.log ?? (json ? undefined : (line: string) => consoleLogger(`[w${index}] ${line}`));
      const server = await app.start({ ...options, log, logFields: { worker: Number(index) } });
      // A worker being replaced says "restarting" (1012), so clients reconnect at once, to the new one.
      return (how) => server.close({ drain: how.drain, code: how.restart ? 1012 : 1001 });
    }, { log: primaryLog, drain: ops.drain });
  } catch (err) {
    // A worker that cannot start has said why (runWorkers logs it); the primary reports it once more, for all.
    if (cluster.isWorker) return 1;
    throw err;
  }
  if (handle.role === 'primary') {
    const h = handle;
    if (ops.admin !== undefined) {
      let admin;
      try {
        admin = await startAdmin(ops.admin, async () => ({
          role: 'primary', snapshots: await h.snapshots(), draining: h.stopping,
          relay: h.relay ? { dropped: h.relay.dropped, topics: h.relay.topics().size } : undefined,
        }));
      } catch (err) {
        await h.stop();
        throw err;
      }
      record({ level: 'info', event: 'admin', message: `[${name}] admin endpoint on ${admin.url}`, url: admin.url });
      void h.stopped.then(() => admin.close());
    }
    primaryLog(`[${name}] ${workers} workers started: pids ${handle.pids().join(' ')}`);
    await handle.stopped;
  }
  return 0;
}
