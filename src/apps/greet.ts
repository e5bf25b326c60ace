/**
 * greet (seeds 002-004): a greeting line on connect, then one message read, logged and answered,
 * then the connection is closed. The server stops after 5 connections (maxAccepts), as the seed's
 * `if (++$count >= 5) break;` does.
 */
import type { Server } from '../core/server.js';
import { bareEcho, startApp, type AppOptions } from './common.js';

export const GREET_DEFAULT = 'tcp://127.0.0.1:1935';

export interface GreetOptions extends AppOptions {
  /** First line sent (default "测试成功！"). */
  greeting?: string;
  /** Answer to the client's message (default "success", as seed 003's server). */
  reply?: string;
}

export function greetServer(options: GreetOptions = {}): Promise<Server> {
  const { greeting = '测试成功！', reply = 'success', ...rest } = options;
  return startApp('greet', { maxAccepts: 5, ...rest }, { listen: GREET_DEFAULT }, (server, log) => {
    if (options.bare) return bareEcho(server);
    server.on('exhausted', () => log(`[greet] ${server.options.maxAccepts} connections served; no more will be accepted`));
    server.on('connection', (conn) => {
      conn.send(greeting + '\n');
      conn.once('message', (m) => {
        const text = typeof m === 'string' ? m : m.toString('utf8');
        log(`[greet] 收到的信息: ${text.trimEnd()}`);
        conn.send(reply + '\n');
        conn.close();
      });
    });
  });
}
