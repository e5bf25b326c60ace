// The README's snippets of "Topics from the wire and switchboard/client", verbatim (type-checked, not run).
import { Server } from 'switchboard';
const server = new Server<{ user: string }>({
  listen: ['ws://127.0.0.1:8080', 'text://127.0.0.1:9999'],
  wire: {
    authorize: async (conn, action, topic) =>
      topic === 'news' ? action === 'subscribe' || 'news is read-only' : topic.startsWith(`user/${conn.data.user}/`) || 'not yours',
  },
});
server.wire?.handle('time', () => new Date().toISOString());
await server.listen();

import { SwitchboardClient } from 'switchboard/client';
import WebSocket from 'ws'; // Node 20 only: browsers and Node 22+ have a WebSocket

type Topics = { news: string; prices: { sym: string; px: number } };
type Requests = { time: { request: null; reply: string } };
const client = new SwitchboardClient<Topics, Requests>('ws://127.0.0.1:8080', { WebSocket });
client.on('reconnecting', ({ attempt, delay, reason }) => console.log(`attempt ${attempt} in ${delay} ms: ${reason}`));
await client.subscribe('news', (text, { offset }) => console.log(text, offset));
await client.subscribe('prices', (p) => console.log(p.sym, p.px), { json: true });
await client.publish('news', 'hello');                          // resolves on the server's acknowledgement
const now: string = await client.request('time', null, { timeout: 2000 }); // ERR_TIMEOUT, ERR_REFUSED (err.reason) ...
console.log(now);
