/**
 * What every subcommand shares: the line between bad usage (exit 2, nothing was attempted) and a
 * failure at run time (exit 1), option parsing with --help, and errors put into words.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, getSystemErrorMap, type ParseArgsConfig } from 'node:util';
import { parseAddress, type Address } from '../address.js';

/** The command line itself is wrong: an unknown option, a missing or malformed argument. Exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The option every subcommand takes: --help / -h prints its usage and exits 0. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** node:util's parseArgs, with its complaints turned into usage errors a person can act on. */
export function parseCommandLine<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const option = /'([^']+)'/.exec(e.message)?.[1] ?? '';
      throw new UsageError(`unknown option ${option} (switchboard ${command} --help lists the options)`);
    }
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) throw new UsageError(e.message);
    throw err;
  }
}

/** Positionals beyond `max` are a mistake (a message with spaces that lost its quotes, ...), not something to ignore. */
export function noExtraArguments(positionals: readonly string[], max: number): void {
  if (positionals.length > max) {
    throw new UsageError(`unexpected argument "${positionals[max]}" (quote a message that has spaces)`);
  }
}

/** A URL from the command line: malformed or of an unknown scheme is bad usage. */
export function addressArgument(url: string): string {
  try {
    parseAddress(url);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return url;
}

/** A URL from the command line, parsed: malformed or of an unknown scheme is bad usage. */
export function urlArgument(url: string): Address {
  addressArgument(url);
  return parseAddress(url);
}

/** Reads a file named by an option (--ca, --tls-cert); one that cannot be read fails at run time. */
export function readOptionFile(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${option}: cannot read ${path}: ${describeError(err)}`);
  }
}

/**
 * An error in words: Node's system errors by their description and code ("connection refused
 * (ECONNREFUSED)"), everything else by its message.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as NodeJS.ErrnoException;
  if (e.name === 'SwitchboardError') {
    // connect() wraps Node's error with its message unchanged: say what the cause means.
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message === e.message ? describeError(cause) : e.message;
  }
  if (e.syscall === 'getaddrinfo') {
    const host = (e as { hostname?: string }).hostname;
    return `cannot resolve host${host ? ` "${host}"` : ''} (${e.code ?? 'ENOTFOUND'})`;
  }
  if (typeof e.errno !== 'number') return e.message;
  const text = getSystemErrorMap().get(e.errno)?.[1];
  if (!text) return e.message;
  const hint = e.code !== undefined ? HINTS[e.code] : undefined;
  return `${text} (${e.code ?? e.errno})${hint ? `: ${hint}` : ''}`;
}

/** What the usual failures mean for the person at the keyboard. */
const HINTS: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there',
  EADDRINUSE: 'another program listens there already',
  ETIMEDOUT: 'the host did not answer',
  EHOSTUNREACH: 'no route to that host',
  ENETUNREACH: 'no route to that network',
};
