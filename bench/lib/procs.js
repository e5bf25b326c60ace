// Process plumbing for the harness: build the load generator, start a pinned server,
// run sockload, signal a server for its memory report. Every wait has a deadline.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const SERVER_CORE = 1;
export const LOAD_CORE = 0;

export function buildSockload(repoRoot, outDir) {
  const src = path.resolve(repoRoot, '../shared/tools/sockload.c');
  if (!existsSync(src)) {
    throw new Error(`load generator source not found at ${src}: the shared tools folder must sit beside the repo ` +
      '(../shared/tools/sockload.c). Without it the benchmark cannot run.');
  }
  mkdirSync(outDir, { recursive: true });
  const bin = path.join(outDir, 'sockload');
  const fresh = existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs;
  if (!fresh) execFileSync('gcc', ['-O2', '-Wall', '-o', bin, src], { stdio: 'inherit' });
  return bin;
}

/** Pin this harness to the load core so its own bookkeeping never lands on the server's core. */
export function pinSelf() {
  try { execFileSync('taskset', ['-pc', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' }); } catch { /* best effort */ }
}

/** Read lines from a child's stdout and resolve waiters on the first line matching a prefix. */
class LineReader {
  constructor(stream) {
    this.lines = [];
    this.waiters = [];
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (line.startsWith(w.prefix)) { this.waiters.splice(this.waiters.indexOf(w), 1); clearTimeout(w.timer); w.resolve(line); }
        }
      }
    });
  }

  next(prefix, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const w = { prefix, resolve, timer: setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs) };
      this.waiters.push(w);
    });
  }
}

/**
 * Bun for the --bun reference column: $BUN if set, else the binary npm installs into bench/out/bun from the
 * registry's @oven/bun-<platform>-<arch> package (pinned, so reruns compare the same Bun).
 */
export const BUN_VERSION = '1.4.5';
export function ensureBun(outDir) {
  if (process.env.BUN) return process.env.BUN;
  let baseline = '';
  try {
    // Bun's default x64 build needs AVX2; the "baseline" build runs without it.
    if (process.arch === 'x64' && !/\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) baseline = '-baseline';
  } catch { /* not Linux: take the default build */ }
  const pkg = `@oven/bun-${process.platform}-${process.arch}${baseline}`;
  const dir = path.join(outDir, 'bun');
  const bin = path.join(dir, 'node_modules', pkg, 'bin', 'bun');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', `${pkg}@${BUN_VERSION}`], { stdio: 'inherit' });
  }
  return bin;
}

/** Start a bench server pinned to the server core (under node, or under `runtime`, e.g. Bun) and wait for its port. */
export async function startServer(serverFile, { nodeArgs = [], env = {}, runtime = null } = {}) {
  const command = runtime === null ? [process.execPath, '--expose-gc', ...nodeArgs] : [runtime];
  const child = spawn('taskset', ['-c', String(SERVER_CORE), ...command, serverFile, '0'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { if (stderr.length < 8000) stderr += d; });
  const reader = new LineReader(child.stdout);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const early = exited.then(({ code, signal }) => { throw new Error(`server ${path.basename(serverFile)} exited early (code ${code}, signal ${signal}): ${stderr.trim().slice(-1500)}`); });
  const line = await Promise.race([reader.next('LISTEN ', 15000, `${path.basename(serverFile)} to listen`), early]);
  early.catch(() => {});
  return {
    pid: child.pid, // taskset execs the runtime, so this is the server process itself
    port: Number(line.split(' ')[1]),
    stderr: () => stderr,
    async memory() {
      const p = reader.next('MEM ', 10000, 'memory report');
      try {
        process.kill(child.pid, 'SIGUSR2');
      } catch {
        p.catch(() => {});
        throw new Error(`server ${path.basename(serverFile)} is not running: ${stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ').slice(0, 300)}`);
      }
      return JSON.parse((await p).slice(4));
    },
    rssBytes() {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : NaN;
      } catch { return NaN; }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

/** Run sockload to completion (bounded) and parse its one JSON line. */
export function runSockload(bin, args, { timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', String(LOAD_CORE), bin, ...args, '-j'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { if (err.length < 8000) err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (!line) { reject(new Error(`sockload ${args.join(' ')} failed (exit ${code}): ${err.trim().slice(-800)}`)); return; }
      const r = JSON.parse(line);
      r.exitCode = code;
      r.stderr = err.trim();
      resolve(r);
    });
  });
}

/** Start sockload in idle mode; resolves once it printed READY (or finished), with a handle to stop it. */
export async function startIdle(bin, args, { timeoutMs }) {
  const child = spawn('taskset', ['-c', String(LOAD_CORE), bin, ...args, '-I', '-j'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { if (err.length < 8000) err += d; });
  const reader = new LineReader(child.stdout);
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const readyOrExit = await Promise.race([
    reader.next('READY ', timeoutMs, 'idle connections'),
    exited.then((code) => `EXIT ${code}`),
  ]);
  return {
    held: readyOrExit.startsWith('READY ') ? Number(readyOrExit.split(' ')[1]) : 0,
    stderr: () => err.trim(),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      clearTimeout(kill);
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Start a Node load script pinned to the load core; resolves after its READY line, with a handle to await its result line. */
export async function startNodeLoad(script, args, { timeoutMs }) {
  const child = spawn('taskset', ['-c', String(LOAD_CORE), process.execPath, script, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { if (err.length < 8000) err += d; });
  const reader = new LineReader(child.stdout);
  const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise((resolve) => child.on('exit', (code) => { clearTimeout(kill); resolve(code); }));
  const result = reader.next('{', timeoutMs, 'load result');
  result.catch(() => {});
  const ready = await Promise.race([reader.next('READY ', timeoutMs, 'load clients'), exited.then((c) => { throw new Error(`load exited ${c}: ${err.slice(-300)}`); })]);
  return { opened: Number(ready.split(' ')[1]), result: async () => { const line = await result; await exited; return JSON.parse(line); } };
}
