// Plain node:net floor for the idle scenario: a socket per connection that answers the upgrade
// with a fixed 101 and does nothing else. Not a WebSocket server: it shows what one net.Socket costs.
import net from 'node:net';
import { ready, portArg } from './control.js';

const ANSWER = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n';
let conns = 0;
const server = net.createServer((socket) => {
  conns++;
  socket.once('data', () => socket.write(ANSWER));
  socket.on('error', () => {});
  socket.on('close', () => conns--);
});
server.listen(portArg(), '127.0.0.1', () => ready(server.address().port, () => conns));
