/**
 * Limits of the text:// and frame:// protocols over real sockets: memory follows bytes that
 * arrived, a message that never finishes is closed by messageTimeout, and a close that times
 * out is reported as such.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Server, type ServerOptions } from '../src/index.js';
import type { CloseInfo } from '../src/codec/types.js';
import { RawPeer, portOf, waitFor } from './helpers.js';

const T = { timeout: 30_000 };
const MiB = 1024 * 1024;

async function echo(listen: string, options: Partial<ServerOptions> = {}): Promise<{ server: Server; port: number; closes: CloseInfo[] }> {
  const server = new Server({ listen, ...options });
  const closes: CloseInfo[] = [];
  server.on('connection', (c) => {
    c.on('message', (m) => c.send(m));
    c.on('close', (info) => closes.push(info));
  });
  await server.listen();
  return { server, port: portOf(server.addresses[0]!), closes };
}

function frameOf(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length);
  return Buffer.concat([head, payload]);
}

/** Waits until what `peers` wrote reached the kernel, then one echo round trip on a fresh connection. */
async function settled(port: number, peers: RawPeer[], ping: Buffer, pong: string): Promise<void> {
  await Promise.all(peers.map((p) => new Promise<void>((resolve) => p.socket.write('', () => resolve()))));
  const probe = await RawPeer.connect(port);
  probe.write(ping);
  await probe.until((t) => t.includes(pong));
  probe.destroy();
}

describe('frame:// and text:// memory follows bytes received', () => {
  it('300 frame:// connections announcing 60 MiB and sending 1 byte hold < 50 MB; frames still complete', T, async () => {
    const { server, port } = await echo('frame://127.0.0.1:0', { maxMessageSize: 64 * MiB });
    const peers: RawPeer[] = [];
    try {
      const before = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 300; i += 50) peers.push(...await Promise.all(Array.from({ length: 50 }, () => RawPeer.connect(port))));
      const announce = Buffer.from([0x03, 0xc0, 0x00, 0x00, 0x01]); // 60 MiB announced, one byte sent
      for (const p of peers) p.write(announce);
      await settled(port, peers, frameOf(Buffer.from('sync')), 'sync');
      const held = process.memoryUsage().arrayBuffers - before;
      assert.ok(held < 50 * 1e6, `array buffers grew by ${(held / 1e6).toFixed(1)} MB`);
      await waitFor(() => server.sweeper.size === 300, 3000, 'the probe to close');
      // A split 3 MiB frame, its prefix cut in two, arrives whole.
      const q = await RawPeer.connect(port);
      const big = frameOf(Buffer.alloc(3 * MiB, 7));
      q.write(big.subarray(0, 2));
      await new Promise((r) => setTimeout(r, 20));
      q.write(big.subarray(2));
      await q.until(() => q.received.length >= big.length, 10_000);
      assert.ok(q.received.equals(big));
      q.destroy();
    } finally {
      for (const p of peers) p.destroy();
      await server.close();
    }
  });

  it('a long text:// line sent in pieces is gathered in one buffer and arrives whole', T, async () => {
    const { server, port } = await echo('text://127.0.0.1:0', { maxMessageSize: 4 * MiB });
    try {
      const p = await RawPeer.connect(port);
      const line = 'é'.repeat(MiB); // 2 MiB of UTF-8, 2-byte characters cut across pieces
      const bytes = Buffer.from(line + '\r\n');
      for (let off = 0; off < bytes.length; off += 99_999) {
        p.write(bytes.subarray(off, off + 99_999));
        if (off % 999_990 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await p.until((t) => t.endsWith('\n'), 10_000);
      assert.equal(p.text, line + '\n');
      p.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('text:// and frame:// timeouts', () => {
  it('close() to a peer that stops reading: destroyed at closeTimeout and reported as 1006 ERR_CLOSE_TIMEOUT', T, async () => {
    const server = new Server({ listen: 'text://127.0.0.1:0', closeTimeout: 300, maxBufferedAmount: 64 * MiB });
    const closed = new Promise<CloseInfo>((resolve) => server.on('connection', (c) => {
      c.once('message', () => {
        // Far more than the kernel's socket buffers hold for a reader that reads nothing.
        const line = 'y'.repeat(64 * 1024 - 1);
        for (let i = 0; i < 512; i++) c.send(line);
        c.close();
      });
      c.on('close', resolve);
    }));
    await server.listen();
    try {
      const p = await RawPeer.connect(portOf(server.addresses[0]!));
      p.socket.pause();
      p.write('go\n');
      const info = await closed;
      assert.equal(info.code, 1006);
      assert.equal(info.error?.code, 'ERR_CLOSE_TIMEOUT');
      assert.match(info.reason, /did not close within 300 ms \(\d+ bytes still unsent\)/);
      p.destroy();
    } finally {
      await server.close();
    }
  });

  it('close() to a peer that reads and closes is still a clean 1000', T, async () => {
    const server = new Server({ listen: 'text://127.0.0.1:0', closeTimeout: 300 });
    const closed = new Promise<CloseInfo>((resolve) => server.on('connection', (c) => {
      c.once('message', () => { c.send('bye'); c.close(); });
      c.on('close', resolve);
    }));
    await server.listen();
    try {
      const p = await RawPeer.connect(portOf(server.addresses[0]!));
      p.write('go\n');
      await p.until((t) => t === 'bye\n');
      await new Promise((r) => setTimeout(r, 20));
      p.socket.end();
      const info = await closed;
      assert.equal(info.code, 1000);
      assert.equal(info.error, undefined);
    } finally {
      await server.close();
    }
  });

  for (const [proto, start, more] of [
    ['text', Buffer.from('an unfinished li'), Buffer.from('ne that goes on and on'.repeat(5))],
    ['frame', Buffer.from([0, 0, 0x10, 0, 1, 2, 3]), Buffer.alloc(100, 9)],
  ] as const) {
    it(`${proto}://: a message trickled in is closed by messageTimeout (ERR_MESSAGE_TIMEOUT)`, T, async () => {
      const { server, port, closes } = await echo(`${proto}://127.0.0.1:0`, { messageTimeout: 300 });
      try {
        const p = await RawPeer.connect(port);
        p.write(start);
        let i = 0;
        const timer = setInterval(() => { if (i < more.length) p.write(more.subarray(i, ++i)); }, 20);
        try {
          await p.untilClosed(5000);
        } finally {
          clearInterval(timer);
        }
        await waitFor(() => closes.length === 1);
        assert.equal(closes[0]!.error?.code, 'ERR_MESSAGE_TIMEOUT');
        assert.match(closes[0]!.reason, /not completed within 300 ms/);
      } finally {
        await server.close();
      }
    });
  }

  it('text://: lines that arrive in pieces but finish are never timed out', T, async () => {
    // A timeout far above the 30 ms each line stays unfinished, so a loaded machine does not trip it.
    const { server, port, closes } = await echo('text://127.0.0.1:0', { messageTimeout: 800 });
    try {
      const p = await RawPeer.connect(port);
      const started = Date.now();
      let n = 0;
      while (Date.now() - started < 2000) {
        p.write(`line ${n}`);
        await new Promise((r) => setTimeout(r, 30));
        p.write(` done\n`);
        await new Promise((r) => setTimeout(r, 30));
        n++;
      }
      await p.until((t) => t.includes(`line ${n - 1} done\n`));
      assert.equal(closes.length, 0);
      p.destroy();
    } finally {
      await server.close();
    }
  });
});
