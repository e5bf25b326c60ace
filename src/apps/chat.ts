/**
 * chat (seed 004's epoll chat room): a welcome banner, join and leave notices, every line relayed
 * to everyone else prefixed by the sender's name, /nick NAME and /who.
 *
 * The room is a topic, so with a hub (workers, or Redis) it spans processes and machines.
 * A reader too slow to keep up is dropped once maxBufferedAmount bytes wait for it, so the
 * server's memory stays bounded (the seed writes to every client with no bound at all).
 * Everything relayed is cleaned (chat-text.ts), names are unique by confusable skeleton, and
 * join/leave/rename notices are gathered (chat-notices.ts) so that a join costs O(1).
 */
import { readFileSync } from 'node:fs';
import type { Connection } from '../core/connection.js';
import type { Server } from '../core/server.js';
import { SwitchboardError } from '../errors.js';
import { bareEcho, startApp, type AppOptions } from './common.js';
import { NoticeBatch } from './chat-notices.js';
import { checkNick, cleanText, skeleton } from './chat-text.js';
import { inOrder, nickKey, NICK_UNCHECKED, whoLine } from './chat-presence.js';
import { inSwitchboardWorker } from '../hubs/cluster.js';
import { LOCAL_HISTORY_MESSAGES } from '../hubs/history.js';
import { STREAMS_DEFAULT_MESSAGES } from '../hubs/redis-streams.js';

export const CHAT_DEFAULT = ['text://127.0.0.1:9999', 'ws://127.0.0.1:8080'];

/** The browser page, served at "/" of every ws:// listener (read once, at first use). */
let page: Buffer | null = null;
// src/apps/chat.ts and dist/src/apps/chat.js both find the repository's public/ folder.
const publicFile = (name: string): Buffer => readFileSync(new URL(`public/${name}`, new URL(import.meta.url.includes('/dist/src/') ? '../../../' : '../../', import.meta.url)));
function chatPage(): Buffer {
  return (page ??= publicFile('chat.html'));
}
/** switchboard/client, which the page uses, served beside it at /switchboard-client.js (read once). */
let clientModule: Buffer | null = null;
export const CHAT_BANNER = '欢迎来到ti-chat聊天室!发言注意遵守当地法律法规! (welcome to ti-chat; /nick NAME, /who, /help)';
/** Guest names carry a per-process tag, so two servers sharing a room do not both have a guest1. */
const PROCESS_TAG = 10 + Math.floor(Math.random() * 90);
/** The chat's own message limit (a line, or a WebSocket message): the page cuts input to it. */
export const CHAT_MAX_MESSAGE = 8192;

export interface ChatOptions extends AppOptions {
  /** Topic name of the room (default "chat"). */
  room?: string;
  /** Least time between two join/leave/rename notice lines from this process, in ms (default 1000). */
  noticeInterval?: number;
  /** /who names at most this many members, then counts the rest (default 50). */
  whoLimit?: number;
  /** A newcomer is shown the last this many lines of the room (default 0; needs a hub with history). */
  historyLines?: number;
}

/**
 * A person types a few lines a second and pastes a screenful at most: past that, reading from
 * the sender pauses (its own socket fills and it waits), so one flooder cannot bury the room or
 * get readers that keep up dropped as slow ones. `rateLimit: false` turns it off.
 */
export const CHAT_RATE_LIMIT = { messages: 20, per: 1000, burst: { messages: 100 }, policy: 'pause' } as const;

export function chatServer(options: ChatOptions = {}): Promise<Server> {
  const { room = 'chat', noticeInterval = 1000, whoLimit = 50, historyLines = 0, ...rest } = options;
  for (const [key, v] of [['noticeInterval', noticeInterval], ['whoLimit', whoLimit], ['historyLines', historyLines]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      return Promise.reject(new SwitchboardError('ERR_INVALID_OPTION', `option ${key} must be a number >= 0 (got ${String(v)})`));
    }
  }
  if (historyLines > 0) withHistory(rest, historyLines);
  const maxMessageSize = rest.maxMessageSize ?? CHAT_MAX_MESSAGE;
  let body: Buffer | null = null;
  // The page learns the limit from its <meta name="chat-max-bytes">, so it never sends a message
  // the server would close the connection for (0: no limit).
  const pageBody = (): Buffer => (body ??= Buffer.from(chatPage().toString('utf8')
    .replace(/(<meta name="chat-max-bytes" content=")\d+/, `$1${maxMessageSize}`)
    .replace(/(<meta name="chat-room" content=")[^"]*/, `$1${room.replace(/[^\w./:-]/g, '')}`)
    .replace(/(<meta name="chat-history" content=")\d+/, `$1${historyLines}`)));
  const websocket = {
    httpHandler: (req: { method: string; url: string }) => (req.method === 'GET' && (req.url === '/' || req.url === '/chat.html')
      ? { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: pageBody() }
      : req.method === 'GET' && req.url === '/switchboard-client.js'
        ? { status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' }, body: (clientModule ??= publicFile('switchboard-client.js')) }
        : { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found\n' }),
    ...rest.websocket,
  };
  // The wire protocol is for the page's client: it may take the room's lines in the protocol's
  // envelope and ask who is here; it speaks in lines like everyone, so its lines carry its name.
  const wire = {
    authorize: (_conn: Connection, action: string, topic: string): true | string => (action === 'subscribe' && topic === room) || (action === 'request' && topic === 'who')
      ? true : action === 'publish' ? 'in the chat, say it as a line' : `no ${action} on ${topic} here`,
  };
  return startApp('chat', { ...rest, websocket }, { listen: CHAT_DEFAULT, maxMessageSize: CHAT_MAX_MESSAGE, maxBufferedAmount: 256 * 1024, rateLimit: CHAT_RATE_LIMIT, wire }, (server, log) => {
    if (options.bare) return bareEcho(server);
    // The page's list of who is online (the /who of a person, for a program).
    // Every server's members (presence), as /who lists them; this server's alone when the hub cannot answer.
    server.wire?.handle('who', async () => {
      try {
        const p = await server.presence(room, { limit: whoLimit });
        return { count: p.total, names: p.members.map((m) => (typeof m.meta.name === 'string' ? m.meta.name : '?')) };
      } catch {
        const names: string[] = [];
        for (const c of members()) {
          if (names.length >= whoLimit) break;
          names.push(nameOf(c));
        }
        return { count: members().size, names, local: true };
      }
    });
    const nameOf = (c: Connection): string => c.data.name as string;
    const members = (): ReadonlySet<Connection> => server.subscribers(room);
    /** Nicknames in use here, by skeleton (guest names need no entry: no nickname looks like one). */
    const nicks = new Map<string, Connection>();
    const notices = new NoticeBatch(noticeInterval, (line) => { server.publish(room, line); });
    server.on('close', () => notices.stop());
    // Cut off from the hub past its TTL, this server's claim lapsed and another took the name.
    server.on('claimLost', (key, conn) => {
      if (!conn.isOpen || key !== nickKey(room, nameOf(conn))) return;
      const old = nameOf(conn);
      if (nicks.get(skeleton(old)) === conn) nicks.delete(skeleton(old));
      conn.data.name = `guest${PROCESS_TAG}${conn.id}`;
      server.setPresence(conn, { name: nameOf(conn) });
      conn.send(`* the name ${old} was taken on another server while this one was cut off; you are now ${nameOf(conn)}`);
      notices.rename(old, nameOf(conn));
    });

    server.on('connection', (conn) => {
      conn.data.name = `guest${PROCESS_TAG}${conn.id}`;
      conn.send(CHAT_BANNER);
      conn.send(`* you are ${nameOf(conn)}; ${members().size} other(s) here`);
      // Listed in the room's presence (every server's /who) from its subscribe on.
      server.setPresence(conn, { name: nameOf(conn) });
      // The page's client (`?client` in its URL) takes the room through the wire protocol itself:
      // its first subscribe asks for the last lines, and a reconnect resumes from the last offset it saw.
      if (!/[?&]client(?:[=&]|$)/.test(conn.request?.url ?? '')) subscribeWithHistory(conn, room, historyLines);
      notices.join(nameOf(conn));

      const handle = (raw: string): Promise<void> | void => {
        // A connection that is closing (dropped as a slow reader, or closed) gets no more answers
        // and speaks no more: the rest of a pipelined chunk is not worth a /who over a big room.
        if (!conn.isOpen) return;
        if (raw.charCodeAt(0) === 0x1e) return; // a wire-protocol message while the wire is off (wire: false): not a line
        if (!raw.startsWith('/')) {
          const text = cleanText(raw);
          if (text !== '') server.publish(room, `${nameOf(conn)}: ${text}`, { except: conn });
          return;
        }
        // Commands are read from the raw line, so a nickname with controls in it is refused,
        // not quietly cleaned into some other name.
        const [command = '', ...args] = raw.split(/\s+/);
        switch (command) {
          case '/nick': {
            const checked = checkNick(args.join(' '));
            if ('error' in checked) {
              conn.send(`* ${checked.error}`);
              break;
            }
            const wanted = checked.name;
            const key = skeleton(wanted);
            const holder = nicks.get(key);
            if (holder !== undefined && holder !== conn && holder.isOpen) {
              conn.send(holder.data.name === wanted ? `* the name ${wanted} is taken` : `* the name ${wanted} is taken (too like ${nameOf(holder)})`);
              break;
            }
            // The claim holds across every server and worker sharing the hub.
            return server.claim(nickKey(room, wanted), conn).then((ok) => {
              if (!conn.isOpen) return;
              if (!ok) {
                conn.send(`* the name ${wanted} is taken`);
                return;
              }
              const old = nameOf(conn);
              if (nicks.get(skeleton(old)) === conn) nicks.delete(skeleton(old));
              if (skeleton(old) !== key) server.release(nickKey(room, old), conn);
              nicks.set(key, conn);
              conn.data.name = wanted;
              server.setPresence(conn, { name: wanted });
              conn.send(`* you are now ${wanted}`);
              if (old !== wanted) notices.rename(old, wanted);
              log(`[chat] ${conn.remote} ${old} -> ${wanted}`);
            }, () => {
              if (conn.isOpen) conn.send(NICK_UNCHECKED);
            });
          }
          case '/who':
            return whoLine(server, room, whoLimit, members).then((line) => {
              if (conn.isOpen) conn.send(line);
            });
          case '/help':
            conn.send('* /nick NAME: change your name; /who: who is here; /quit: leave');
            break;
          case '/quit':
            conn.send('* bye');
            conn.close(1000, 'bye');
            break;
          default:
            conn.send(`* unknown command ${cleanText(command)}; try /help`);
        }
      };
      const ordered = inOrder(conn, handle);
      conn.on('message', (m) => {
        if (conn.isOpen) ordered((typeof m === 'string' ? m : m.toString('utf8')).trim());
      });
      conn.on('close', (info) => {
        if (info.error?.code === 'ERR_BUFFER_FULL') log(`[chat] dropped slow reader ${conn.remote}: ${info.error.message}`);
        const key = skeleton(nameOf(conn));
        if (nicks.get(key) === conn) nicks.delete(key);
        notices.leave(nameOf(conn));
      });
    });
  });
}

/** One process keeps the room's history in a memory hub; a hub's own bound is raised to the lines asked for. */
function withHistory(options: ChatOptions, lines: number): void {
  if (options.hub === undefined && !inSwitchboardWorker()) options.hub = 'memory';
  if (options.history === undefined && lines > LOCAL_HISTORY_MESSAGES) options.history = { messages: Math.max(lines, STREAMS_DEFAULT_MESSAGES) };
}

/** The newcomer gets the room's last lines (after the banner), then the room live. */
function subscribeWithHistory(conn: Connection, room: string, lines: number): void {
  if (lines === 0) return conn.subscribe(room);
  conn.once('replay', (info) => {
    if (info.replayed > 0) conn.send(`* ${info.replayed} earlier line(s) above`);
  });
  conn.subscribe(room, { last: lines });
}
