// Load for the permessage-deflate memory scenario (sockload does not speak deflate):
// N ws-package clients with permessage-deflate, each sending a compressible JSON text
// message every `everyMs` and counting echoes. Usage: node bench/deflate-load.js PORT CONNS SECS [everyMs]
// Prints one JSON line {"opened","sent","received","errors"}. Loopback only, bounded in time.
import WebSocket from 'ws';

const [port, conns, secs, everyMs = 100] = process.argv.slice(2).map(Number);
const clients = [];
let sent = 0;
let received = 0;
let errors = 0;
let opened = 0;
const body = (i) => JSON.stringify({ from: i, text: 'the quick brown fox jumps over the lazy dog '.repeat(10), at: Date.now() });

const hardStop = setTimeout(() => process.exit(3), (secs + 60) * 1000);
await Promise.all(Array.from({ length: conns }, () => new Promise((resolve) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
  ws.on('open', () => { opened++; resolve(); });
  ws.on('message', () => { received++; });
  ws.on('error', () => { errors++; resolve(); });
  clients.push(ws);
})));
process.stdout.write(`READY ${opened}\n`);
let i = 0;
const tick = setInterval(() => {
  // spread sends over the interval: a tenth of the clients every tenth of it
  const slice = Math.ceil(clients.length / 10);
  for (let k = 0; k < slice; k++) {
    const ws = clients[i++ % clients.length];
    if (ws.readyState === WebSocket.OPEN) { ws.send(body(k)); sent++; }
  }
}, everyMs / 10);
setTimeout(() => {
  clearInterval(tick);
  clearTimeout(hardStop);
  for (const ws of clients) ws.terminate();
  process.stdout.write(`${JSON.stringify({ opened, sent, received, errors })}\n`);
  process.exit(0);
}, secs * 1000);
