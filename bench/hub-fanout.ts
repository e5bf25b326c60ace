/**
 * Fan-out across two processes through each hub, in one run: this process publishes N messages
 * on one topic; a second process (this script with `receive`) subscribes through the same kind of
 * hub and counts what arrives. Each engine is started here, on free ports, and stopped at the end:
 * a redis-server (pub/sub, the baseline, and the same server for redis+streams), a 3-master Redis
 * Cluster (sharded pub/sub), a nats-server.
 *
 *   node --import tsx bench/hub-fanout.ts [N=200000] [SIZE=64]
 *
 * Publishing yields to the event loop every 500 messages, so the hubs' pending bounds are not what
 * is measured; a drop (counted by the publisher, or missing at the receiver) is reported as such.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createHub } from '../src/hubs/index.js';
import type { Hub } from '../src/hubs/types.js';
import { RedisProcess } from '../test/hub-support.js';
import { NatsProcess, RedisClusterProcess } from '../test/engine-support.js';

const TOPIC = 'bench';

async function receive(spec: string, count: number): Promise<void> {
  const hub = createHub(spec, { log: (m) => console.error(m) });
  let got = 0;
  let first = 0;
  let last = 0;
  let idle: NodeJS.Timeout | undefined;
  const finish = async (): Promise<void> => {
    clearTimeout(idle);
    console.log(`done ${got} ${last - first}`);
    await hub.close();
    process.exit(0);
  };
  hub.setListener(() => {
    if (got === 0) first = performance.now();
    last = performance.now();
    if (++got === count) void finish();
    else if (got % 1000 === 0) {
      clearTimeout(idle);
      idle = setTimeout(() => void finish(), 3000);
    }
  });
  hub.subscribe(TOPIC);
  await hub.ready();
  console.log('ready');
  idle = setTimeout(() => void finish(), 30000);
}

async function runOne(name: string, spec: string, count: number, size: number): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'receive', spec, String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const next = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
  if ((await next()) !== 'ready') throw new Error(`${name}: receiver did not start`);
  const hub: Hub = createHub(spec, { log: (m) => console.error(m) });
  await hub.ready();
  const payload = 'x'.repeat(size);
  const done = next();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    hub.publish(TOPIC, payload);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  const published = performance.now() - t0;
  const [, got, span] = (await done).split(' ').map(Number) as [number, number, number];
  const total = performance.now() - t0;
  const dropped = hub.dropped ?? 0;
  await hub.close();
  return `| ${name} | ${count} | ${got} | ${dropped} | ${Math.round(count / (published / 1000))} | ${Math.round(got / (total / 1000))} | ${Math.round(span)} |`;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'receive') return receive(process.argv[3]!, Number(process.argv[4]));
  const count = Number(process.argv[2] ?? 200_000);
  const size = Number(process.argv[3] ?? 64);
  const redis = await RedisProcess.start();
  const cluster = await RedisClusterProcess.start();
  const nats = await NatsProcess.start();
  const rows: string[] = [];
  try {
    rows.push(await runOne('redis:// (pub/sub)', redis.url, count, size));
    rows.push(await runOne('redis+streams:// (history, MAXLEN ~ 1000)', redis.url.replace('redis://', 'redis+streams://'), count, size));
    rows.push(await runOne('redis+cluster:// (sharded, 3 masters)', cluster.spec, count, size));
    rows.push(await runOne('nats://', nats.url, count, size));
  } finally {
    await Promise.all([redis.stop(), cluster.stop(), nats.stop()]);
  }
  console.log(`\n${count} messages of ${size} B, one topic, publisher and receiver in two processes (node ${process.version})\n`);
  console.log('| hub | sent | received | dropped | publish/s | delivered/s (first publish to last delivery) | receive span ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
