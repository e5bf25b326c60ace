/**
 * Helpers for the hub tests: a private redis-server on a free port (so a test can kill and
 * restart it), a free-port finder, a polling wait with a deadline, and a line reader for the
 * output of child processes.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

import { freePort } from './helpers.js';

export { freePort };

/** Polls `cond` every `interval` ms until it holds; throws (with `what`) after `timeout` ms. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeout = 5000, interval = 10): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** One child process (a server on `port`) that can be killed hard and started again with the same arguments. */
export class Restartable {
  private child: ChildProcess | null = null;
  constructor(private readonly command: string, private readonly args: string[], readonly port: number) {}

  async start(): Promise<void> {
    const child = spawn(this.command, this.args, { stdio: 'ignore' });
    this.child = child;
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    await waitFor(async () => exited || (await canConnect(this.port)), `${this.command} on port ${this.port}`, 8000, 20);
    if (exited) throw new Error(`${this.command} on port ${this.port} exited at start`);
  }

  /** Freeze it (SIGSTOP): connections stay open, nothing is answered. A test must resume() or stop() it in a finally. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Let a paused server go on (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kill it hard (SIGKILL: what a crash looks like to clients) and wait until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

/** A throwaway redis-server: no persistence, loopback only, killed by stop() (and startable again on its port). */
export class RedisProcess extends Restartable {
  constructor(port: number) {
    super(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<RedisProcess> {
    const r = new RedisProcess(port ?? (await freePort()));
    await r.start();
    return r;
  }
}

/** Collects a child's stdout as lines and lets a test wait for one that matches. */
export class LineReader {
  readonly lines: string[] = [];
  private rest = '';
  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (this.rest + chunk).split('\n');
      this.rest = parts.pop() ?? '';
      this.lines.push(...parts);
    });
  }

  async next(pattern: RegExp, what: string, timeout = 8000, from = 0): Promise<RegExpMatchArray> {
    let found: RegExpMatchArray | null = null;
    await waitFor(() => {
      for (let i = from; i < this.lines.length && found === null; i++) found = this.lines[i].match(pattern);
      return found !== null;
    }, what, timeout);
    return found as unknown as RegExpMatchArray;
  }
}

/** Node with tsx, so a test can run a TypeScript fixture as a real second process. */
export function spawnTs(script: string, env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function exitOf(child: ChildProcess, timeout = 8000): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${child.pid} did not exit within ${timeout} ms`));
    }, timeout);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** A digest of a message sequence that sees order, text vs binary, and every byte. */
export function digestMessages(messages: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const m of messages) {
    const bytes = typeof m === 'string' ? Buffer.from(m, 'utf8') : m;
    const head = Buffer.alloc(5);
    head[0] = typeof m === 'string' ? 0x73 : 0x62;
    head.writeUInt32BE(bytes.length, 1);
    h.update(head).update(bytes);
  }
  return h.digest('hex');
}

/** The messages the cluster fixture's worker A publishes: text and binary, every byte value. */
export function clusterTestMessages(count: number): Array<string | Buffer> {
  return Array.from({ length: count }, (_, i) =>
    i % 2 === 0 ? `m${i} ünï` : Buffer.concat([Buffer.from([i & 0xff]), Buffer.from(Array.from({ length: 256 }, (_, b) => b))]),
  );
}
