/**
 * Real engines for the hub tests, each started by the test on free ports and killed by it:
 * a nats-server, and a 3-node Redis Cluster (masters only, made with `redis-cli --cluster create`).
 * Either can have a process killed (SIGKILL) and started again on the same port mid-test.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, REDIS_SERVER, Restartable, waitFor } from './hub-support.js';

const run = promisify(execFile);

export const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';
export const REDIS_CLI = process.env.REDIS_CLI ?? '/usr/bin/redis-cli';

/** A private nats-server on loopback. */
export class NatsProcess extends Restartable {
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<NatsProcess> {
    const port = await freePort();
    const n = new NatsProcess(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], port);
    await n.start();
    return n;
  }
}

/** Three masters on loopback, 16384 slots split between them, nothing written to disk but nodes.conf. */
export class RedisClusterProcess {
  private constructor(readonly nodes: Restartable[], private readonly dir: string) {}

  /** The hub spec for this cluster: every node as a seed. */
  get spec(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  get ports(): number[] {
    return this.nodes.map((n) => n.port);
  }

  static async start(): Promise<RedisClusterProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'sb-cluster-'));
    const nodes: Restartable[] = [];
    const cluster = new RedisClusterProcess(nodes, dir);
    try {
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        // The bus port is chosen too: port + 10000 (Redis's default) may be taken or past 65535.
        const busPort = await freePort();
        const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no',
          '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
          '--cluster-port', String(busPort), '--cluster-node-timeout', '1000'];
        const node = new Restartable(REDIS_SERVER, args, port);
        nodes.push(node);
        await node.start();
      }
      await run(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
      await cluster.waitHealthy();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** Every node says cluster_state:ok and knows three masters. */
  async waitHealthy(timeout = 15000): Promise<void> {
    await waitFor(async () => {
      for (const port of this.ports) {
        const info = await run(REDIS_CLI, ['-p', String(port), 'cluster', 'info']).then((r) => r.stdout, () => '');
        if (!/cluster_state:ok/.test(info) || !/cluster_size:3/.test(info)) return false;
      }
      return true;
    }, 'the redis cluster to be healthy', timeout, 100);
  }

  /** The port of the master that serves `key`'s slot. */
  async portOf(key: string): Promise<number> {
    const slot = Number((await run(REDIS_CLI, ['-p', String(this.ports[0]), 'cluster', 'keyslot', key])).stdout.trim());
    const nodes = (await run(REDIS_CLI, ['-p', String(this.ports[0]), 'cluster', 'nodes'])).stdout;
    for (const line of nodes.split('\n')) {
      const f = line.split(' ');
      if (!f[2]?.includes('master')) continue;
      const port = Number(/:(\d+)@/.exec(f[1] ?? '')?.[1]);
      for (const range of f.slice(8)) {
        const [lo, hi] = range.split('-').map(Number);
        if (slot >= lo! && slot <= (hi ?? lo)!) return port;
      }
    }
    throw new Error(`no master serves slot ${slot}`);
  }

  node(port: number): Restartable {
    const n = this.nodes.find((x) => x.port === port);
    if (n === undefined) throw new Error(`no node on ${port}`);
    return n;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `redis-cli` with arguments, for plain commands from "another program". */
export async function redisCli(...args: string[]): Promise<string> {
  return (await run(REDIS_CLI, args)).stdout;
}

/** A plain NATS publish over a raw TCP socket (no client library, no headers): CONNECT, PUB, PING/PONG. */
export function rawNatsPublish(port: number, subject: string, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let seen = '';
    s.on('error', reject);
    s.on('data', (d) => {
      seen += d.toString('latin1');
      if (seen.startsWith('INFO') && !seen.includes('PING\r\n') && seen.includes('\r\n') && !s.writableEnded) {
        s.write(Buffer.concat([
          Buffer.from(`CONNECT {"verbose":false,"pedantic":false}\r\nPUB ${subject} ${payload.length}\r\n`),
          payload,
          Buffer.from('\r\nPING\r\n'),
        ]));
        seen += 'PING\r\n'; // written once
      }
      if (seen.includes('PONG')) {
        s.end();
        resolve();
      }
      if (seen.includes('-ERR')) {
        s.destroy();
        reject(new Error(`nats-server said: ${seen}`));
      }
    });
  });
}
