// switchboard: WebSocket echo attached to a node:http server of the application (server.attach), at "/".
import http from 'node:http';
import { Server } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

let conns = 0;
const app = http.createServer((req, res) => res.end('http'));
const server = new Server({ maxConnections: 100000 });
server.on('connection', (conn) => {
  conns++;
  conn.on('message', (message) => conn.send(message));
  conn.on('close', () => conns--);
});
server.attach(app, { path: '/' });
app.listen(portArg(), '127.0.0.1', () => ready(app.address().port, () => conns));
