// ws package in the same mode: a WebSocketServer on the application's node:http server ({ server }).
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { ready, portArg } from './control.js';

const app = http.createServer((req, res) => res.end('http'));
const wss = new WebSocketServer({ server: app });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
app.listen(portArg(), '127.0.0.1', () => ready(app.address().port, () => wss.clients.size));
