/**
 * Run by hub-mesh.test.ts as its own process tree: runWorkers(WORKERS, default 3) with the
 * cluster hub. Each worker serves a control port (printed as "READY index pid port") where the
 * test sends one command per line and gets one JSON line back:
 *   sub T            subscribe to T, then await hub.ready()
 *   pub T N SIZE     publish N messages on T, 32 per event-loop round; message k of this worker is
 *                    "index:k:" padded to SIZE bytes, text when k is even, bytes when odd
 *   got T            what arrived on T: "from:k:s" or "from:k:b" per message, in arrival order
 *   stats            { dropped, peers } of the hub
 */
import net from 'node:net';
import { runWorkers } from '../src/core/workers.js';
import { ClusterHub } from '../src/hubs/cluster.js';

const WORKERS = Number(process.env.WORKERS ?? '3');
const maxPendingBytes = process.env.MAX_BYTES ? Number(process.env.MAX_BYTES) : undefined;

const handle = await runWorkers(
  WORKERS,
  async () => {
    const index = Number(process.env.SWITCHBOARD_WORKER_INDEX);
    // No history: this fixture checks the relay alone (a hub with history hands back our own publishes).
    const hub = new ClusterHub({ maxPendingBytes, history: false, log: (m) => console.error(`[w${index}] ${m}`) });
    const got = new Map<string, string[]>();
    const next = new Map<string, number>();
    hub.setListener((topic, data) => {
      const text = typeof data === 'string' ? data : data.toString('latin1');
      const [from, k] = text.split(':');
      let list = got.get(topic);
      if (list === undefined) got.set(topic, (list = []));
      list.push(`${from}:${k}:${typeof data === 'string' ? 's' : 'b'}`);
    });

    const publish = (topic: string, n: number, size: number): Promise<void> =>
      new Promise((resolve) => {
        let left = n;
        const round = (): void => {
          for (let i = 0; i < 32 && left > 0; i++, left--) {
            const k = next.get(topic) ?? 0;
            next.set(topic, k + 1);
            const head = `${index}:${k}:`;
            const body = head + 'x'.repeat(Math.max(0, size - head.length));
            hub.publish(topic, k % 2 === 0 ? body : Buffer.from(body, 'latin1'));
          }
          if (left > 0) setImmediate(round);
          else resolve();
        };
        round();
      });

    const run = async (line: string): Promise<unknown> => {
      const [cmd, topic = '', a = '0', b = '0'] = line.split(' ');
      switch (cmd) {
        case 'sub':
          hub.subscribe(topic);
          await hub.ready();
          return { ok: true };
        case 'pub':
          await publish(topic, Number(a), Number(b));
          return { ok: true };
        case 'got':
          return { messages: got.get(topic) ?? [] };
        case 'stats':
          return { dropped: hub.dropped, peers: hub.peers() };
        default:
          return { error: `unknown command ${cmd}` };
      }
    };

    const control = net.createServer((sock) => {
      let rest = '';
      let chain = Promise.resolve();
      sock.setEncoding('utf8');
      sock.on('error', () => {});
      sock.on('data', (d: string) => {
        const parts = (rest + d).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) {
          chain = chain.then(async () => {
            const reply = await run(line).catch((err: Error) => ({ error: err.message }));
            sock.write(JSON.stringify(reply) + '\n');
          });
        }
      });
    });
    // exclusive: each worker's own port (in a cluster worker, port 0 would be one port shared by all).
    await new Promise<void>((resolve) => control.listen({ port: 0, host: '127.0.0.1', exclusive: true }, resolve));
    await hub.ready();
    console.log(`READY ${index} ${process.pid} ${(control.address() as net.AddressInfo).port}`);
    return async () => {
      await hub.close();
      control.close();
    };
  },
  { log: (m) => console.error(m), stopTimeout: 3000, restartDelay: 50 },
);

if (handle.role === 'primary') {
  console.log(`PRIMARY READY ${handle.pids().join(',')}`);
  await handle.stopped;
  console.log('PRIMARY STOPPED');
}
