// Compressed fan-out (issue 18, item 2). Not a test and not part of bench/run.js: a short
// loopback measurement.
//   node --import tsx bench/deflate-fanout.ts [--receivers 100] [--messages 50] [--size 16384]
// N permessage-deflate receivers (raw sockets in a child process: they count the bytes and frames
// they read, and inflate nothing) get M publishes of a compressible text, from three servers in
// turn, in this process:
//   shared: switchboard, perMessageDeflate with sharedThreshold 1024 (compressed once per publish);
//   plain:  switchboard, sharedThreshold Infinity (the publish goes uncompressed, as before);
//   ws:     the `ws` package, perMessageDeflate, send() to each client (it compresses per receiver).
// Runs every server twice and prints the second pass (the first warms up), one JSON line per server: bytes the receivers read, and the server's CPU (process.cpuUsage,
// user+system) from the first publish until every receiver has every message.
import { fork } from 'node:child_process';
import net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { Server } from '../src/index.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
};
const N = opt('receivers', 100);
const M = opt('messages', 50);
const SIZE = opt('size', 16384);

/** JSON-like text that compresses about as well as real chat or ticker messages. */
function payload(i: number): string {
  const words = ['price', 'volume', 'symbol', 'bid', 'ask', 'time', 'open', 'close', 'high', 'low'];
  let x = (i + 1) * 2654435761 >>> 0;
  let out = '[';
  while (out.length < SIZE - 64) {
    x = (x * 1103515245 + 12345) >>> 0;
    out += `{"${words[x % 10]}":${x % 100000},"${words[(x >>> 8) % 10]}":"${(x >>> 12).toString(36)}"},`;
  }
  return (out + '{}]').padEnd(SIZE, ' ');
}

/** Child: N raw receivers; reports on IPC when all are open and when all have M messages. */
async function receivers(port: number): Promise<void> {
  let done = 0;
  let bytes = 0;
  const open: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    const s = net.connect(port, '127.0.0.1');
    let head = true;
    let buf: Buffer = Buffer.alloc(0);
    let messages = 0;
    open.push(new Promise((resolve) => {
      s.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        if (head) {
          const at = buf.indexOf('\r\n\r\n');
          if (at < 0) return;
          if (!buf.subarray(0, at).toString().includes('permessage-deflate')) throw new Error('no deflate agreed');
          head = false;
          buf = buf.subarray(at + 4);
          resolve();
        }
        // Frame headers only: skip each payload.
        for (;;) {
          if (buf.length < 2) break;
          let len = buf[1]! & 0x7f;
          let at = 2;
          if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); at = 4; }
          else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); at = 10; }
          if (buf.length < at + len) break;
          if ((buf[0]! & 0x80) !== 0) messages++;
          buf = buf.subarray(at + len);
        }
        if (messages === M && ++done === N) process.send!({ bytes });
      });
      s.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n`);
    }));
  }
  await Promise.all(open);
  process.send!({ open: true });
}

let quiet = true; // the first pass warms up the JIT and zlib and prints nothing

async function run(name: string, port: number, publish: (data: string) => void, connected: () => number): Promise<void> {
  const child = fork(new URL(import.meta.url).pathname, ['--clients', String(port), ...args], { execArgv: ['--import', 'tsx'] });
  await new Promise<void>((resolve) => child.on('message', (m: { open?: boolean }) => m.open && resolve()));
  while (connected() < N) await new Promise((r) => setTimeout(r, 10));
  const msgs = Array.from({ length: M }, (_, i) => payload(i));
  const result = new Promise<{ bytes: number }>((resolve) => child.on('message', (m: { bytes?: number }) => m.bytes !== undefined && resolve(m as { bytes: number })));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const m of msgs) publish(m);
  const { bytes } = await result;
  const cpu = process.cpuUsage(cpu0);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  child.kill();
  const plainBytes = N * M * SIZE;
  if (!quiet) console.log(JSON.stringify({
    server: name, receivers: N, messages: M, size: SIZE,
    bytesRead: bytes, ratioToText: +(bytes / plainBytes).toFixed(3),
    cpuMs: +((cpu.user + cpu.system) / 1000).toFixed(1), wallMs: +ms.toFixed(1),
  }));
}

if (args[0] === '--clients') {
  await receivers(Number(args[1]));
} else {
  for (const pass of [0, 1]) {
    quiet = pass === 0;
    for (const [name, sharedThreshold] of [['switchboard shared', 1024], ['switchboard plain', Infinity]] as const) {
      const server = new Server({ listen: 'ws://127.0.0.1:0', websocket: { perMessageDeflate: { sharedThreshold } } });
      let n = 0;
      server.on('connection', (c) => { c.subscribe('t'); n++; });
      await server.listen();
      await run(name, Number(new URL(server.addresses[0]!).port), (d) => server.publish('t', d), () => n);
      await server.close();
    }
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
    await new Promise<void>((r) => wss.once('listening', r));
    const socks: WebSocket[] = [];
    wss.on('connection', (ws) => socks.push(ws));
    await run('ws per receiver', (wss.address() as net.AddressInfo).port, (d) => { for (const ws of socks) ws.send(d); }, () => socks.length);
    for (const ws of socks) ws.terminate();
    await new Promise((r) => wss.close(r));
  }
}
