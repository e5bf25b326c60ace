/** ack (seed 001): "connect\n" on connect, then "Information Received\n" for every line; logs "Buffer: <line>". */
import type { Server } from '../core/server.js';
import { bareEcho, startApp, type AppOptions } from './common.js';

export const ACK_DEFAULT = 'text://127.0.0.1:10008';

export function ackServer(options: AppOptions = {}): Promise<Server> {
  return startApp('ack', options, { listen: ACK_DEFAULT }, (server, log) => {
    if (options.bare) return bareEcho(server);
    server.on('connection', (conn) => {
      conn.send('connect');
      conn.on('message', (line) => {
        log(`Buffer: ${String(line)}`);
        conn.send('Information Received');
      });
    });
  });
}
