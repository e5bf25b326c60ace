// ws package: echo with permessage-deflate on.
import { WebSocketServer } from 'ws';
import { ready, portArg } from './control.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: portArg(), perMessageDeflate: true });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => ready(wss.address().port, () => wss.clients.size));
