/** What every ready server shares: options, logging of connects and disconnects, start-up. */
import { Server, type ServerOptions } from '../core/server.js';
import type { Connection } from '../core/connection.js';

export type Logger = (line: string) => void;

export interface AppOptions extends Partial<ServerOptions> {
  /** Where to log (default: console.log with a time stamp). */
  log?: Logger;
  /** Plain echo with no banner or prefix (the server conformance suites and benchmarks drive). */
  bare?: boolean;
}

export const consoleLogger: Logger = (line) => console.log(`${new Date().toISOString()} ${line}`);

/** Creates, wires and starts a server; `setup` attaches the app's behaviour. */
export async function startApp(name: string, options: AppOptions, defaults: Partial<ServerOptions> & { listen: string | string[] },
  setup: (server: Server, log: Logger) => void): Promise<Server> {
  const log = options.log ?? consoleLogger;
  const { log: _log, bare: _bare, ...serverOptions } = options;
  const server = new Server({ ...defaults, ...stripUndefined(serverOptions), listen: options.listen ?? defaults.listen });
  server.on('connection', (conn: Connection) => {
    log(`[${name}] + ${conn.remote} connected on ${conn.address.scheme}://`);
    conn.on('close', (info) => {
      log(`[${name}] - ${conn.remote} disconnected (${info.code}${info.reason ? ' ' + info.reason : ''})`);
    });
  });
  server.on('refused', (r) => log(`[${name}] ! ${r.remote} refused: ${r.reason}`));
  server.on('error', (err) => log(`[${name}] error: ${err.message}`));
  setup(server, log);
  await server.listen();
  log(`[${name}] listening on ${server.addresses.join(' ')}`);
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
