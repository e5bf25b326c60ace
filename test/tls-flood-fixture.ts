/** A Server with a TLS and a plain ws:// listener, for tls-hardening.test.ts to flood in its own process (few fds). */
import { Server } from '../src/index.js';

const server = new Server({
  listen: ['tls+text://127.0.0.1:0', 'ws://127.0.0.1:0'],
  tls: { key: process.env.SB_KEY!, cert: process.env.SB_CERT! },
  handshakeTimeout: 60_000,
});
server.on('connection', (c) => c.on('message', (m) => c.send(m)));
server.on('error', () => {});
await server.listen();
process.stdout.write(JSON.stringify(server.addresses) + '\n');
