// switchboard: the WebSocket chat room of sb-ws-chat.js run in N worker processes (runWorkers);
// inside workers the hub defaults to the cluster hub, so a publish reaches every worker.
// The primary prints LISTEN and answers the harness's memory request with the sum of the
// workers' connection counts (each worker reports its count to the primary four times a second).
import cluster from 'node:cluster';
import net from 'node:net';
import { Server, runWorkers } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

// A fixed port for the workers (chosen once by the primary): on port 0 each worker's native listener
// would get a port of its own, so switchboard would fall back to sharing the primary's socket.
async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export async function start(workers) {
  const counts = new Map();
  let announced = false;
  if (cluster.isPrimary) {
    process.env.BENCH_PORT = String(portArg() || await freePort()); // inherited by the workers
    cluster.on('message', (worker, msg) => {
      if (msg?.bench === 'count') counts.set(worker.id, msg.n);
      if (msg?.bench === 'port' && !announced) {
        announced = true;
        ready(msg.port, () => [...counts.values()].reduce((a, b) => a + b, 0));
      }
    });
  }
  await runWorkers(workers, async () => {
    // The user code: a few lines, the same as the single-process chat server.
    const server = new Server({ listen: `ws://127.0.0.1:${process.env.BENCH_PORT}`, maxConnections: 100000 });
    server.on('connection', (conn) => {
      conn.subscribe('room');
      conn.on('message', (message) => server.publish('room', message));
    });
    await server.listen();
    // Bench plumbing: tell the primary the port and the connection count.
    process.send({ bench: 'port', port: Number(new URL(server.addresses[0]).port) });
    setInterval(() => { if (process.connected) process.send({ bench: "count", n: server.connections.size }); }, 250).unref();
    return () => server.close();
  }, { log: () => {} });
}
