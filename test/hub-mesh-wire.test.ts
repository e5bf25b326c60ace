/**
 * The cluster mesh's links in one process, over real Unix sockets: a hello that arrives before
 * the worker knows the secret waits for it; a wrong secret, a frame before the hello and an
 * over-long unauthenticated frame close the link (logged, no crash); frames split at every byte
 * and a 1 MiB message across many reads arrive whole.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Mesh, meshSecret } from '../src/hubs/cluster-mesh.js';
import type { Message } from '../src/codec/types.js';
import { waitFor } from './hub-support.js';

interface Node {
  mesh: Mesh;
  path: string;
  topics: Set<string>;
  got: Array<[string, Message]>;
  logs: string[];
}

async function node(id: number): Promise<Node> {
  const topics = new Set<string>();
  const got: Array<[string, Message]> = [];
  const logs: string[] = [];
  let path = '';
  const mesh = new Mesh(
      {
        log: (m) => logs.push(m),
        maxPending: 1000,
        maxPendingBytes: 1 << 20,
        self: { id, index: id, pid: process.pid },
        wants: (t) => topics.has(t),
        deliver: (t, d) => got.push([t, d]),
      },
      () => topics,
      (p) => (path = p),
      (err) => logs.push(`error ${err.message}`),
  );
  await waitFor(() => path !== '', 'the mesh to listen');
  return { mesh, path, topics, got, logs };
}

const sub = (n: Node, t: string): void => {
  n.topics.add(t);
  n.mesh.subscribe(t);
};

/** A frame as the mesh writes it: [u32 length][u8 kind][u32 topic bytes][topic][payload]. */
function frame(kind: number, topic: string, payload: string): Buffer {
  const t = Buffer.from(topic);
  const p = Buffer.from(payload);
  const b = Buffer.alloc(9 + t.length + p.length);
  b.writeUInt32BE(5 + t.length + p.length, 0);
  b[4] = kind;
  b.writeUInt32BE(t.length, 5);
  t.copy(b, 9);
  p.copy(b, 9 + t.length);
  return b;
}

async function raw(path: string): Promise<net.Socket> {
  const s = net.connect({ path });
  await once(s, 'connect');
  s.on('error', () => {});
  return s;
}

describe('cluster mesh links', () => {
  it('a hello before the secret is known waits for it; then interest and publishes flow both ways', async () => {
    const a = await node(1);
    const b = await node(2);
    try {
      const token = meshSecret();
      sub(a, 'to-a');
      b.mesh.join(token, [{ id: 1, index: 1, pid: process.pid, path: a.path }]);
      sub(b, 'to-b');
      // a does not know the secret yet: b's hello and what follows it wait.
      const held = (a.mesh as unknown as { pendingInbound: Set<{ heldHello: unknown }> }).pendingInbound;
      await waitFor(() => [...held].some((l) => l.heldHello !== null), "b's hello to arrive and be held");
      assert.deepEqual(a.mesh.peers(), []);
      a.mesh.join(token, []);
      await a.mesh.ready(2000);
      await b.mesh.ready(2000);
      assert.deepEqual(a.mesh.peers().map((p) => [p.id, p.topics]), [[2, 1]], 'a knows b and its one topic');
      assert.deepEqual(b.mesh.peers().map((p) => [p.id, p.topics]), [[1, 1]]);
      a.mesh.publish('to-b', 'hello b');
      a.mesh.publish('elsewhere', 'nobody');
      b.mesh.publish('to-a', Buffer.from([0, 1, 2, 255]));
      await waitFor(() => a.got.length === 1 && b.got.length === 1, 'both messages');
      assert.deepEqual(b.got, [['to-b', 'hello b']]);
      assert.deepEqual(a.got, [['to-a', Buffer.from([0, 1, 2, 255])]]);
      assert.equal(a.mesh.peers()[0].messagesSent, 1, "'elsewhere' was not sent: b does not subscribe");

      // 1 MiB arrives whole, over many reads.
      const big = 'x'.repeat(1 << 20) + 'end';
      a.mesh.publish('to-b', big);
      await waitFor(() => b.got.length === 2, 'the big message');
      assert.equal(b.got[1][1], big);
      assert.deepEqual(a.logs, []);
      assert.deepEqual(b.logs, []);
    } finally {
      a.mesh.close();
      b.mesh.close();
    }
  });

  it('closes links that do not know the secret or send a bad frame; frames split at every byte arrive', async () => {
    const a = await node(1);
    try {
      const token = meshSecret();
      a.mesh.join(token, []);
      sub(a, 'room');

      const wrong = await raw(a.path);
      wrong.write(frame(1, 'not-the-secret', '5 5 5'));
      await once(wrong, 'close');
      const early = await raw(a.path);
      early.write(frame(2, 'room', ''));
      await once(early, 'close');
      const huge = await raw(a.path);
      huge.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 6]));
      await once(huge, 'close');
      assert.deepEqual(a.logs, [
        'cluster hub: worker ? sent a hello without the secret; closing the link to it',
        'cluster hub: worker ? sent a frame before the hello; closing the link to it',
        'cluster hub: worker ? sent a frame of 2147483647 bytes; closing the link to it',
      ]);
      assert.deepEqual(a.mesh.peers(), []);

      const good = await raw(a.path);
      const bytes = Buffer.concat([frame(1, token, '7 7 1'), frame(4, '', ''), frame(5, 'room', 'één'), frame(6, 'room', 'two'), frame(5, 'other', 'no')]);
      for (let i = 0; i < bytes.length; i++) {
        good.write(bytes.subarray(i, i + 1));
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => a.got.length === 2, 'the two messages on room');
      assert.deepEqual(a.got, [['room', 'één'], ['room', Buffer.from('two')]]);
      assert.deepEqual(a.mesh.peers().map((p) => [p.id, p.index, p.pid, p.messagesReceived]), [[7, 7, 1, 3]]);
      good.destroy();
      await waitFor(() => a.mesh.peers().length === 0, 'the closed link to be forgotten');
    } finally {
      a.mesh.close();
    }
  });
});
