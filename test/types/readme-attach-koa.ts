// The README's "Mount on an existing HTTP server" snippet for Koa, verbatim (type-checked, not run).
import http from 'node:http';
import Koa from 'koa';
import { Server } from 'switchboard';

const app = new Koa();
app.use((ctx) => { ctx.body = 'hello from koa'; });
const httpServer = http.createServer(app.callback()).listen(8080);
const ws = new Server({});
ws.on('connection', (conn) => conn.on('message', (msg) => conn.send(msg)));
ws.attach(httpServer, { path: '/ws' });
