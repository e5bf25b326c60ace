// Child process for native-cleanup.test.ts (a crash or a sanitizer report here must not take the
// test runner with it). Prints one JSON line with what it saw.
//   workers: rounds of a worker thread that serves natively, holds connections (some with writes
//            queued) and then exits, in turn by terminate(), by process.exit() from a message, and
//            by process.exit() in a connection's handler (inside the addon's dispatch).
//   edge:    a worker that drives the addon directly with the smallest buffers init() accepts (4
//            records, a 128 KiB slab), so that batches fill up and are delivered early all the time.
import { Worker } from 'node:worker_threads';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';


const mode = process.argv[2];
const root = fileURLToPath(new URL('..', import.meta.url));
const fds = (): number => readdirSync('/proc/self/fd').length;

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}
const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.closed ? r() : s.once('close', () => r())));

const serverWorker = `
  const { parentPort } = require('node:worker_threads');
  (async () => {
    // An eval'd worker does not run the parent's --import: tsx is registered here.
    (await import('tsx/esm/api')).register();
    const { Server } = await import(${JSON.stringify(`${root}src/index.ts`)});
    const { nativeAvailable } = await import(${JSON.stringify(`${root}src/transport/native.ts`)});
    const server = new Server({ listen: 'text://127.0.0.1:0', maxBufferedAmount: 64 * 1024 * 1024 });
    const big = 'x'.repeat(64 * 1024);
    server.on('connection', (c) => c.on('message', (m) => {
      if (m === 'flood') for (let i = 0; i < 64; i++) c.send(big);
      else if (m === 'exit') process.exit(0); // from inside the addon's batch
      else c.send(m);
    }));
    await server.listen();
    parentPort.on('message', (m) => { if (m === 'exit') process.exit(0); });
    parentPort.postMessage({ port: Number(new URL(server.addresses[0]).port), native: nativeAvailable });
  })();
`;

async function workers(): Promise<void> {
  const counts: number[] = [];
  let native = false;
  for (let round = 0; round < 6; round++) {
    const w = new Worker(serverWorker, { eval: true });
    const exited = new Promise<number>((r) => w.once('exit', r));
    const { port, native: n } = await new Promise<{ port: number; native: boolean }>((r) => w.once('message', r));
    native = n;
    const socks = await Promise.all(Array.from({ length: 20 }, () => connect(port)));
    // Every connection answered (so each is accepted and held), then five flood a peer that
    // does not read: their writes stay queued in the addon when the worker goes.
    await Promise.all(socks.map((s, i) => new Promise<void>((r) => { s.once('data', () => r()); s.write(`hello ${i}\n`); })));
    for (const s of socks.slice(0, 5)) { s.pause(); s.write('flood\n'); }
    await new Promise((r) => setTimeout(r, 50));
    const ended = socks.slice(5).map((s) => new Promise<void>((r) => { s.once('end', () => r()); s.once('close', () => r()); }));
    if (round % 3 === 0) await w.terminate();
    else if (round % 3 === 1) w.postMessage('exit');
    else socks[5]!.write('exit\n');
    await exited;
    // The worker's going closed its connections (the peers see their end) and its listener (the port is free).
    await Promise.all(ended);
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer().once('error', reject).listen(port, '127.0.0.1', () => probe.close(() => resolve()));
    });
    socks.forEach((s) => s.destroy());
    await Promise.all(socks.map(closed));
    counts.push(fds());
  }
  // And the process is still well: its own thread serves natively after the workers have gone.
  const { Server } = await import('../src/index.js');
  const server = new Server({ listen: 'text://127.0.0.1:0' });
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  await server.listen();
  const s = await connect(Number(new URL(server.addresses[0]!).port));
  const echo = await new Promise<string>((r) => { s.once('data', (d) => r(String(d))); s.write('still here\n'); });
  s.destroy();
  await server.close();
  console.log(JSON.stringify({ native, fds: counts, echo }));
}

const edgeWorker = `
  const { parentPort, workerData } = require('node:worker_threads');
  const a = require(workerData.addon);
  const slab = Buffer.allocUnsafeSlow(128 * 1024);
  const events = new Int32Array(16);
  const data = new Map();
  let maxRecords = 0, maxEnd = 0, bad = null, clients = 0;
  a.init((n) => {
    maxRecords = Math.max(maxRecords, n);
    if (n > events.length / 4) bad ??= 'a batch of ' + n + ' records';
    for (let i = 0; i < n; i++) {
      const [type, slot, x, y] = events.subarray(4 * i, 4 * i + 4);
      if (type === 1) { data.set(slot, []); if (++clients === workerData.clients) parentPort.postMessage({ accepted: clients }); }
      else if (type === 2) {
        if (x < 0 || y <= 0 || x + y > slab.length) bad ??= 'a read at ' + x + '+' + y;
        maxEnd = Math.max(maxEnd, x + y);
        data.get(slot).push(Buffer.from(slab.subarray(x, x + y)));
      } else if (type === 3) {
        const all = Buffer.concat(data.get(slot));
        const sha = require('node:crypto').createHash('sha256').update(all).digest('hex');
        parentPort.postMessage({ id: all.readUInt32BE(0), length: all.length, sha });
        a.close(slot);
      }
    }
    if (bad) parentPort.postMessage({ bad });
  }, slab, events);
  const [, port] = a.listen('127.0.0.1', 0, 511, false, false);
  parentPort.on('message', () => parentPort.postMessage({ maxRecords, maxEnd, slab: slab.length }));
  parentPort.postMessage({ port });
`;

async function edge(addon: string): Promise<void> {
  const small = 64, large = 4;
  const w = new Worker(edgeWorker, { eval: true, workerData: { addon, clients: small + large } });
  const inbox: Record<string, unknown>[] = [];
  let wake: () => void = () => {};
  w.on('message', (m: Record<string, unknown>) => { inbox.push(m); wake(); });
  const next = async (pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    for (;;) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      if (inbox.some((m) => 'bad' in m)) throw new Error(String(inbox.find((m) => 'bad' in m)!.bad));
      await new Promise<void>((r) => { wake = r; });
    }
  };
  const { port } = (await next((m) => 'port' in m)) as { port: number };
  const socks = await Promise.all(Array.from({ length: small + large }, () => connect(port)));
  await next((m) => 'accepted' in m);
  // All of them in one tick: the worker's next poll finds most of them readable in one round.
  const sent = socks.map((s, id) => {
    const bytes = Buffer.alloc(id < small ? 3000 + id : 2 * 1024 * 1024 + id);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + id) & 0xff;
    bytes.writeUInt32BE(id, 0);
    s.end(bytes);
    return { length: bytes.length, sha: createHash('sha256').update(bytes).digest('hex') };
  });
  const got: { id: number; length: number; sha: string }[] = [];
  for (let i = 0; i < socks.length; i++) got.push((await next((m) => 'sha' in m)) as { id: number; length: number; sha: string });
  w.postMessage('stats');
  const stats = await next((m) => 'maxRecords' in m);
  const wrong = got.filter((g) => g.length !== sent[g.id]!.length || g.sha !== sent[g.id]!.sha).map((g) => g.id);
  await Promise.all(socks.map(closed));
  await w.terminate();
  console.log(JSON.stringify({ received: got.length, wrong, ...stats }));
}

if (mode === 'workers') await workers();
else if (mode === 'edge') await edge(process.argv[3]!);
else throw new Error(`unknown mode ${mode}`);
