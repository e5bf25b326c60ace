/**
 * The nats hub against a private nats-server started here: text and binary once and in order, no
 * echo, plain NATS messages from another program (a raw PUB on a socket) as text, two chat servers
 * as one room, and the server killed and restarted mid-test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Message } from '../src/codec/types.js';
import { chatServer } from '../src/apps/index.js';
import type { Server } from '../src/core/server.js';
import { createHub } from '../src/hubs/index.js';
import { NatsHub, subjectFor, type NatsHubOptions } from '../src/hubs/nats.js';
import { portOf, quiet, RawPeer } from './helpers.js';
import { exitOf, freePort, waitFor } from './hub-support.js';
import { NatsProcess, rawNatsPublish } from './engine-support.js';

let nats: NatsProcess;
let prefixes = 0;
const uniquePrefix = (): string => `sbtest${process.pid}-${++prefixes}.`;

function hubWithInbox(url: string, prefix: string, logs: string[] = [], options: NatsHubOptions = {}): { hub: NatsHub; inbox: Message[] } {
  const hub = new NatsHub(url, { prefix, log: (m) => logs.push(m), maxRetryDelay: 100, ...options });
  const inbox: Message[] = [];
  hub.setListener((_topic, data) => inbox.push(data));
  return { hub, inbox };
}

before(async () => {
  nats = await NatsProcess.start();
});
after(async () => {
  await nats.stop();
});

describe('nats hub', () => {
  it('is what createHub() makes of a nats:// URL; bad URLs and bounds are ERR_INVALID_OPTION', { timeout: 5000 }, async () => {
    const hub = createHub(nats.url, { log: () => undefined });
    assert.equal(hub.kind, 'nats');
    await hub.ready();
    assert.equal(hub.up, true);
    await hub.close();
    await hub.close();
    assert.throws(() => createHub('nats://', { log: () => undefined }), { code: 'ERR_INVALID_OPTION' });
    assert.throws(() => createHub(nats.url, { log: () => undefined, maxPendingBytes: 0 }), { code: 'ERR_INVALID_OPTION' });
  });

  it('names subjects prefix + topic, escaping only what a subject cannot hold', () => {
    assert.equal(subjectFor('switchboard.', 'chat'), 'switchboard.chat');
    assert.equal(subjectFor('switchboard.', 'rooms.lobby'), 'switchboard.rooms.lobby');
    assert.equal(subjectFor('switchboard.', 'my room*>%'), 'switchboard.my%20room%2A%3E%25');
    assert.equal(subjectFor('switchboard.', 'a..b.'), 'switchboard.a%2E.b%2E');
    assert.equal(subjectFor('switchboard.', 'ünï'), 'switchboard.ünï');
  });

  it('carries text and binary between two hubs exactly once, in order, never back to the publisher', { timeout: 8000 }, async () => {
    const prefix = uniquePrefix();
    const a = hubWithInbox(nats.url, prefix);
    const b = hubWithInbox(nats.url, prefix);
    try {
      a.hub.subscribe('my room');
      b.hub.subscribe('my room');
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      const sent: Message[] = [];
      for (let i = 0; i < 500; i++) {
        // Binary that happens to be UTF-8 must stay binary; text with multi-byte characters stays text.
        const m: Message = i % 3 === 0 ? Buffer.from(`bin ${i}`) : i % 3 === 1 ? `t${i} ünï 😀` : Buffer.from([0xff, 0, i & 0xff]);
        sent.push(m);
        a.hub.publish('my room', m);
      }
      b.hub.publish('my room', 'from b');
      await waitFor(() => b.inbox.length >= 500 && a.inbox.length >= 1, 'both inboxes');
      b.hub.publish('my room', 'marker');
      await waitFor(() => a.inbox.length >= 2, 'marker');
      assert.equal(b.inbox.length, 500);
      for (let i = 0; i < 500; i++) {
        assert.equal(typeof b.inbox[i], typeof sent[i], `message ${i} keeps its type`);
        assert.deepEqual(b.inbox[i], sent[i], `message ${i} in order and intact`);
      }
      assert.deepEqual(a.inbox, ['from b', 'marker'], 'no echo of a\'s own publishes');
      assert.equal(a.hub.pendingPublishes, 0);
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
    }
  });

  it('delivers a plain NATS message from another program as text (bytes that are not UTF-8 as binary)', { timeout: 8000 }, async () => {
    const prefix = uniquePrefix();
    const b = hubWithInbox(nats.url, prefix);
    try {
      b.hub.subscribe('chat');
      await b.hub.ready();
      await rawNatsPublish(nats.port, `${prefix}chat`, Buffer.from('hello from a raw PUB ünï'));
      await rawNatsPublish(nats.port, `${prefix}chat`, Buffer.from([0xc3, 0x28]));
      await waitFor(() => b.inbox.length === 2, 'the plain messages');
      assert.deepEqual(b.inbox, ['hello from a raw PUB ünï', Buffer.from([0xc3, 0x28])]);
    } finally {
      await b.hub.close();
    }
  });

  it('two chat servers on one nats-server are one room; a raw PUB reaches an nc-style user', { timeout: 15000 }, async () => {
    const room = `room-${process.pid}`;
    const servers: Server[] = [];
    const peers: RawPeer[] = [];
    try {
      const hubs = [createHub(nats.url, { log: quiet }), createHub(nats.url, { log: quiet })];
      for (const hub of hubs) servers.push(await chatServer({ listen: 'text://127.0.0.1:0', log: quiet, room, noticeInterval: 0, hub }));
      const [onA, onB] = [await RawPeer.connect(portOf(servers[0]!.addresses[0]!)), await RawPeer.connect(portOf(servers[1]!.addresses[0]!))];
      peers.push(onA, onB);
      for (const p of peers) await p.until((t) => t.includes('you are'));
      // The room is subscribed when its first member joins: ready() resolves once that is in effect.
      await Promise.all(hubs.map((h) => h.ready()));
      onA.write('/nick ann\n');
      await onB.until((t) => t.includes('is now ann'));
      onA.write('hello across\n');
      await onB.until((t) => t.includes('ann: hello across\n'));

      await rawNatsPublish(nats.port, `switchboard.${room}`, Buffer.from('announcement from outside'));
      await onB.until((t) => t.includes('announcement from outside\n'));
      await onA.until((t) => t.includes('announcement from outside\n'));
      assert.equal(onB.text.split('\n').filter((l) => l === 'ann: hello across').length, 1, 'once');
    } finally {
      for (const p of peers) p.socket.destroy();
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  it('switchboard serve chat --hub nats://: two processes are one room; a bad --hub is a usage error naming nats', { timeout: 40000 }, async () => {
    const room = `cli-${process.pid}`;
    const serve = (args: string[]): { child: ReturnType<typeof spawn>; out: () => string } => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      return { child, out: () => out };
    };
    const procs = [0, 1].map(() => serve(['chat', '--listen', 'text://127.0.0.1:0', '--hub', nats.url, `--room=${room}`]));
    const peers: RawPeer[] = [];
    try {
      await waitFor(() => procs.every((p) => /listening on/.test(p.out())), 'both servers', 20000);
      for (const p of procs) peers.push(await RawPeer.connect(portOf(/listening on (\S+)/.exec(p.out())![1]!)));
      for (const p of peers) await p.until((t) => t.includes('you are'));
      // Retried until the other process's room subscription is in effect (it is made when its first member joins).
      let n = 0;
      await waitFor(() => {
        if (peers[1]!.text.includes('ping-')) return true;
        peers[0]!.write(`ping-${n++}\n`);
        return false;
      }, 'a line from A at B', 10000, 100);
      peers[0]!.write('hello from the command line\n');
      await peers[1]!.until((t) => t.includes(': hello from the command line\n'));
      await rawNatsPublish(nats.port, `switchboard.${room}`, Buffer.from('plain to the cli room'));
      await peers[1]!.until((t) => t.includes('plain to the cli room\n'));
    } finally {
      for (const p of peers) p.socket.destroy();
      for (const p of procs) p.child.kill('SIGTERM');
      await Promise.all(procs.map((p) => exitOf(p.child)));
    }
    const bad = serve(['chat', '--listen', 'text://127.0.0.1:0', '--hub', 'nats:/oops']);
    assert.deepEqual(await exitOf(bad.child, 20000), { code: 2, signal: null });
    assert.match(bad.out(), /--hub: "nats:\/oops" is not a hub; use .*nats:\/\/HOST:PORT/);
  });

  it('survives nats-server being killed and restarted: logs once, drops while down, resubscribes, delivers after', { timeout: 20000 }, async () => {
    const own = await NatsProcess.start();
    const prefix = uniquePrefix();
    const logsA: string[] = [];
    const logsB: string[] = [];
    const a = hubWithInbox(own.url, prefix, logsA);
    const b = hubWithInbox(own.url, prefix, logsB);
    try {
      b.hub.subscribe('room');
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      a.hub.publish('room', 'before');
      await waitFor(() => b.inbox.length === 1, 'delivery before the outage');

      await own.stop();
      await waitFor(() => logsA.length >= 1 && logsB.length >= 1 && !a.hub.up && !b.hub.up, 'the outage to be seen');
      const droppedBefore = a.hub.dropped;
      a.hub.publish('room', 'while down');
      assert.equal(a.hub.dropped, droppedBefore + 1, 'dropped at once, not buffered by the client');
      b.hub.subscribe('late'); // subscribed during the outage: in effect after it

      await own.start();
      await waitFor(() => a.hub.up && b.hub.up, 'both hubs back', 15000);
      await b.hub.ready();
      a.hub.publish('room', 'after');
      a.hub.publish('late', 'late topic');
      await waitFor(() => b.inbox.length === 3, 'delivery after recovery');
      assert.deepEqual(b.inbox, ['before', 'after', 'late topic'], 'nothing published while down arrives later; all after does');
      for (const logs of [logsA, logsB]) {
        assert.equal(logs.filter((l) => l.includes('lost connection')).length, 1, JSON.stringify(logs));
        assert.equal(logs.filter((l) => l.includes(' is back; ')).length, 1, JSON.stringify(logs));
        assert.equal(logs.length, 2, JSON.stringify(logs));
      }
      assert.match(logsA[1]!, /\(1 message\(s\) dropped while it was down\)/);
    } finally {
      await Promise.all([a.hub.close(), b.hub.close()]);
      await own.stop();
    }
  });

  it('bounds what waits for a nats-server that hangs (SIGSTOP): drops with a count, says so, resumes on SIGCONT', { timeout: 30000 }, async () => {
    const own = await NatsProcess.start();
    const prefix = uniquePrefix();
    const logsA: string[] = [];
    const maxPendingBytes = 256 * 1024;
    const a = hubWithInbox(own.url, prefix, logsA, { answerTimeout: 300, maxPendingBytes });
    const b = hubWithInbox(own.url, prefix);
    try {
      b.hub.subscribe('room');
      await Promise.all([a.hub.ready(), b.hub.ready()]);
      own.pause();
      const payload = Buffer.alloc(1024, 1);
      let maxPending = 0;
      for (let i = 0; i < 5000; i++) {
        a.hub.publish('room', payload);
        maxPending = Math.max(maxPending, a.hub.pendingBytes);
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      assert.ok(maxPending <= maxPendingBytes, `pending bytes stay within the bound (${maxPending})`);
      // (A PONG already on its way when the server stopped may free a few publishes more.)
      assert.ok(a.hub.dropped >= 5000 - 2 * (maxPendingBytes / 1024), `the rest is dropped and counted (${a.hub.dropped})`);
      await waitFor(() => !a.hub.up, 'up to go false');
      assert.match(logsA[0] ?? '', /^nats hub: nats:\/\/127\.0\.0\.1:\d+ is not answering \(/);
      own.resume();
      await waitFor(() => a.hub.up && b.hub.up, 'both up again after SIGCONT', 20000);
      let n = 0;
      await waitFor(() => {
        if (b.inbox.includes('probe')) return true;
        if (n++ % 10 === 0) a.hub.publish('room', 'probe');
        return false;
      }, 'delivery after SIGCONT', 10000, 20);
      // Told once that it hung, and once that it is over (the client may also have given the
      // silent connection up and reconnected meanwhile: then that is the one outage line more).
      assert.ok(logsA.length >= 2 && logsA.length <= 3, JSON.stringify(logsA));
      assert.match(logsA.at(-1)!, / answers again; | is back; /);
    } finally {
      own.resume();
      await Promise.all([a.hub.close(), b.hub.close()]);
      await own.stop();
    }
  });

  it('/healthz and /metrics follow the nats hub: 503 and switchboard_hub_up 0 while the server is gone', { timeout: 20000 }, async () => {
    const own = await NatsProcess.start();
    const server = await chatServer({ listen: 'text://127.0.0.1:0', log: quiet, admin: 'http://127.0.0.1:0',
      hub: new NatsHub(own.url, { log: quiet, maxRetryDelay: 100 }) });
    try {
      const admin = server.adminUrl!;
      const metric = async (): Promise<string> => (await (await fetch(`${admin}/metrics`)).text())
        .split('\n').filter((l) => l.startsWith('switchboard_hub_')).join('\n');
      assert.equal((await fetch(`${admin}/healthz`)).status, 200);
      assert.match(await metric(), /switchboard_hub_up\{[^}]*kind="nats"[^}]*\} 1/);
      await own.stop();
      await waitFor(async () => (await fetch(`${admin}/healthz`)).status === 503, '/healthz to say 503', 10000, 50);
      assert.match(await metric(), /switchboard_hub_up\{[^}]*kind="nats"[^}]*\} 0/);
      await own.start();
      await waitFor(async () => (await fetch(`${admin}/healthz`)).status === 200, '/healthz back to 200', 15000, 50);
    } finally {
      await server.close();
      await own.stop();
    }
  });

  it('ready() rejects with ERR_HUB when nothing listens, and close() leaves nothing running', { timeout: 6000 }, async () => {
    const port = await freePort();
    const logs: string[] = [];
    const hub = new NatsHub(`nats://127.0.0.1:${port}`, { log: (m) => logs.push(m), readyTimeout: 1000, maxRetryDelay: 50 });
    hub.publish('x', 'dropped');
    const err = await hub.ready().then(() => null, (e: unknown) => e as Error & { code?: string });
    await hub.close();
    assert.equal(err?.code, 'ERR_HUB');
    assert.match(err.message, new RegExp(`^nats hub: cannot reach nats://127\\.0\\.0\\.1:${port}: .* \\(tried for 1000 ms; is nats-server running there\\?\\)$`));
    assert.deepEqual(logs, []);
    assert.equal(hub.dropped, 1);
  });
});
