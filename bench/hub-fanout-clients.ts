// Fan-out across two processes through each Redis hub, in one run: a sender on server A publishes
// MESSAGES lines; RECEIVERS clients on server B get each one through the hub. Reports deliveries/s
// (messages x receivers / time from the first send to the last delivery) and what was lost.
// The sender keeps at most WINDOW messages ahead of the first receiver: a sustained rate, not a
// burst (a redis+streams reader that falls more than the retention, MAXLEN ~ 1000, behind loses the
// oldest, as a pub/sub subscriber past Redis's output buffer limit would be cut off).
//   node --import tsx bench/hub-fanout-clients.ts [MESSAGES=20000] [RECEIVERS=50] [WINDOW=500]
// A private redis-server on a free port; both servers and this driver share the machine.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { RedisProcess } from '../test/hub-support.js';

const MESSAGES = Number(process.argv[2] ?? 20000);
const RECEIVERS = Number(process.argv[3] ?? 50);
const WINDOW = Number(process.argv[4] ?? 500);
const SERVER = new URL('./servers/hub-fanout-server.ts', import.meta.url).pathname;

function startServer(hub: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { env: { ...process.env, HUB: hub }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

async function run(kind: string, hub: string): Promise<void> {
  const A = await startServer(hub);
  const B = await startServer(hub);
  try {
    const receivers = await Promise.all(Array.from({ length: RECEIVERS }, () => connect(B.port)));
    const sender = await connect(A.port);
    let done = 0;
    let finished!: () => void;
    const all = new Promise<void>((r) => (finished = r));
    const counts = receivers.map(() => 0);
    receivers.forEach((s, i) => {
      s.on('data', (d: Buffer) => {
        for (let j = 0; j < d.length; j++) if (d[j] === 0x0a) counts[i]!++;
        if (counts[i] === MESSAGES && ++done === RECEIVERS) finished();
      });
    });
    // Let both hubs settle their subscriptions before timing.
    await new Promise((r) => setTimeout(r, 500));
    const line = 'x'.repeat(60);
    const start = process.hrtime.bigint();
    const step = Math.max(1, Math.floor(WINDOW / 5));
    for (let i = 0; i < MESSAGES; i += step) {
      while (i - counts[0]! >= WINDOW) await new Promise((r) => setImmediate(r));
      sender.write(Array.from({ length: Math.min(step, MESSAGES - i) }, (_, k) => `${i + k} ${line}\n`).join(''));
      await new Promise((r) => setImmediate(r));
    }
    const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), 60000));
    const outcome = await Promise.race([all.then(() => 'ok'), timeout]);
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const got = counts.reduce((a, b) => a + b, 0);
    console.log(`${kind.padEnd(16)} ${(got / secs).toFixed(0).padStart(9)} deliveries/s  ${secs.toFixed(2)} s  ` +
      `${MESSAGES * RECEIVERS - got} lost  ${outcome}`);
    for (const s of [sender, ...receivers]) s.destroy();
  } finally {
    await Promise.all([A, B].map(({ child }) => new Promise((r) => {
      child.once('exit', r);
      child.kill('SIGTERM');
    })));
  }
}

const redis = await RedisProcess.start();
try {
  console.log(`${MESSAGES} messages of 64 B from server A to ${RECEIVERS} receivers on server B, at most ${WINDOW} ahead`);
  await run('redis pub/sub', redis.url);
  await run('redis+streams', `redis+streams://127.0.0.1:${redis.port}`);
} finally {
  await redis.stop();
}
