// Plain node:net: newline-delimited chat room, every line goes to every client.
import net from 'node:net';
import { ready, portArg } from './control.js';

const clients = new Set();
const server = net.createServer((socket) => {
  clients.add(socket);
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      for (const client of clients) client.write(line + '\n');
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => clients.delete(socket));
});
server.listen(portArg(), '127.0.0.1', () => ready(server.address().port, () => clients.size));
