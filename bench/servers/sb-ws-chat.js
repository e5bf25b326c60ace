// switchboard: WebSocket chat room, every message published to everyone (sender included).
import { Server } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

let conns = 0;
const server = new Server({ listen: `ws://127.0.0.1:${portArg()}`, maxConnections: 100000 });
server.on('connection', (conn) => {
  conns++;
  conn.subscribe('room');
  conn.on('message', (message) => server.publish('room', message));
  conn.on('close', () => conns--);
});
await server.listen();
ready(new URL(server.addresses[0]).port, () => conns);
