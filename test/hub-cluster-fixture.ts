/**
 * Run by hub-cluster.test.ts as its own process tree: runWorkers(2) with the cluster hub.
 * Both workers share PORT (each answers a TCP connection with its number). Worker 2 (B) asks for
 * the messages by publishing 'hello' on 'ctl' until they come; worker 1 (A) answers by
 * publishing COUNT messages on 'room' then 'end'. B prints a digest of what it got and acks; A,
 * also subscribed to 'room', prints how many of its own messages came back to it (must be 0).
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { runWorkers } from '../src/core/workers.js';
import { createHub } from '../src/hubs/index.js';
import type { Message } from '../src/codec/types.js';
import { clusterTestMessages, digestMessages } from './hub-support.js';

const port = Number(process.env.PORT);
const COUNT = Number(process.env.COUNT ?? '200');

const handle = await runWorkers(
  2,
  async () => {
    const index = Number(process.env.SWITCHBOARD_WORKER_INDEX);
    if (String(index) === process.env.FAIL_WORKER) throw new Error('simulated start failure');
    // No history: a hub with history hands a process its own publishes (with their offsets); this checks the relay never does.
    const hub = createHub(undefined, { history: false });
    const server = net.createServer((sock) => sock.end(`worker ${index}\n`));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    let hello: NodeJS.Timeout | undefined;

    if (index === 1) {
      let started = false;
      let echoes = 0;
      hub.setListener((topic, data) => {
        if (topic === 'room') echoes++;
        else if (data === 'hello' && !started) {
          started = true;
          for (const m of clusterTestMessages(COUNT)) hub.publish('room', m);
          hub.publish('room', 'end');
        } else if (data === 'ack') console.log(`RESULT A ${JSON.stringify({ kind: hub.kind, echoes })}`);
      });
      hub.subscribe('ctl');
      hub.subscribe('room');
    } else {
      const got: Message[] = [];
      hub.setListener((topic, data) => {
        if (topic !== 'room') return;
        clearInterval(hello);
        if (data === 'end') {
          console.log(`RESULT B ${JSON.stringify({ kind: hub.kind, count: got.length, digest: digestMessages(got) })}`);
          hub.publish('ctl', 'ack');
        } else got.push(data);
      });
      hub.subscribe('room');
      await hub.ready();
      // A may not be subscribed to 'ctl' yet; ask until it answers (bounded by the test's timeout).
      hello = setInterval(() => hub.publish('ctl', 'hello'), 50);
      hub.publish('ctl', 'hello');
    }
    await hub.ready();
    console.log(`READY ${index} ${process.pid}`);
    return async () => {
      clearInterval(hello);
      await hub.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      console.log(`STOPPED ${index}`);
    };
  },
  { log: (m) => console.error(m), stopTimeout: 3000 },
).catch((err: Error & { code?: string }) => {
  if (cluster.isPrimary) console.log(`PRIMARY FAILED ${err.code} ${err.message}`);
  process.exit(1);
});

if (handle.role === 'primary') {
  console.log(`PRIMARY READY ${handle.pids().join(',')}`);
  await handle.stopped;
  console.log('PRIMARY STOPPED');
}
