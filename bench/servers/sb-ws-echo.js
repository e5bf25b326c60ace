// switchboard: WebSocket echo on the public API.
import { Server } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

let conns = 0;
// maxConnections lifted so the idle and max-connection scenarios measure the process, not the default cap.
const server = new Server({ listen: `ws://127.0.0.1:${portArg()}`, maxConnections: 100000 });
server.on('connection', (conn) => {
  conns++;
  conn.on('message', (message) => conn.send(message));
  conn.on('close', () => conns--);
});
await server.listen();
ready(new URL(server.addresses[0]).port, () => conns);
