/** The command line as a subprocess, for the cli-*.test.ts files: one-shot runs and long-running commands. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

export interface RunResult { code: number | null; stdout: string; stderr: string; raw: Buffer }

/** Runs the CLI to the end with `input` on stdin (killed after `ms`). */
export function run(args: string[], input?: string | Buffer, ms = 10000, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const killer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => {
      clearTimeout(killer);
      const raw = Buffer.concat(out);
      resolve({ code, stdout: raw.toString('utf8'), stderr, raw });
    });
  });
}

/** A long-running command (listen, bridge, connect): its output so far, waiting for what it prints, and a stop. */
export class Cli {
  readonly child: ChildProcess;
  private out: Buffer[] = [];
  /** Bytes on stdout so far (cheap to poll, unlike stdout). */
  stdoutBytes = 0;
  private err = '';
  private waiters: (() => void)[] = [];

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [...CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout!.on('data', (d: Buffer) => { this.out.push(d); this.stdoutBytes += d.length; this.wake(); });
    this.child.stderr!.on('data', (d) => { this.err += d; this.wake(); });
    this.child.stdin!.on('error', () => {});
    this.child.on('exit', () => this.wake());
  }

  /** Starts a listening command and resolves with it and the URL it bound. */
  static async listening(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ cli: Cli; url: string }> {
    const cli = new Cli(args, env);
    const m = await cli.untilStderr(/listening on (\S+)/);
    return { cli, url: m[1]! };
  }

  get stdout(): string {
    return Buffer.concat(this.out).toString('utf8');
  }
  get stderr(): string {
    return this.err;
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }
  endInput(): void {
    this.child.stdin!.end();
  }

  untilStdout(re: RegExp, ms = 8000): Promise<RegExpExecArray> {
    return this.until(() => re.exec(this.stdout), ms, `stdout ${re}`);
  }
  untilStderr(re: RegExp, ms = 8000): Promise<RegExpExecArray> {
    return this.until(() => re.exec(this.err), ms, `stderr ${re}`);
  }
  /** Waits until `pred()` gives something, or throws (with the output) after `ms`. */
  async until<T>(pred: () => T | null | undefined | false, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0 || (this.child.exitCode !== null && !pred())) {
        throw new Error(`waiting for ${what}: ${this.child.exitCode !== null ? `exited ${this.child.exitCode}` : 'timed out'}\nstdout: ${this.stdout}\nstderr: ${this.err}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** SIGTERM, and the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 8000);
    const [code] = await once(this.child, 'exit') as [number | null];
    clearTimeout(killer);
    return code;
  }

  async exited(ms = 8000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const killer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const [code] = await once(this.child, 'exit') as [number | null];
    clearTimeout(killer);
    return code;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** A `serve chat` child process, stdout and stderr read together (for the multi-process chat tests). */
export interface ChatProc { child: ChildProcess; output: () => string }

export function serveChat(args: string[]): ChatProc {
  const child = spawn(process.execPath, [...CLI, 'serve', 'chat', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return { child, output: () => out };
}

/** SIGTERM and wait for the exit; a child already gone (exited, or killed by the test) is left as it is. */
export async function stop(p: ChatProc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await once(p.child, 'exit');
}
