/** Port probing (seed 004: "by this we can build a port scanner"): which TCP ports accept a connection. */
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { transportError } from '../errors.js';

export interface ProbeResult {
  port: number;
  open: boolean;
  /** Why a closed port is closed: ECONNREFUSED, ETIMEDOUT, ... */
  error?: string;
}

export interface ProbeOptions {
  /** Connections attempted at once (default 100). */
  concurrency?: number;
  /** Milliseconds before a silent port counts as closed (default 1000). */
  timeout?: number;
}

/**
 * Tries each port of `host` (a name is looked up once, first: a host that does not resolve
 * rejects with a SwitchboardError whose code is the resolver's, ENOTFOUND or EAI_AGAIN, instead of
 * reporting every port closed).
 */
export async function probePorts(host: string, ports: readonly number[], options: ProbeOptions = {}): Promise<ProbeResult[]> {
  const name = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  let ip = name;
  if (net.isIP(name) === 0) {
    try {
      ip = (await lookup(name)).address;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
      throw transportError(err, 'ERR_CONNECT', `cannot resolve host "${name}" (${code})`);
    }
  }
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 100, 1000));
  const timeout = options.timeout ?? 1000;
  const results: ProbeResult[] = new Array(ports.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ports.length) {
      const i = next++;
      results[i] = await probeOne(ip, ports[i]!, timeout);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ports.length) }, worker));
  return results;
}

function probeOne(host: string, port: number, timeout: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (open: boolean, error?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error ? { port, open, error } : { port, open });
    };
    const timer = setTimeout(() => finish(false, 'ETIMEDOUT'), timeout);
    socket.once('connect', () => finish(true));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  });
}
