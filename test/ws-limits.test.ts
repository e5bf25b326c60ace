/**
 * WebSocket limits over real sockets: memory is taken for bytes that arrived, not for lengths
 * that were announced; a slow request head hears 408; a close that times out says so; a
 * message that never finishes is closed by messageTimeout; HTTP heads are parsed strictly where
 * the RFCs require it; a refusal's status and reason reach our client.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { WebSocket } from 'ws';
import { HandshakeRefusedError, Server, SwitchboardError, connect, type ServerOptions } from '../src/index.js';
import type { CloseInfo } from '../src/codec/types.js';
import { RawPeer, portOf, waitFor } from './helpers.js';
import { frame, parseFrames } from './ws-helpers.js';

const T = { timeout: 30_000 };
const MiB = 1024 * 1024;

const UPGRADE = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

async function wsServer(options: Partial<ServerOptions> = {}): Promise<{ server: Server; port: number; closes: CloseInfo[] }> {
  const server = new Server({ listen: 'ws://127.0.0.1:0', ...options });
  const closes: CloseInfo[] = [];
  server.on('connection', (c) => {
    c.on('message', (m) => c.send(m));
    c.on('close', (info) => closes.push(info));
  });
  await server.listen();
  return { server, port: portOf(server.addresses[0]!), closes };
}

/** A raw peer past the opening handshake. */
async function upgraded(port: number): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  p.write(UPGRADE);
  await p.until((t) => t.includes('\r\n\r\n'));
  assert.match(p.text, /^HTTP\/1\.1 101/);
  return p;
}

/** Waits until everything written on `peers` reached the kernel, then one echo round trip on a fresh connection. */
async function settled(port: number, peers: RawPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => new Promise<void>((resolve) => p.socket.write('', () => resolve()))));
  const probe = await upgraded(port);
  probe.write(frame({ opcode: 1, payload: 'sync' }));
  await probe.until((t) => t.includes('sync'));
  probe.destroy();
}

/** The payload of the close frame a server sent after its 101. */
function closeFrameOf(text: Buffer): { code: number; reason: string } | undefined {
  const at = text.indexOf('\r\n\r\n');
  const frames = parseFrames(text.subarray(at + 4));
  const f = frames.find((x) => x.opcode === 8);
  return f && { code: f.payload.readUInt16BE(0), reason: f.payload.toString('utf8', 2) };
}

describe('ws limits: memory follows bytes received, not lengths announced', () => {
  it('300 connections announcing 60 MiB frames and sending 1 byte hold < 50 MB', T, async () => {
    const { server, port } = await wsServer({ maxMessageSize: 64 * MiB, heartbeatInterval: 0 });
    const peers: RawPeer[] = [];
    try {
      const before = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 300; i += 50) {
        peers.push(...await Promise.all(Array.from({ length: 50 }, () => upgraded(port))));
      }
      // 14 header bytes announcing 60 MiB, and one payload byte: 15 bytes per connection.
      const announce = frame({ opcode: 2, payload: Buffer.from([1]), fakeLength: BigInt(60 * MiB), lenForm: 64 });
      for (const p of peers) p.write(announce);
      await settled(port, peers);
      const held = process.memoryUsage().arrayBuffers - before;
      assert.ok(held < 50 * 1e6, `array buffers grew by ${(held / 1e6).toFixed(1)} MB`);
      await waitFor(() => server.connections.size === 300, 3000, 'the probe to close');
      // The frames still complete: one peer sends the rest of a smaller announced frame.
      const mask = Buffer.alloc(4);
      const rest = Buffer.alloc(3 * MiB, 7);
      const big = Buffer.concat([Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x30, 0, 0]), mask, rest]);
      const q = await upgraded(port);
      q.write(big);
      await q.until(() => q.received.length >= 3 * MiB + 10, 10_000);
      console.log(`# 300 x 60 MiB announced: array buffers +${(held / 1e6).toFixed(1)} MB`);
    } finally {
      for (const p of peers) p.destroy();
      await server.close();
    }
  });
});

describe('ws limits: the HTTP head is read as RFC 9112 and RFC 6455 require', () => {
  /** Sends a head; returns the status line's code once the answer's head arrived. */
  async function statusOf(port: number, head: string): Promise<number> {
    const p = await RawPeer.connect(port);
    try {
      p.write(Buffer.from(head, 'latin1'));
      const text = await p.until((t) => t.includes('\r\n\r\n'), 5000);
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    } finally {
      p.destroy();
    }
  }
  const lines = (...l: string[]): string => l.join('\r\n') + '\r\n\r\n';
  const base = ['GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];

  it('a head with LF-only line ends is answered (RFC 9112 §2.2): 101 for an upgrade, 404 for a GET', T, async () => {
    const { server, port } = await wsServer({ handshakeTimeout: 5000 });
    try {
      assert.equal(await statusOf(port, base.join('\n') + '\n\n'), 101);
      assert.equal(await statusOf(port, 'GET /page HTTP/1.1\nHost: x\n\n'), 404);
      // LF and CRLF mixed, and frames right behind an LF-only head.
      const p = await RawPeer.connect(port);
      p.write(Buffer.concat([Buffer.from(base.join('\r\n') + '\n\n'), frame({ opcode: 1, payload: 'after LF' })]));
      await p.until((t) => t.includes('after LF'));
      p.destroy();
    } finally {
      await server.close();
    }
  });

  it('NUL, a bare CR or another control character in a header, a body on an upgrade, repeated single headers: 400', T, async () => {
    const { server, port } = await wsServer({ handshakeTimeout: 5000 });
    try {
      const cases: Array<[string, string[]]> = [
        ['NUL in a value', [...base, 'X-Name: a\0b']],
        ['bare CR in a value', [...base, 'X-Name: a\rb']],
        ['ESC in a value', [...base, 'X-Name: a\x1bb']],
        ['Content-Length and Transfer-Encoding', [...base, 'Content-Length: 0', 'Transfer-Encoding: chunked']],
        ['a Content-Length body on the upgrade', [...base, 'Content-Length: 5']],
        ['Transfer-Encoding on the upgrade', [...base, 'Transfer-Encoding: chunked']],
        ['a malformed Content-Length', [...base, 'Content-Length: 1e3']],
        ['two Host lines', [...base, 'Host: other.example']],
        ['no Host in HTTP/1.1', base.filter((l) => !l.startsWith('Host'))],
        ['a malformed Host', [...base.filter((l) => !l.startsWith('Host')), 'Host: a b/c']],
        ['two Sec-WebSocket-Key lines', [...base, 'Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==']],
        ['two Sec-WebSocket-Version lines', [...base, 'Sec-WebSocket-Version: 13']],
        ['obs-fold', [...base, 'X-Name: a', ' folded']],
        ['white space before the colon', [...base, 'X-Name : a']],
        ['a CTL in the request target', ['GET /a\x01b HTTP/1.1', ...base.slice(1)]],
      ];
      for (const [what, head] of cases) assert.equal(await statusOf(port, lines(...head)), 400, what);
      // Plain HTTP is held to the same head rules.
      assert.equal(await statusOf(port, lines('GET /x HTTP/1.1', 'Host: a', 'Host: b')), 400);
      assert.equal(await statusOf(port, lines('POST /x HTTP/1.1', 'Host: a', 'Content-Length: 1', 'Transfer-Encoding: chunked')), 400);
      // HTTP/1.0 may leave Host out; tabs around a value are not part of it.
      assert.equal(await statusOf(port, lines('GET /x HTTP/1.0')), 404);
      assert.equal(await statusOf(port, lines(...base, 'Sec-WebSocket-Protocol:\tchat \t')), 101);
      assert.equal(await statusOf(port, lines(...base, 'Content-Length: 0')), 101);
    } finally {
      await server.close();
    }
  });
});

describe('ws limits: timeouts say what happened', () => {
  it('a request head that never finishes gets 408 Request Timeout before the close', T, async () => {
    const { server, port } = await wsServer({ handshakeTimeout: 300 });
    try {
      const p = await RawPeer.connect(port);
      p.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
      const text = await p.untilClosed(5000);
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(text, /Connection: close\r\n/);
      // A peer that sent nothing at all hears the same.
      const q = await RawPeer.connect(port);
      assert.match(await q.untilClosed(5000), /^HTTP\/1\.1 408 /);
    } finally {
      await server.close();
    }
  });

  it('a verifyClient that never answers: 503 at the handshake timeout', T, async () => {
    const { server, port } = await wsServer({ handshakeTimeout: 300, websocket: { verifyClient: () => new Promise<boolean>(() => {}) } });
    try {
      const p = await RawPeer.connect(port);
      p.write(UPGRADE);
      assert.match(await p.untilClosed(5000), /^HTTP\/1\.1 503 /);
    } finally {
      await server.close();
    }
  });

  it('a close the peer never answers is reported as 1006 ERR_CLOSE_TIMEOUT, not as a clean 1000', T, async () => {
    const server = new Server({ listen: 'ws://127.0.0.1:0', closeTimeout: 300 });
    const closed = new Promise<CloseInfo>((resolve) => server.on('connection', (c) => {
      c.once('message', () => c.close(1000, 'bye'));
      c.on('close', resolve);
    }));
    await server.listen();
    try {
      const p = await upgraded(portOf(server.addresses[0]!));
      p.write(frame({ opcode: 1, payload: 'close me' }));
      const info = await closed;
      assert.equal(info.code, 1006);
      assert.equal(info.error?.code, 'ERR_CLOSE_TIMEOUT');
      assert.match(info.reason, /did not close within 300 ms/);
      // The peer did get the close frame; it just never answered.
      assert.equal(closeFrameOf(p.received)?.code, 1000);
      p.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('ws limits: messageTimeout', () => {
  const trickle = (p: RawPeer, bytes: Buffer, everyMs: number): NodeJS.Timeout => {
    let i = 0;
    return setInterval(() => { if (i < bytes.length) p.write(bytes.subarray(i, ++i)); }, everyMs);
  };

  it('a frame trickled a byte at a time is closed with 1008 ERR_MESSAGE_TIMEOUT (activity does not save it)', T, async () => {
    const { server, port, closes } = await wsServer({ messageTimeout: 300 });
    try {
      const p = await upgraded(port);
      const f = frame({ opcode: 1, payload: 'x'.repeat(10_000) });
      p.write(f.subarray(0, 100));
      const timer = trickle(p, f.subarray(100), 20);
      try {
        await p.untilClosed(5000);
      } finally {
        clearInterval(timer);
      }
      assert.deepEqual(closeFrameOf(p.received), { code: 1008, reason: 'a message was not completed within 300 ms' });
      await waitFor(() => closes.length === 1);
      assert.equal(closes[0]!.code, 1008);
      assert.equal(closes[0]!.error?.code, 'ERR_MESSAGE_TIMEOUT');
    } finally {
      await server.close();
    }
  });

  it('a fragmented message kept open with pings between its fragments is closed too', T, async () => {
    const { server, port, closes } = await wsServer({ messageTimeout: 300 });
    try {
      const p = await upgraded(port);
      p.write(frame({ opcode: 1, fin: false, payload: 'first part' }));
      const timer = setInterval(() => p.write(Buffer.concat([frame({ opcode: 9, payload: 'p' }), frame({ opcode: 0, fin: false, payload: 'more' })])), 40);
      try {
        await p.untilClosed(5000);
      } finally {
        clearInterval(timer);
      }
      assert.equal(closeFrameOf(p.received)?.code, 1008);
      await waitFor(() => closes.length === 1);
      assert.equal(closes[0]!.error?.code, 'ERR_MESSAGE_TIMEOUT');
    } finally {
      await server.close();
    }
  });

  it('messages that each arrive in pieces but complete keep the connection, however long it lasts', T, async () => {
    // A timeout far above the 30 ms each message stays unfinished, so a loaded machine does not trip it.
    const { server, port, closes } = await wsServer({ messageTimeout: 800 });
    try {
      const p = await upgraded(port);
      const started = Date.now();
      let n = 0;
      while (Date.now() - started < 2000) {
        const f = frame({ opcode: 1, payload: `message ${n} `.repeat(50) });
        p.write(f.subarray(0, 30));
        await new Promise((r) => setTimeout(r, 30));
        p.write(f.subarray(30));
        await new Promise((r) => setTimeout(r, 30));
        n++;
      }
      await p.until((t) => t.includes(`message ${n - 1} `));
      assert.equal(p.closed, false);
      assert.equal(closes.length, 0);
      p.destroy();
    } finally {
      await server.close();
    }
  });

  it('messageTimeout: 0 turns it off', T, async () => {
    const { server, port, closes } = await wsServer({ messageTimeout: 0, handshakeTimeout: 100 });
    try {
      const p = await upgraded(port);
      p.write(frame({ opcode: 1, payload: 'x'.repeat(100) }).subarray(0, 20));
      // Several sweeps of a 100 ms handshake timeout pass (the sweep runs every 25 ms).
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(p.closed, false);
      assert.equal(closes.length, 0);
      p.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('ws limits: a refusal reaches the client with its status and reason', () => {
  it("verifyClient's { status: 403, reason: 'banned' }: connect() rejects with err.status 403 and the reason; ws sees 403", T, async () => {
    const { server } = await wsServer({ websocket: { verifyClient: () => ({ status: 403, reason: 'banned', headers: { 'X-Why': 'list' } }) } });
    try {
      const url = server.addresses[0]!;
      const err = await connect(url).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof HandshakeRefusedError, String(err));
      assert.ok(err instanceof SwitchboardError);
      assert.equal(err.code, 'ERR_HANDSHAKE');
      assert.equal(err.status, 403);
      assert.equal(err.reason, 'banned');
      assert.equal(err.headers['x-why'], 'list');
      assert.match(err.message, /answered 403 Forbidden: banned/);
      const status = await new Promise<number>((resolve) => {
        const w = new WebSocket(url);
        w.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); w.terminate(); });
        w.once('error', () => {});
      });
      assert.equal(status, 403);
    } finally {
      await server.close();
    }
  });

  it('other servers: a body with Content-Length, a body up to EOF, no body (the status text)', T, async () => {
    const answers = [
      'HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\ntoken absent',
      'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n\r\nslow down\n',
      'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n',
    ];
    let next = 0;
    const srv = net.createServer((sock) => {
      const answer = answers[next++]!;
      sock.once('data', () => {
        // The head and the body in separate writes: the client waits for the body.
        const cut = answer.indexOf('\r\n\r\n') + 4;
        sock.write(answer.slice(0, cut));
        setTimeout(() => sock.end(answer.slice(cut)), 30);
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`;
      const seen: Array<[number, string, string | undefined]> = [];
      for (let i = 0; i < answers.length; i++) {
        const err = await connect(url, { websocket: { perMessageDeflate: false } }).then(() => null, (e: unknown) => e);
        assert.ok(err instanceof HandshakeRefusedError, String(err));
        seen.push([err.status, err.reason, err.headers['retry-after']]);
      }
      assert.deepEqual(seen, [[401, 'token absent', undefined], [429, 'slow down', '5'], [404, 'Not Found', undefined]]);
    } finally {
      srv.close();
    }
  });
});

describe('ws limits: under an address-space cap, the process survives', () => {
  const hasPrlimit = existsSync('/usr/bin/prlimit');
  it('a server capped at its size + 256 MiB takes 400 announced 60 MiB frames, and a real over-large one closes that connection with 1009', { ...T, skip: !hasPrlimit && 'no prlimit' }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/ws-oom-fixture.ts'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const peers: RawPeer[] = [];
    const log = (what: string): void => { if (process.env.DEBUG_OOM) console.error(what); };
    try {
      await waitFor(() => /port \d+\n/.test(out), 20_000, 'the child server');
      const port = Number(/port (\d+)/.exec(out)![1]);
      const vm = Number(/VmSize:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;
      execFileSync('prlimit', ['--pid', String(child.pid), `--as=${vm + 256 * MiB}`]);
      log(`capped at ${vm + 256 * MiB}`);
      for (let i = 0; i < 400; i += 50) peers.push(...await Promise.all(Array.from({ length: 50 }, () => upgraded(port))));
      const announce = frame({ opcode: 2, payload: Buffer.from([1]), fakeLength: BigInt(60 * MiB), lenForm: 64 });
      for (const p of peers) p.write(announce);
      await settled(port, peers);
      log('announced');
      // A frame announcing 900 MiB whose bytes do come: its buffer doubles until the cap says no.
      const big = await upgraded(port);
      big.write(frame({ opcode: 2, fakeLength: BigInt(900 * MiB), lenForm: 64 }).subarray(0, 14));
      const block = Buffer.alloc(MiB, 1);
      const gone = new Promise<void>((resolve) => big.socket.once('close', () => resolve()));
      for (let sent = 0; sent < 600 && !big.closed && !big.ended; sent++) {
        if (!big.socket.write(block)) await Promise.race([new Promise<void>((resolve) => big.socket.once('drain', () => resolve())), gone]);
      }
      log('sent');
      await big.untilClosed(20_000);
      log(out);
      assert.equal(closeFrameOf(big.received)?.code, 1009);
      await waitFor(() => out.includes('close 1009 ERR_OUT_OF_MEMORY'), 5000, 'the server to report the close');
      // Still alive and serving.
      const p = await upgraded(port);
      p.write(frame({ opcode: 1, payload: 'alive' }));
      await p.until((t) => t.includes('alive'));
      p.destroy();
      assert.equal(child.exitCode, null, err);
    } finally {
      for (const p of peers) p.destroy();
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('ws limits: server.close() reports the closes it had to cut short', () => {
  it('a peer that never answers the 1001 close frame is reported as 1006 ERR_CLOSE_TIMEOUT at server.close({ timeout })', T, async () => {
    const { server, port, closes } = await wsServer({ closeTimeout: 10_000 });
    const p = await upgraded(port);
    const answering = await upgraded(port);
    answering.socket.on('data', (d: Buffer) => {
      // This one answers the server's close frame with its own, and is a clean 1001.
      if (d.includes(Buffer.from([0x88]))) answering.write(frame({ opcode: 8, payload: Buffer.from([0x03, 0xe9]) }));
    });
    await waitFor(() => server.connections.size === 2);
    await server.close({ timeout: 1000 });
    await waitFor(() => closes.length === 2);
    const byCode = closes.map((c) => `${c.code} ${c.error?.code ?? '-'}`).sort();
    assert.deepEqual(byCode, ['1001 -', '1006 ERR_CLOSE_TIMEOUT']);
    assert.match(closes.find((c) => c.code === 1006)!.reason, /within 1000 ms/);
    assert.equal(closeFrameOf(p.received)?.code, 1001);
    p.destroy();
    answering.destroy();
  });
});
