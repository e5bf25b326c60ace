/**
 * --exec CMD and --sh-c CMD: a program per connection, its stdin and stdout on the connection
 * (inetd, `websocat exec:`, `nc -e`). Messages become lines on its stdin (text) or bytes (binary,
 * tcp://); its stdout becomes messages as readMessages cuts them. The connection closes when the
 * program exits; when the connection closes first, the program gets EOF on stdin, then SIGTERM
 * if it is still running a moment later, then SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Connection } from '../index.js';
import { drained, readMessages, sendPaced, type InputMode } from './messages.js';
import { UsageError, describeError } from './usage.js';

/** After the connection closes: EOF at once, SIGTERM after this long, SIGKILL after as long again five times. */
export const EXEC_TERM_GRACE = 1000;

/**
 * Splits a command line into argv without a shell: words separated by white space, '...' taken
 * literally, "..." and \ escapes as sh reads them. Shell syntax (pipes, redirections, $variables)
 * is refused with a pointer to --sh-c, rather than passed on as arguments that look like it.
 */
export function splitCommand(text: string): string[] {
  const argv: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new UsageError(`--exec: unclosed ' in ${JSON.stringify(text)}`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      let out = '';
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) j++;
        else if (text[j] === '$' || text[j] === '`') throw shellSyntax(text, text[j]!);
        out += text[j];
      }
      if (j >= text.length) throw new UsageError(`--exec: unclosed " in ${JSON.stringify(text)}`);
      word = (word ?? '') + out;
      i = j;
    } else if (ch === '\\') {
      if (i + 1 < text.length) word = (word ?? '') + text[++i];
    } else if (/\s/.test(ch)) {
      if (word !== null) argv.push(word);
      word = null;
    } else if ('|&;<>()$`'.includes(ch)) {
      throw shellSyntax(text, ch);
    } else word = (word ?? '') + ch;
  }
  if (word !== null) argv.push(word);
  if (argv.length === 0) throw new UsageError('--exec: which program? e.g. --exec \'rev\'');
  return argv;
}

function shellSyntax(text: string, ch: string): UsageError {
  return new UsageError(`--exec runs a program without a shell, and ${JSON.stringify(text)} has shell syntax (${ch}); quote it, or use --sh-c ${JSON.stringify(text)}`);
}

/** The program must exist before we listen: a typo is bad usage, not a failure per connection. */
export function checkProgram(program: string): void {
  const candidates = program.includes('/') ? [program] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, program));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return;
    } catch {
      // not here
    }
  }
  throw new UsageError(`--exec: no program "${program}"${program.includes('/') ? '' : ' on PATH'} (or it is not executable)`);
}

/** Programs still running, so that shutdown can wait for them (and end those that linger). */
const running = new Set<ChildProcess>();

/** Runs `argv` for this connection. `log` says what went wrong (a program that cannot start). */
export function execFor(conn: Connection, argv: readonly string[], mode: InputMode, maxLine: number, log: (line: string) => void): void {
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, SWITCHBOARD_PEER: conn.remote, SWITCHBOARD_URL: conn.address.url },
  });
  running.add(child);
  let failed = false;
  child.on('error', (err) => {
    failed = true;
    running.delete(child);
    log(`${argv[0]}: cannot run it: ${describeError(err)}`);
    conn.close(1011, 'the program could not start');
  });
  child.stdin!.on('error', () => {}); // EPIPE: the program exited without reading all of it
  child.on('close', () => {
    running.delete(child);
    conn.close();
  });

  // Connection -> program, at the program's pace.
  void (async () => {
    for await (const m of conn) {
      if (child.stdin!.destroyed || failed) break;
      if (!child.stdin!.write(typeof m === 'string' ? `${m}\n` : m)) {
        conn.pause(); // the program reads slower than the peer sends: the peer waits
        await drained(child.stdin!);
        conn.resume();
      }
    }
    child.stdin!.end();
    if (child.exitCode === null && child.signalCode === null) stopLater(child);
  })();

  // Program -> connection, at the connection's pace (its stdout is read only as fast as the peer takes it).
  void (async () => {
    try {
      for await (const m of readMessages(child.stdout!, mode, maxLine)) if (!await sendPaced(conn, m)) break;
    } catch {
      // stdout failed (the program was killed): the 'close' handler closes the connection
    }
  })();
}

/** SIGTERM after the grace period, SIGKILL if even that is ignored. */
function stopLater(child: ChildProcess): void {
  const term = setTimeout(() => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const kill = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }, 5 * EXEC_TERM_GRACE);
    child.once('exit', () => clearTimeout(kill));
  }, EXEC_TERM_GRACE);
  child.once('exit', () => clearTimeout(term));
}

/** At shutdown: the programs still running get SIGTERM, and we wait for them (SIGKILL after 5 s). */
export async function stopPrograms(): Promise<void> {
  const waits = [...running].map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5 * EXEC_TERM_GRACE).unref();
  }));
  await Promise.all(waits);
}
