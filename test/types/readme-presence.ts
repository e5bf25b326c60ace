// The README's presence snippet, verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text).
import { Server } from 'switchboard';
const server = new Server<{ name: string }>({ listen: 'ws://0.0.0.0:8080', hub: 'redis://127.0.0.1:6379' });
server.on('connection', async (conn) => {
  const name = `user${conn.id}`;
  if (!(await server.claim(`name:${name}`, conn))) return conn.close(1008, 'name taken');
  conn.data.name = name;
  server.setPresence(conn, { name });
  conn.subscribe('lobby');
  const { members, total } = await server.presence('lobby', { limit: 20 });
  conn.send(`${total} here: ${members.map((m) => m.meta.name).join(', ')}`);
});
await server.listen();
