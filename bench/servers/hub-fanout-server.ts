// One side of bench/hub-fanout-clients.ts: a text:// server on the hub named by HUB; every line a client
// sends is published on topic 'f' to every other subscriber, in this process and the other one.
import { Server } from '../../src/index.js';

const server = new Server({ listen: 'text://127.0.0.1:0', hub: process.env.HUB!, maxBufferedAmount: 64 * 1024 * 1024 });
server.on('connection', (conn) => {
  conn.subscribe('f');
  conn.on('message', (m) => server.publish('f', m, { except: conn }));
});
await server.listen();
console.log(`PORT ${/:(\d+)$/.exec(server.addresses[0]!)![1]}`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
