// switchboard: WebSocket echo with permessage-deflate on.
import { Server } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

let conns = 0;
const server = new Server({ listen: `ws://127.0.0.1:${portArg()}`, websocket: { perMessageDeflate: true } });
server.on('connection', (conn) => {
  conns++;
  conn.on('message', (message) => conn.send(message));
  conn.on('close', () => conns--);
});
await server.listen();
ready(new URL(server.addresses[0]).port, () => conns);
