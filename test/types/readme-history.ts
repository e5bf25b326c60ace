// The README's history and recovery snippet, verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text).
import { Server } from 'switchboard';
const server = new Server({ listen: 'ws://127.0.0.1:8080', hub: 'redis+streams://127.0.0.1:6379', history: { messages: 1000 } });
server.on('connection', (conn) => {
  // The client keeps the last offset it saw and sends it back when it reconnects.
  conn.deliverWith((topic, data, offset) => conn.send(JSON.stringify({ topic, offset, data: String(data) })));
  conn.on('replay', (info) => {
    if (!info.complete) conn.send(JSON.stringify({ topic: info.topic, missed: info.gap }));
  });
  conn.once('message', (m) => {
    const { since } = JSON.parse(String(m)) as { since?: string };
    conn.subscribe('news', since !== undefined ? { since } : {});
  });
});
void server.listen();
