// ws package: echo every message back.
import { WebSocketServer } from 'ws';
import { ready, portArg } from './control.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: portArg() });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => ready(wss.address().port, () => wss.clients.size));
