// Plain node:net: newline-delimited echo, written the way a Node user writes it.
import net from 'node:net';
import { ready, portArg } from './control.js';

let conns = 0;
const server = net.createServer((socket) => {
  conns++;
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      socket.write(line + '\n');
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => conns--);
});
server.listen(portArg(), '127.0.0.1', () => ready(server.address().port, () => conns));
