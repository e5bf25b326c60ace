/**
 * What presence costs the chat: N users join server A and take nicknames, with the memory hub
 * (one process) and with two servers on a private redis-server; then /who from a user on
 * server B (the whole room across both), and what Redis does while the room sits idle (the
 * heartbeat). Run by hand: node --import tsx bench/presence.ts [N]
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { chatServer } from '../src/apps/chat.js';
import { createHub } from '../src/hubs/index.js';
import type { Server } from '../src/core/server.js';

const N = Number(process.argv[2] ?? 2000);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A line client: send(), and wait for a line matching a pattern. */
class Client {
  private text = '';
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.text += d;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }
  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }
  async until(re: RegExp): Promise<string> {
    for (;;) {
      const m = re.exec(this.text);
      if (m) {
        this.text = this.text.slice(m.index + m[0].length);
        return m[0];
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  send(line: string): void {
    this.socket.write(line + '\n');
  }
}

async function joinAll(port: number): Promise<{ clients: Client[]; ms: number }> {
  const start = performance.now();
  const clients: Client[] = [];
  for (let i = 0; i < N; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, N - i) }, () => Client.connect(port)));
    await Promise.all(batch.map(async (c, j) => {
      await c.until(/\* you are guest\S+/);
      c.send(`/nick u${i + j}`);
      await c.until(/\* you are now u\d+/);
    }));
    clients.push(...batch);
  }
  return { clients, ms: performance.now() - start };
}

async function whoTimes(c: Client, times: number): Promise<{ p50: number; line: string }> {
  const ms: number[] = [];
  let line = '';
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    c.send('/who');
    line = await c.until(/\* online here [^\n]*/);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(ms.length / 2)]!, line };
}

function redisInfo(port: number, field: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('INFO\r\n'));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      const m = new RegExp(`${field}:(\\d+)`).exec(text);
      if (m && text.includes('\r\n\r\n# Keyspace')) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', reject);
  });
}

/** Redis's CPU seconds (user + sys) so far. */
function redisCpu(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('INFO cpu\r\n'));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      const sys = /used_cpu_sys:([\d.]+)/.exec(text);
      const user = /used_cpu_user:([\d.]+)/.exec(text);
      if (sys && user) {
        s.destroy();
        resolve(Number(sys[1]) + Number(user[1]));
      }
    });
    s.on('error', reject);
  });
}

const quiet = { log: () => {}, noticeInterval: 1000, rateLimit: false as const };

// Memory hub: one process.
{
  const server = await chatServer({ listen: 'text://127.0.0.1:0', ...quiet });
  const port = Number(/:(\d+)$/.exec(server.addresses[0]!)![1]);
  const { clients, ms } = await joinAll(port);
  const who = await whoTimes(clients[0]!, 50);
  console.log(`memory hub: ${N} joins + /nick in ${ms.toFixed(0)} ms; /who p50 ${who.p50.toFixed(2)} ms (${who.line.slice(0, 40)}...)`);
  for (const c of clients) c.socket.destroy();
  await server.close();
}

// Two servers on one Redis: the users on A, /who from B.
{
  const redisPort = await freePort();
  const redis = spawn('/usr/bin/redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100; i++) {
      if (await new Promise<boolean>((r) => { const s = net.connect(redisPort, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); })) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const url = `redis://127.0.0.1:${redisPort}`;
    const servers: Server[] = [];
    for (let i = 0; i < 2; i++) servers.push(await chatServer({ listen: 'text://127.0.0.1:0', hub: createHub(url), ...quiet }));
    const [aPort, bPort] = servers.map((s) => Number(/:(\d+)$/.exec(s.addresses[0]!)![1]));
    const before = await redisInfo(redisPort, 'used_memory');
    const { clients, ms } = await joinAll(aPort!);
    const watcher = await Client.connect(bPort!);
    const who = await whoTimes(watcher, 50);
    const after = await redisInfo(redisPort, 'used_memory');
    const c0 = await redisInfo(redisPort, 'total_commands_processed');
    const cpu0 = await redisCpu(redisPort);
    await new Promise((r) => setTimeout(r, 10_000));
    const c1 = await redisInfo(redisPort, 'total_commands_processed');
    const cpu1 = await redisCpu(redisPort);
    console.log(`redis hub: ${N} joins + /nick in ${ms.toFixed(0)} ms; /who from the other server p50 ${who.p50.toFixed(2)} ms (${who.line.slice(0, 40)}...)`);
    console.log(`redis hub: presence and claims of ${N} users take ${((after - before) / 1024).toFixed(0)} KiB of Redis memory ` +
      `(${((after - before) / N).toFixed(0)} B per user); idle, Redis runs ${((c1 - c0) / 10).toFixed(1)} commands/s (heartbeats of 2 servers, default 5 s interval, commands inside scripts counted) using ${((cpu1 - cpu0) / 10 * 100).toFixed(2)}% of a core`);
    for (const c of clients) c.socket.destroy();
    watcher.socket.destroy();
    for (const s of servers) await s.close();
  } finally {
    redis.kill('SIGKILL');
  }
}
process.exit(0);
