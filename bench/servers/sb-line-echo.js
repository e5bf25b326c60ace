// switchboard: newline-delimited echo (text://) on the public API.
import { Server } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

let conns = 0;
const server = new Server({ listen: `text://127.0.0.1:${portArg()}`, maxConnections: 100000 });
server.on('connection', (conn) => {
  conns++;
  conn.on('message', (line) => conn.send(line));
  conn.on('close', () => conns--);
});
await server.listen();
ready(new URL(server.addresses[0]).port, () => conns);
