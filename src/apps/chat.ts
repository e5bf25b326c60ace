/**
 * chat (seed 004's epoll chat room): a welcome banner, join and leave notices, every line relayed
 * to everyone else prefixed by the sender's name, /nick NAME and /who.
 *
 * The room is a topic, so with a hub (workers, or Redis) it spans processes and machines.
 * A reader too slow to keep up is dropped once maxBufferedAmount bytes wait for it, so the
 * server's memory stays bounded (the seed writes to every client with no bound at all).
 */
import { readFileSync } from 'node:fs';
import type { Connection } from '../core/connection.js';
import type { Server } from '../core/server.js';
import { bareEcho, startApp, type AppOptions } from './common.js';

export const CHAT_DEFAULT = ['text://127.0.0.1:9999', 'ws://127.0.0.1:8080'];

/** The browser page, served at "/" of every ws:// listener (read once, at first use). */
let page: Buffer | null = null;
function chatPage(): Buffer {
  if (page === null) {
    // src/apps/chat.ts and dist/src/apps/chat.js both find the repository's public/ folder.
    const root = new URL(import.meta.url.includes('/dist/src/') ? '../../../' : '../../', import.meta.url);
    page = readFileSync(new URL('public/chat.html', root));
  }
  return page;
}
export const CHAT_BANNER = '欢迎来到ti-chat聊天室!发言注意遵守当地法律法规! (welcome to ti-chat; /nick NAME, /who, /help)';
/** Guest names carry a per-process tag, so two servers sharing a room do not both have a guest1. */
const PROCESS_TAG = 10 + Math.floor(Math.random() * 90);
const NICK = /^[\p{L}\p{N}_.-]{1,24}$/u;

export interface ChatOptions extends AppOptions {
  /** Topic name of the room (default "chat"). */
  room?: string;
}

export function chatServer(options: ChatOptions = {}): Promise<Server> {
  const { room = 'chat', ...rest } = options;
  const websocket = {
    httpHandler: (req: { method: string; url: string }) => (req.method === 'GET' && (req.url === '/' || req.url === '/chat.html')
      ? { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: chatPage() }
      : { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found\n' }),
    ...rest.websocket,
  };
  return startApp('chat', { ...rest, websocket }, { listen: CHAT_DEFAULT, maxMessageSize: 8192, maxBufferedAmount: 256 * 1024 }, (server, log) => {
    if (options.bare) return bareEcho(server);
    const nameOf = (c: Connection): string => c.data.name as string;
    const online = (): Connection[] => [...server.subscribers(room)];

    server.on('connection', (conn) => {
      conn.data.name = `guest${PROCESS_TAG}${conn.id}`;
      conn.send(CHAT_BANNER);
      conn.send(`* you are ${nameOf(conn)}; ${online().length} other(s) here`);
      conn.subscribe(room);
      server.publish(room, `* ${nameOf(conn)} joined`, { except: conn });

      conn.on('message', (m) => {
        const text = (typeof m === 'string' ? m : m.toString('utf8')).replace(/[\r\n]+/g, ' ').trim();
        if (text === '') return;
        if (!text.startsWith('/')) {
          server.publish(room, `${nameOf(conn)}: ${text}`, { except: conn });
          return;
        }
        const [command, ...args] = text.split(/\s+/);
        switch (command) {
          case '/nick': {
            const wanted = args[0] ?? '';
            if (!NICK.test(wanted)) conn.send('* usage: /nick NAME (1-24 letters, digits, _ . -)');
            else if (online().some((c) => c !== conn && nameOf(c) === wanted)) conn.send(`* the name ${wanted} is taken`);
            else {
              const old = nameOf(conn);
              conn.data.name = wanted;
              conn.send(`* you are now ${wanted}`);
              server.publish(room, `* ${old} is now ${wanted}`, { except: conn });
              log(`[chat] ${conn.remote} ${old} -> ${wanted}`);
            }
            break;
          }
          case '/who':
            conn.send(`* online here (${online().length}): ${online().map(nameOf).join(', ')}`);
            break;
          case '/help':
            conn.send('* /nick NAME: change your name; /who: who is here; /quit: leave');
            break;
          case '/quit':
            conn.send('* bye');
            conn.close(1000, 'bye');
            break;
          default:
            conn.send(`* unknown command ${command}; try /help`);
        }
      });
      conn.on('close', (info) => {
        if (info.error?.code === 'ERR_BUFFER_FULL') log(`[chat] dropped slow reader ${conn.remote}: ${info.error.message}`);
        server.publish(room, `* ${nameOf(conn)} left`);
      });
    });
  });
}
