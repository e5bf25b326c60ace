/**
 * Run by presence.test.ts as its own process, so that the test can SIGKILL it: a chat server on
 * a Redis hub with a short presence TTL (PRESENCE_TTL ms, refreshed every PRESENCE_INTERVAL ms).
 */
import { chatServer } from '../src/apps/chat.js';
import { createHub } from '../src/hubs/index.js';

const hub = createHub(process.env.REDIS_URL!, {
  presenceTtl: Number(process.env.PRESENCE_TTL),
  presenceInterval: Number(process.env.PRESENCE_INTERVAL),
  log: (m) => console.error(m),
});
const server = await chatServer({ listen: 'text://127.0.0.1:0', hub, room: process.env.ROOM, log: () => {}, noticeInterval: 20 });
console.log(`LISTENING ${server.addresses[0]}`);
