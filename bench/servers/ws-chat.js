// ws package: chat room, every message goes to every open client (sender included).
import { WebSocketServer, WebSocket } from 'ws';
import { ready, portArg } from './control.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: portArg() });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
wss.on('listening', () => ready(wss.address().port, () => wss.clients.size));
