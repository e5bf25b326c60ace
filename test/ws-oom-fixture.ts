/**
 * Run by ws-limits.test.ts as its own process, whose address space the test then caps with
 * prlimit: a ws:// echo server with a 1 GiB message limit. It prints its port once listening,
 * and one line per closed connection ("close <code> <error code>").
 */
import { Server } from '../src/index.js';

const server = new Server({ listen: 'ws://127.0.0.1:0', maxMessageSize: 1024 * 1024 * 1024, heartbeatInterval: 0, maxConnections: 1000 });
server.on('connection', (c) => {
  c.on('message', (m) => c.send(m));
  c.on('close', (info) => process.stdout.write(`close ${info.code} ${info.error?.code ?? '-'}\n`));
});
await server.listen();
process.stdout.write(`port ${new URL(server.addresses[0]!).port}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
