// Where the bytes of an idle WebSocket connection go, measured inside the server process.
//   node --expose-gc bench/idle-memory.js [switchboard|ws|net] [conns=2000]
// Runs the server in this process (public API, same code as bench/servers/), opens `conns`
// idle connections with sockload (-I, handshake done) from a child process, then prints
// process.memoryUsage() deltas per connection after a full GC and a heap-snapshot diff: the
// self size per connection of each object type (constructor name) that grew.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { buildSockload } from './lib/procs.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const which = process.argv[2] ?? 'switchboard';
const conns = Number(process.argv[3] ?? 2000);
if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}

async function startServer() {
  if (which === 'switchboard') {
    const { Server } = await import('../dist/src/index.js');
    let n = 0;
    const server = new Server({ listen: 'ws://127.0.0.1:0', maxConnections: 100000 });
    server.on('connection', (conn) => {
      n++;
      conn.on('message', (m) => conn.send(m));
      conn.on('close', () => n--);
    });
    await server.listen();
    return { port: Number(new URL(server.addresses[0]).port), count: () => n };
  }
  if (which === 'ws') {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
    await new Promise((r) => wss.on('listening', r));
    return { port: wss.address().port, count: () => wss.clients.size };
  }
  // net: a bare socket that reads the upgrade and answers nothing useful; the floor of a socket.
  let n = 0;
  const srv = net.createServer((s) => {
    n++;
    s.once('data', () => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n'));
    s.on('error', () => {});
    s.on('close', () => n--);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { port: srv.address().port, count: () => n };
}

function settle() {
  return new Promise((r) => setTimeout(r, 200)).then(() => { globalThis.gc(); globalThis.gc(); });
}

function snapshotSizes() {
  const snap = JSON.parse(readSnapshot());
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const w = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const sizes = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += w) {
    const type = types[nodes[i + iType]];
    let name = type === 'object' || type === 'native' || type === 'closure' ? snap.strings[nodes[i + iName]] : `(${type})`;
    if (type === 'closure') name = `closure ${name}`;
    const e = sizes.get(name) ?? { size: 0, count: 0 };
    e.size += nodes[i + iSize];
    e.count++;
    sizes.set(name, e);
  }
  return sizes;
}

function readSnapshot() {
  const chunks = [];
  const stream = v8.getHeapSnapshot();
  let chunk;
  while ((chunk = stream.read()) !== null) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const { port, count } = await startServer();
const sockload = buildSockload(path.resolve(benchDir, '..'), path.join(benchDir, 'out'));
await settle();
const m0 = process.memoryUsage();
const s0 = snapshotSizes();
await settle();
const m0b = process.memoryUsage();
const child = spawn(sockload, ['-p', String(port), '-m', 'ws', '-c', String(conns), '-t', '60', '-I', '-j'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve, reject) => {
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => { out += d; if (out.includes('READY')) resolve(); });
  child.on('exit', () => reject(new Error(`sockload exited: ${out}`)));
});
await new Promise((r) => setTimeout(r, 1000));
await settle();
const held = count();
const m1 = process.memoryUsage();
const s1 = snapshotSizes();
child.kill('SIGTERM');

const per = (k) => ((m1[k] - m0b[k]) / held).toFixed(0);
console.log(`${which}: ${held} idle connections (node ${process.version})`);
console.log(`per connection: rss ${per('rss')} B, heapUsed ${per('heapUsed')} B, external ${per('external')} B, arrayBuffers ${per('arrayBuffers')} B`);
console.log(`(baseline rss ${(m0.rss / 1e6).toFixed(1)} MB)`);
const rows = [];
let total = 0;
for (const [name, e1] of s1) {
  const e0 = s0.get(name) ?? { size: 0, count: 0 };
  const d = e1.size - e0.size;
  total += d;
  if (Math.abs(d) / held >= 4) rows.push([name, d / held, (e1.count - e0.count) / held]);
}
rows.sort((a, b) => b[1] - a[1]);
console.log(`heap snapshot growth per connection: ${(total / held).toFixed(0)} B`);
console.log('| bytes/conn | objects/conn | type |\n|---:|---:|---|');
for (const [name, b, c] of rows.slice(0, 40)) console.log(`| ${b.toFixed(0)} | ${c.toFixed(2)} | ${name.slice(0, 60)} |`);
process.exit(0);
