// One abusive permessage-deflate client against one bystander (issue 13, item 4). Not a test and
// not part of bench/run.js: a short loopback measurement, a few seconds.
//   node --import tsx bench/inflate-fairness.ts [--secs 3] [--rate KIB_PER_S] [--server switchboard|ws]
// The server (switchboard from src/, or the `ws` package for reference) runs in this process; the
// clients run in a child process (this file with --clients). The abuser sends binary messages of
// about 1 KiB that each inflate to 1 MiB, as fast as the socket takes them (or at --rate KiB/s);
// the bystander does request/response echo of 16-byte text. Prints one JSON line: the
// bystander's round trips (count, p50, p99, max in ms), the abuser's messages sent and received
// by the server, whether they arrived in order, and the most abuser messages handled in one
// event-loop round of the server.
import { fork } from 'node:child_process';
import net from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import { Server } from '../src/index.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const MSG = 1 << 20;

/** A masked (zero key) compressed binary frame whose payload inflates to MSG bytes: 8-byte sequence number, then zeros. */
function abuseFrame(zeros: Buffer, seq: number): Buffer {
  // A stored block (byte-aligned, not final) with the sequence number, then the compressed zeros.
  const stored = Buffer.from([0x00, 8, 0, 0xf7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  stored.writeBigUInt64BE(BigInt(seq), 5);
  const len = stored.length + zeros.length;
  const head = Buffer.from([0xc2, 0x80 | 126, len >> 8, len & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([head, stored, zeros]);
}

async function clients(port: number, secs: number, rate: number): Promise<void> {
  const z = deflateRawSync(Buffer.alloc(MSG - 8), { finishFlush: constants.Z_SYNC_FLUSH });
  const zeros = z.subarray(0, z.length - 4);
  // The abuser: a raw socket, upgrade, then frames.
  const abuser = net.connect(port, '127.0.0.1');
  abuser.on('error', () => {});
  await new Promise<void>((resolve) => abuser.once('connect', resolve));
  abuser.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n');
  await new Promise<void>((resolve) => abuser.once('data', () => resolve()));
  const bystander = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  await new Promise<void>((resolve) => bystander.once('open', () => resolve()));

  const end = Date.now() + secs * 1000;
  let sent = 0;
  const start = Date.now();
  const pump = (): void => {
    while (Date.now() < end) {
      if (rate > 0 && sent * (abuseFrame(zeros, 0).length / 1024) > rate * (Date.now() - start) / 1000) {
        setTimeout(pump, 5);
        return;
      }
      if (!abuser.write(abuseFrame(zeros, sent++))) {
        abuser.once('drain', pump);
        return;
      }
    }
  };
  pump();

  const rtts: number[] = [];
  while (Date.now() < end) {
    const t = performance.now();
    await new Promise<void>((resolve) => {
      bystander.once('message', () => resolve());
      bystander.send('ping-0123456789a');
    });
    rtts.push(performance.now() - t);
  }
  rtts.sort((a, b) => a - b);
  const q = (p: number): number => Math.round(rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]! * 100) / 100;
  process.send!({ sent, roundTrips: rtts.length, p50: q(0.5), p99: q(0.99), max: q(1) });
  bystander.terminate();
  abuser.destroy();
}

async function main(): Promise<void> {
  if (args[0] === '--clients') {
    await clients(Number(args[1]), Number(args[2]), Number(args[3]));
    return;
  }
  const secs = Number(opt('secs', '3'));
  const rate = Number(opt('rate', '0'));
  const which = opt('server', 'switchboard');
  let received = 0;
  let inOrder = true;
  let inRound = 0;
  let maxPerRound = 0;
  let ticking = true;
  const tick = (): void => {
    if (inRound > maxPerRound) maxPerRound = inRound;
    inRound = 0;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const onAbuse = (m: Buffer): void => {
    if (m.readBigUInt64BE(0) !== BigInt(received)) inOrder = false;
    received++;
    inRound++;
  };
  let port: number;
  let stop: () => Promise<void>;
  if (which === 'ws') {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true, maxPayload: 2 * MSG });
    wss.on('connection', (ws) => ws.on('message', (m: Buffer, isBinary) => {
      if (isBinary) onAbuse(m);
      else ws.send(m.toString());
    }));
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    port = (wss.address() as net.AddressInfo).port;
    stop = () => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(() => resolve()); });
  } else {
    const server = new Server({ listen: 'ws://127.0.0.1:0', websocket: { perMessageDeflate: true } });
    server.on('connection', (c) => c.on('message', (m) => {
      if (typeof m === 'string') c.send(m);
      else onAbuse(m);
    }));
    await server.listen();
    port = Number(new URL(server.addresses[0]!).port);
    stop = () => server.close();
  }
  const child = fork(new URL(import.meta.url).pathname, ['--clients', String(port), String(secs), String(rate)], { execArgv: ['--import', 'tsx'] });
  const result = await new Promise<Record<string, number>>((resolve) => child.once('message', (m) => resolve(m as Record<string, number>)));
  ticking = false;
  await stop();
  console.log(JSON.stringify({ server: which, secs, rate: rate || 'socket', ...result, received, inOrder, maxPerRound }));
}

await main();
