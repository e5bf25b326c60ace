/**
 * echo (seed 004's select server): a welcome banner, "OK ... <input>" for every message,
 * at most 10 clients at once (the 11th is told "server full" and closed).
 * With `bare`, every message comes back unchanged and nothing else is sent.
 */
import type { Server } from '../core/server.js';
import { bareEcho, startApp, type AppOptions } from './common.js';

export const ECHO_DEFAULT = 'text://127.0.0.1:5000';
export const ECHO_BANNER = 'Welcome to php socket server version 1.0 \nEnter a message and press enter, and i shall reply back ';

export function echoServer(options: AppOptions = {}): Promise<Server> {
  const defaults = options.bare ? { listen: ECHO_DEFAULT } : { listen: ECHO_DEFAULT, maxConnections: 10 };
  return startApp('echo', options, defaults, (server) => {
    if (options.bare) return bareEcho(server);
    server.on('connection', (conn) => {
      conn.send(ECHO_BANNER);
      conn.on('message', (m) => conn.send(typeof m === 'string' ? `OK ... ${m}` : Buffer.concat([Buffer.from('OK ... '), m])));
    });
  });
}
