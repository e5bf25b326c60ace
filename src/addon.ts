/**
 * switchboard's native addon (native/tcp.c and the XOR helper native/mask.c, built at install), or
 * null where it was not built or SWITCHBOARD_NATIVE=0 is set. Everything that uses it has a
 * JavaScript path for null: the TCP transport falls back to node:net (transport/native.ts), and
 * WebSocket masking (offered by transport/mask.ts) to the codec's own loop (codec/websocket/mask.ts). SWITCHBOARD_NATIVE_PATH names another build to load instead (the
 * sanitizer build, build/sanitize/switchboard_tcp.node, in `npm run test:sanitize`); a path that
 * does not load is an error there, not a silent fallback.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export interface Addon {
  // The TCP transport (see transport/native.ts).
  /** The record layout and event codes native/tcp.c uses (transport/native.ts checks its copy). */
  readonly layout: Readonly<Record<string, number>>;
  init(dispatch: (n: number) => void, slab: Buffer, events: Int32Array): void;
  listen(ip: string, port: number, backlog: number, ipv6Only: boolean, reusePort: boolean): [number, number] | number;
  unlisten(id: number): void;
  write(slot: number, bytes: Buffer): number;
  writev(slot: number, chunks: Buffer[]): number;
  end(slot: number): void;
  close(slot: number): void;
  pause(slot: number): void;
  resume(slot: number): void;
  keepalive(slot: number, enable: boolean, delaySeconds: number): void;
  address(slot: number, peer: boolean): [string, number, string] | undefined;
  /** XORs buf[start, end) with a 32-bit mask word (its bytes in memory order). */
  mask(buf: Uint8Array, start: number, end: number, word: number): void;
}

function load(): Addon | null {
  if (process.env.SWITCHBOARD_NATIVE === '0') return null;
  const explicit = process.env.SWITCHBOARD_NATIVE_PATH;
  if (explicit) return createRequire(import.meta.url)(resolve(explicit)) as Addon;
  // src/ under tsx, dist/src/ once built: build/ is at the package root.
  for (const rel of ['../build/switchboard_tcp.node', '../../build/switchboard_tcp.node']) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(file)) continue;
    try {
      return createRequire(import.meta.url)(file) as Addon;
    } catch (err) {
      process.emitWarning(`switchboard: native addon could not be loaded (${(err as Error).message}); using node:net and JavaScript`);
      return null;
    }
  }
  return null;
}

export const addon = load();
