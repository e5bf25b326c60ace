// The README's "The API" snippet, verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text).
import { Server, connect } from 'switchboard';

const server = new Server({ listen: ['text://127.0.0.1:5000', 'ws://127.0.0.1:8080'] });
server.on('connection', (conn) => {
  conn.send(`welcome, ${conn.remote}`);
  conn.on('message', (msg) => conn.send(`OK ... ${msg}`));
  conn.on('close', (info) => console.log('gone', info.code, info.error?.message));
});
await server.listen();

const client = await connect('text://127.0.0.1:5000', { connectTimeout: 3000 });
client.send('hello');
for await (const msg of client) console.log(msg);   // ends when the connection closes
