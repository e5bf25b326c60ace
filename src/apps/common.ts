/** What every ready server shares: options, logging of connects and disconnects, start-up. */
import { Server, type ServerOptions } from '../core/server.js';
import type { Connection } from '../core/connection.js';

export type Logger = (line: string) => void;

export interface AppOptions extends Partial<ServerOptions> {
  /** Where to log (default: console.log with a time stamp; with logFormat 'json', console.log as is). */
  log?: Logger;
  /**
   * 'text' (default): one readable line per event. 'json': one JSON object per line, with stable
   * fields: time, level, event (listening, connect, disconnect, refused, error, app), message,
   * and per event remote, listener, code, reason, error, addresses.
   */
  logFormat?: LogFormat;
  /** Fields added to every JSON log line (e.g. { worker: 2 }). */
  logFields?: Readonly<Record<string, string | number>>;
  /** Plain echo with no banner or prefix (the server conformance suites and benchmarks drive). */
  bare?: boolean;
}

export const consoleLogger: Logger = (line) => console.log(`${new Date().toISOString()} ${line}`);

export type LogFormat = 'text' | 'json';

/** One log event: `message` is the text line; the other fields are for machines. */
export interface LogRecord {
  level: 'info' | 'warn' | 'error';
  event: string;
  message: string;
  [field: string]: string | number | readonly string[] | undefined;
}

/**
 * A function that logs records in the chosen format. Text: `message` through `log` (time-stamped
 * by consoleLogger). JSON: one object per line, `time` first, through `log` or else console.log.
 */
export function recordLogger(format: LogFormat | undefined, log: Logger | undefined, fields: Readonly<Record<string, string | number>> = {}): (r: LogRecord) => void {
  if (format !== 'json') {
    const write = log ?? consoleLogger;
    return (r) => write(r.message);
  }
  const write = log ?? ((line: string) => console.log(line));
  return (r) => {
    const out: Record<string, unknown> = { time: new Date().toISOString(), ...fields };
    for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = v;
    write(JSON.stringify(out));
  };
}

/** Creates, wires and starts a server; `setup` attaches the app's behaviour. */
export async function startApp(name: string, options: AppOptions, defaults: Partial<ServerOptions> & { listen: string | string[] },
  setup: (server: Server, log: Logger) => void): Promise<Server> {
  const record = recordLogger(options.logFormat, options.log, { app: name, ...options.logFields });
  // The apps' own lines (what a client said, ...) are 'app' events.
  const log: Logger = options.logFormat === 'json' ? (line) => record({ level: 'info', event: 'app', message: line }) : (options.log ?? consoleLogger);
  const { log: _log, bare: _bare, logFormat: _format, logFields: _fields, ...serverOptions } = options;
  const server = new Server({ ...defaults, ...stripUndefined(serverOptions), listen: options.listen ?? defaults.listen });
  server.on('connection', (conn: Connection) => {
    const listener = `${conn.address.scheme}://`;
    record({ level: 'info', event: 'connect', message: `[${name}] + ${conn.remote} connected on ${listener}`, remote: conn.remote, listener, id: conn.id });
    conn.on('close', (info) => {
      record({
        level: info.error ? 'warn' : 'info', event: 'disconnect', message: `[${name}] - ${conn.remote} disconnected (${info.code}${info.reason ? ' ' + info.reason : ''})`,
        remote: conn.remote, listener, id: conn.id, code: info.code, reason: info.reason, error: info.error?.code,
      });
    });
  });
  server.on('refused', (r) => record({ level: 'warn', event: 'refused', message: `[${name}] ! ${r.remote} refused: ${r.reason}`, remote: r.remote, reason: r.reason }));
  server.on('error', (err) => record({ level: 'error', event: 'error', message: `[${name}] error: ${err.message}`, error: (err as { code?: string }).code }));
  setup(server, log);
  await server.listen();
  record({ level: 'info', event: 'listening', message: `[${name}] listening on ${server.addresses.join(' ')}`, addresses: server.addresses });
  return server;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Echo every message unchanged (text as text, binary as binary). */
export function bareEcho(server: Server): void {
  server.on('connection', (conn) => {
    conn.on('message', (m) => conn.send(m));
  });
}
