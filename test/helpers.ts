/** Test helpers: a raw TCP peer (like the seeds' PHP clients), waiting with deadlines, TLS certificates. */
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A plain socket that records every byte it receives. */
export class RawPeer {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  ended = false;
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c) => { this.chunks.push(c); this.wake(); });
    socket.on('end', () => { this.ended = true; this.wake(); });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host });
      s.once('connect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  static connectPath(path: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path });
      s.once('connect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get text(): string {
    return this.received.toString('utf8');
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until `pred(text)` holds, or throws after `ms`. */
  async until(pred: (text: string) => boolean, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!pred(this.text)) {
      if (this.closed) throw new Error(`peer closed before condition; got ${JSON.stringify(this.text)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.text;
  }

  /** Waits for the server to close the connection; returns everything received. */
  async untilClosed(ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!this.closed && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`server did not close; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.text;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }
}

export function portOf(url: string): number {
  const m = /:(\d+)(?:\/|$)/.exec(url);
  if (!m) throw new Error(`no port in ${url}`);
  return Number(m[1]);
}

/** Waits until `pred` gives a value (not false/undefined) and returns it, or throws after `ms`. */
export async function until<T>(pred: () => T | false | undefined, what: string, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function waitFor(pred: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A self-signed certificate for localhost / 127.0.0.1 / ::1, made with openssl for this test run. */
export function makeCertificate(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
}

export const quiet = (): void => {};

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Waits until something listens on the port, reading /proc/net/tcp and tcp6 (no probe
 * connection, which would use up a one-client server).
 */
export async function listening(port: number, ms = 8000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const rows = readFileSync(f, 'utf8').split('\n').slice(1);
      if (rows.some((r) => { const c = r.trim().split(/\s+/); return c[1]?.endsWith(':' + hex) && c[3] === '0A'; })) return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}
