/** The seed systems as ready servers, by name (the CLI's `switchboard serve NAME`). */
import type { Server } from '../core/server.js';
import { ackServer } from './ack.js';
import { chatServer } from './chat.js';
import type { AppOptions } from './common.js';
import { echoServer } from './echo.js';
import { greetServer } from './greet.js';
import { reverseServer } from './reverse.js';
import { daytimeServer } from './daytime.js';
import { udpEchoServer } from './udp-echo.js';

export { ackServer, chatServer, daytimeServer, echoServer, greetServer, reverseServer, udpEchoServer };
export type { AppOptions };

export const apps: Record<string, { start: (options: AppOptions & Record<string, unknown>) => Promise<Server>; about: string }> = {
  reverse: { start: reverseServer, about: 'replies to each message reversed (seed 000), tcp://127.0.0.1:5353' },
  ack: { start: ackServer, about: 'acknowledges each line (seed 001), text://127.0.0.1:10008' },
  greet: { start: greetServer, about: 'greets, reads one message, replies, closes; stops after 5 (seeds 002-004), tcp://127.0.0.1:1935' },
  echo: { start: echoServer, about: 'banner + "OK ... <input>", at most 10 clients (seed 004 select), text://127.0.0.1:5000' },
  'daytime': { start: daytimeServer, about: 'RFC 867 date over TCP and UDP, tcp://127.0.0.1:10013 + udp://127.0.0.1:10013' },
  'udp-echo': { start: udpEchoServer, about: 'RFC 862 datagram echo, udp://127.0.0.1:10007' },
  chat: { start: chatServer, about: 'chat room with /nick and /who (seed 004 epoll), text://127.0.0.1:9999 + browser page on ws://127.0.0.1:8080' },
};
