// The README's "Mount on an existing HTTP server" snippet for Fastify, verbatim (type-checked, not run).
import Fastify from 'fastify';
import { Server } from 'switchboard';

const app = Fastify();
app.get('/health', async () => 'ok');
const ws = new Server({});
ws.on('connection', (conn) => conn.on('message', (msg) => conn.send(msg)));
ws.attach(app.server, { path: '/ws' });
await app.listen({ port: 8080 });
