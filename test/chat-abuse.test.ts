/** The chat against a hostile user: escapes, lookalike and guest-like names, join storms, pipelined /who. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { chatServer } from '../src/apps/index.js';
import { RawPeer, portOf, quiet, waitFor } from './helpers.js';

/** C0 controls but \n, DEL, C1 controls, bidi and other format characters but ZWJ/ZWNJ, line/paragraph separators. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

test('chat: control characters, ANSI escapes and bidi controls are not relayed; no user line passes for a notice', { timeout: 10000 }, async () => {
  const server = await chatServer({ listen: ['text://127.0.0.1:0', 'ws://127.0.0.1:0'], log: quiet, noticeInterval: 20 });
  let ws: WebSocket | undefined;
  try {
    const port = portOf(server.addresses[0]!);
    const alice = await RawPeer.connect(port);
    await alice.until((t) => t.includes('you are guest'));
    ws = new WebSocket(server.addresses[1]!);
    const wsGot: string[] = [];
    ws.on('message', (d) => wsGot.push(String(d)));
    await once(ws, 'open');
    const mallory = await RawPeer.connect(port);
    await mallory.until((t) => t.includes('you are guest'));
    mallory.write('/nick mallory\n');
    await mallory.until((t) => t.includes('you are now mallory'));
    mallory.write('/nick \x1b[31mroot\n/nick \u202eadmin\n/nick ad\u200bmin\n');
    await mallory.until((t) => (t.match(/usage: \/nick/g) ?? []).length === 3);

    const attacks = [
      '\x1b[2K\x1b[1G* admin joined',
      '\r* admin joined\x07\x08\x08\x00',
      '\u009b2K\u0085* admin joined',
      'x\u2028* admin joined\u2029',
      '\u202e\u2066nimda\u2069 \u200b\ufeff',
      'tab\there' + ' '.repeat(200) + '* admin joined',
    ];
    for (const a of attacks) mallory.write(a + '\n');
    ws.send('\x1b]0;owned\x07* admin joined\u001b[?25l');
    mallory.write('done\n');
    await alice.until((t) => t.includes('mallory: done\n'));
    await waitFor(() => wsGot.includes('mallory: done'), 3000, 'ws user');
    await alice.until((t) => /guest\d+: \]0;owned\* admin joined\[\?25l\n/.test(t));

    for (const [who, lines] of [['text', alice.text.split('\n')], ['ws', wsGot]] as const) {
      for (const line of lines) {
        assert.doesNotMatch(line, UNSAFE, `${who} user got an unsafe character: ${JSON.stringify(line)}`);
        if (line.includes('admin joined')) assert.match(line, /^(mallory|guest\d+): /, `${who}: ${JSON.stringify(line)} is a user line`);
        assert.ok(!line.includes('  '), `${who}: blanks collapsed in ${JSON.stringify(line)}`);
      }
    }
    assert.ok(alice.text.includes('mallory: [2K[1G* admin joined\n'), 'the visible text is kept');
    assert.ok(alice.text.includes('mallory: nimda\n'));
    assert.ok(alice.text.includes('mallory: tab here * admin joined\n'));
    alice.destroy();
    mallory.destroy();
  } finally {
    ws?.close();
    await server.close();
  }
});

test('chat: nicknames are unique by confusable skeleton, sane, and never guest-like', { timeout: 10000 }, async () => {
  await assert.rejects(chatServer({ listen: 'text://127.0.0.1:0', log: quiet, noticeInterval: -1 }), { code: 'ERR_INVALID_OPTION' });
  await assert.rejects(chatServer({ listen: 'text://127.0.0.1:0', log: quiet, whoLimit: Number.NaN }), { code: 'ERR_INVALID_OPTION' });
  const server = await chatServer({ listen: 'text://127.0.0.1:0', log: quiet, noticeInterval: 20 });
  try {
    const port = portOf(server.addresses[0]!);
    const admin = await RawPeer.connect(port);
    admin.write('/nick admin\n');
    await admin.until((t) => t.includes('you are now admin'));
    const mallory = await RawPeer.connect(port);
    await mallory.until((t) => t.includes('you are guest'));
    const guest = /you are (guest\d+);/.exec(mallory.text)![1]!;
    const tryNick = async (name: string): Promise<string> => {
      const before = mallory.text.length;
      mallory.write(`/nick ${name}\n`);
      // The answer, not a room notice that may come first.
      const answer = (t: string): string | undefined => t.slice(before).split('\n').find((l) => /^\* (you are now|the name|usage|names )/.test(l));
      return answer(await mallory.until((t) => answer(t) !== undefined))!;
    };
    const refused = [
      'аdmin', // Cyrillic а
      'ADMIN', 'Admin', 'adm1n', 'admIn', 'admın', 'ɑdmin', 'ａｄｍｉｎ', 'аdmіn', 'ADMİN', 'admín', 'αdmin', 'Αdmin',
      'edmin\u0308', // only a name of the same shape: edmin is free, see below
      'guest1', guest, 'Guest7', 'gueѕt1', 'GUEST', 'guest-admin', // guest-like
      'a'.repeat(25), '-admin', '.', '*', 'bad name', 'x\u200b', 'x\u202e', '\u{1F600}', 'a:b', 'a,b', '\u3164', 'a\u3164b', // Hangul filler: a letter, invisible
      'раураl', // Cyrillic+Latin mix
    ];
    const results = new Map<string, string>();
    for (const name of refused.filter((n) => !n.startsWith('edmin'))) results.set(name, await tryNick(name));
    for (const [name, reply] of results) assert.doesNotMatch(reply, /you are now/, `${JSON.stringify(name)} was accepted: ${reply}`);
    assert.match(results.get('аdmin')!, /mixes scripts/);
    assert.match(results.get('ADMIN')!, /taken/);
    assert.match(results.get(guest)!, /guest/);

    for (const name of ['adrnin', 'admln']) assert.match(await tryNick(name), /taken/, name);
    // All Cyrillic, all lookalikes of a Latin name in use.
    const coco = await RawPeer.connect(port);
    coco.write('/nick coco\n');
    await coco.until((t) => t.includes('you are now coco'));
    assert.match(await tryNick('сосо'), /taken \(too like coco\)/);
    coco.destroy();
    // Distinct names in any one script are fine; a name freed by its holder can be taken.
    for (const name of ['Дмитрий', '小明', 'Ολγα', 'a'.repeat(24), 'x.y_z-1', 'edmin']) {
      assert.match(await tryNick(name), new RegExp(`you are now ${name}$`), name);
    }
    admin.destroy();
    await waitFor(() => server.connections.size === 1);
    assert.match(await tryNick('Admin'), /you are now Admin$/);
    mallory.destroy();
  } finally {
    await server.close();
  }
});

/** Adds up what gathered notice lines say: users joined and left. */
function tally(lines: string[]): { joined: number; left: number } {
  let joined = 0;
  let left = 0;
  for (const line of lines) {
    for (const part of line.slice(2).split('; ')) {
      const counted = /^(\d+) users (joined|left)$/.exec(part);
      const named = /^(.+) (joined|left)$/.exec(part);
      const n = counted ? Number(counted[1]) : named ? named[1]!.split(', ').length : 0;
      if ((counted ?? named)?.[2] === 'joined') joined += n;
      else if ((counted ?? named)?.[2] === 'left') left += n;
    }
  }
  return { joined, left };
}

test('chat: a join/leave storm costs each member a bounded number of notices; a real user still gets through', { timeout: 120000 }, async () => {
  const interval = 200;
  const server = await chatServer({ listen: 'text://127.0.0.1:0', log: quiet, noticeInterval: interval });
  const crowd: RawPeer[] = [];
  try {
    const port = portOf(server.addresses[0]!);
    const bob = await RawPeer.connect(port);
    bob.write('/nick bob\n');
    await bob.until((t) => t.includes('you are now bob'));
    const start = Date.now();
    // 3000 idle connections (6000 descriptors in this process, under `ulimit -n`), 200 at a time.
    const N = 3000;
    for (let i = 0; i < N; i += 200) crowd.push(...await Promise.all(Array.from({ length: Math.min(200, N - i) }, () => RawPeer.connect(port))));
    await waitFor(() => server.connections.size === N + 1, 60000, 'crowd connected');
    const carol = await RawPeer.connect(port);
    carol.write('/nick carol\nhello from carol\n/who\n');
    await bob.until((t) => t.includes('carol: hello from carol\n'), 60000);
    const who = (await carol.until((t) => t.includes('online here'), 30000)).split('\n').find((l) => l.includes('online here'))!;
    assert.match(who, new RegExp(`^\\* online here \\(${N + 2}\\): .*, and ${N + 2 - 50} more$`), 'the first 50 names and a count');
    assert.ok(Buffer.byteLength(who) < 2000, `/who is bounded (${Buffer.byteLength(who)} bytes)`);
    for (const p of crowd) p.destroy();
    await waitFor(() => server.connections.size === 2, 60000, 'crowd gone');
    const notices = (): string[] => bob.text.split('\n').filter((l) => l.startsWith('* ') && !l.startsWith('* you are'));
    await waitFor(() => tally(notices()).left === N, 10000, `all ${N} leaves told; got ${JSON.stringify(tally(notices()))}`);
    const elapsed = Date.now() - start;
    const lines = notices();
    // (bob, the crowd and carol: a member's own join is in the line it gets, too.)
    assert.deepEqual(tally(lines), { joined: N + 2, left: N }, 'every join and leave is counted');
    // At most one notice line per interval (plus the first, which is sent at once), however many joined.
    const bound = Math.ceil(elapsed / interval) + 2;
    assert.ok(lines.length <= bound, `${lines.length} notice lines in ${elapsed} ms, bound ${bound}`);
    assert.ok(bob.received.length <= 200 * bound + 2000, `${bob.received.length} bytes for bob`);
    carol.destroy();
    bob.destroy();
  } finally {
    for (const p of crowd) p.destroy();
    await server.close();
  }
});

test('chat: a dropped connection\'s pipelined lines are not answered or relayed', { timeout: 15000 }, async () => {
  const logs: string[] = [];
  // 4 KiB buffered (16 KiB queued in one round) is a few hundred /who answers; no rate limit, so the pipeline arrives at once.
  const server = await chatServer({ listen: 'text://127.0.0.1:0', log: (l) => logs.push(l), maxBufferedAmount: 4096, noticeInterval: 20, rateLimit: false });
  try {
    const port = portOf(server.addresses[0]!);
    const bob = await RawPeer.connect(port);
    bob.write('/nick bob\n');
    await bob.until((t) => t.includes('you are now bob'));
    const victim = await RawPeer.connect(port);
    victim.socket.pause();
    victim.write('/nick victim\n');
    await bob.until((t) => t.includes('is now victim'));
    victim.write('/who\n'.repeat(3000) + 'still talking\n');
    await bob.until((t) => t.includes('victim left'), 10000);
    assert.ok(logs.some((l) => l.includes('dropped slow reader')), 'the victim was dropped for not reading');
    // Let anything that would still be relayed arrive.
    bob.write('/who\n');
    await bob.until((t) => t.includes('online here (1): bob'));
    assert.ok(!bob.text.includes('victim: still talking'), 'nothing relayed after the drop');
    victim.destroy();
    bob.destroy();
  } finally {
    await server.close();
  }
});

test('chat: a flooder is slowed to the default rate limit at its source, and a reader that keeps up is not dropped', { timeout: 20000 }, async () => {
  const server = await chatServer({ listen: ['text://127.0.0.1:0'], log: quiet, noticeInterval: 20 });
  try {
    const port = portOf(server.addresses[0]!);
    const reader = await RawPeer.connect(port);
    await reader.until((t) => t.includes('you are guest'));
    const flooder = await RawPeer.connect(port);
    await flooder.until((t) => t.includes('you are guest'));
    flooder.write('/nick flood\n');
    await reader.until((t) => t.includes('flood'));
    const started = Date.now();
    // 20000 lines at once: without a limit every member gets them all in one burst.
    flooder.write(Array.from({ length: 20000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    await new Promise((r) => setTimeout(r, 1500));
    const elapsed = (Date.now() - started) / 1000;
    const relayed = (reader.text.match(/^flood: line \d+$/gm) ?? []).length;
    // burst 100, then 20 a second (and a little slack for timer granularity).
    assert.ok(relayed >= 100, `the burst got through (${relayed})`);
    assert.ok(relayed <= 100 + 20 * elapsed + 10, `slowed to the rate (${relayed} lines in ${elapsed} s)`);
    assert.equal(reader.closed, false, 'the reader is still connected');
    reader.write('still here\n');
    await flooder.until((t) => t.includes('still here'));
    reader.destroy();
    flooder.destroy();
  } finally {
    await server.close();
  }
});
