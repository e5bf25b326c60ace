// The outbox (src/core/outbox.ts) over plain values: what a connection queues in one round, how it
// is joined and measured, the send-buffer rule, and the queue of connections to flush.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admit, CONCAT_MAX, dropsNext, FlushQueue, Outbox, sizeOf, TEXT_JOIN_MAX } from '../src/core/outbox.js';

/** What a take() gives, as one buffer (a writev list concatenated). */
function taken(box: Outbox): Buffer | null {
  const out = box.take();
  if (out === null) return null;
  return Array.isArray(out) ? Buffer.concat(out) : out;
}

test('sizeOf: bytes exactly; text exactly in UTF-8, or at its upper bound of 3 bytes per UTF-16 unit', () => {
  assert.equal(sizeOf(null, true), 0);
  assert.equal(sizeOf(Buffer.alloc(7), false), 7);
  assert.equal(sizeOf('héllo', true), 6);
  assert.equal(sizeOf('héllo', false), 15);
  // 👍 is two UTF-16 units and four UTF-8 bytes: the bound (6) is still above it.
  assert.equal(sizeOf('👍', true), 4);
  assert.equal(sizeOf('👍', false), 6);
});

test('an empty outbox: push says when it was empty (one flush to schedule), take gives null', () => {
  const box = new Outbox();
  assert.equal(box.empty, true);
  assert.equal(box.take(), null);
  assert.equal(box.size(true), 0);
  assert.equal(box.push('a'), true);
  assert.equal(box.empty, false);
  assert.equal(box.push('b'), false);
  assert.equal(box.push(Buffer.from('c')), false);
  assert.equal(taken(box)!.toString(), 'abc');
  assert.equal(box.empty, true);
  assert.equal(box.push('again'), true, 'empty again after take');
});

test('text is joined as text and encoded once; its size is exact only when asked', () => {
  const box = new Outbox();
  box.push('héllo\n');
  box.push('wörld\n');
  assert.equal(box.size(true), Buffer.byteLength('héllo\nwörld\n'));
  assert.equal(box.size(false), 'héllo\nwörld\n'.length * 3);
  const out = box.take();
  assert.ok(Buffer.isBuffer(out), 'one buffer');
  assert.equal(out.toString('utf8'), 'héllo\nwörld\n');
});

test('buffers are joined into one buffer up to CONCAT_MAX, given as a writev list beyond', () => {
  const box = new Outbox();
  box.push(Buffer.from('ab'));
  box.push(Buffer.from('cd'));
  box.push(Buffer.from('ef'));
  assert.equal(box.size(false), 6);
  assert.equal(box.size(true), 6);
  const small = box.take();
  assert.ok(Buffer.isBuffer(small));
  assert.equal(small.toString(), 'abcdef');

  const big = Buffer.alloc(CONCAT_MAX, 1);
  box.push(big);
  box.push(Buffer.from([2, 3]));
  assert.equal(box.size(true), CONCAT_MAX + 2);
  const list = box.take();
  assert.ok(Array.isArray(list), 'past CONCAT_MAX: the buffers themselves, for writev');
  assert.equal(list.length, 2);
  assert.equal(list[0], big, 'not copied');
  assert.deepEqual([...list[1]!], [2, 3]);
});

test('order is kept across mixed text and buffers', () => {
  const box = new Outbox();
  box.push('one ');
  box.push('two ');
  box.push(Buffer.from('three '));
  box.push('four ');
  box.push(Buffer.from('five '));
  box.push('sïx');
  assert.equal(box.size(true), Buffer.byteLength('one two three four five sïx'));
  assert.equal(box.size(false), box.size(true), 'once bytes, the size is exact either way');
  assert.equal(taken(box)!.toString('utf8'), 'one two three four five sïx');

  // Bytes first, then text.
  box.push(Buffer.from('α'));
  box.push('β');
  assert.equal(taken(box)!.toString('utf8'), 'αβ');
});

test('joined text past TEXT_JOIN_MAX units becomes bytes (its size exact from then on), and order holds', () => {
  const box = new Outbox();
  const line = 'é'.repeat(100) + '\n';
  let expected = '';
  while (expected.length <= TEXT_JOIN_MAX) {
    box.push(line);
    expected += line;
  }
  assert.equal(box.size(false), Buffer.byteLength(expected), 'bytes now: no upper bound');
  box.push('tail');
  expected += 'tail';
  assert.equal(box.size(true), Buffer.byteLength(expected));
  assert.equal(taken(box)!.toString('utf8'), expected);
});

test('clear drops what is queued', () => {
  const box = new Outbox();
  box.push('x');
  box.push(Buffer.from('y'));
  box.clear();
  assert.equal(box.empty, true);
  assert.equal(box.size(true), 0);
  assert.equal(box.take(), null);
});

test("the protocol's last bytes are held apart: not counted, not taken, and queued after the messages once released", () => {
  const box = new Outbox();
  box.push('reply 1\n');
  box.hold(Buffer.from('CLOSE'));
  assert.equal(box.size(true), 'reply 1\n'.length, 'held bytes are not counted');
  box.push('reply 2\n');
  assert.equal(taken(box)!.toString(), 'reply 1\nreply 2\n', 'held bytes are not taken');
  box.push('reply 3\n');
  box.clear();
  const last = box.release();
  assert.equal(last!.toString(), 'CLOSE', 'clear keeps the held bytes');
  assert.equal(box.release(), null, 'given back once');
  box.push('reply 4\n');
  box.push(last!);
  assert.equal(taken(box)!.toString(), 'reply 4\nCLOSE');
  // A later hold replaces an earlier one.
  box.hold(Buffer.from('first'));
  box.hold(Buffer.from('second'));
  assert.equal(box.release()!.toString(), 'second');
});

test('admit: under the bound everything is taken, one big message included', () => {
  const box = new Outbox();
  const max = 1000;
  assert.equal(admit(box, 0, Buffer.alloc(10 * max), max, 'close'), 'take', 'one message of any size while nothing waits');
  assert.equal(admit(box, 0, Buffer.alloc(10 * max), max, 'drop'), 'take');
  box.push(Buffer.alloc(3 * max));
  assert.equal(admit(box, 0, Buffer.alloc(max), max, 'close'), 'take', 'a burst of this round up to four times the bound');
  assert.equal(admit(new Outbox(), max, Buffer.alloc(10), max, 'close'), 'take', 'unsent at the bound is not over it');
});

test('admit: text is measured exactly when its upper bound is over the ceiling', () => {
  const box = new Outbox();
  const max = 100;
  // 150 ASCII characters: 450 by the bound, 150 exactly. With 50 unsent the bound is over the
  // ceiling (530 > 400) and the exact size is not (210).
  box.push('a'.repeat(150));
  assert.equal(admit(box, 50, 'b'.repeat(10), max, 'close'), 'take');
  assert.equal(dropsNext(box, 50, max), false);
});

test("admit: 'close' takes past the bound and says so ('over'), and past four times the bound names a slow reader", () => {
  const box = new Outbox();
  const max = 1000;
  assert.equal(admit(box, max + 1, Buffer.alloc(10), max, 'close'), 'over', 'unsent from earlier rounds over the bound: the drain clock starts');
  box.push(Buffer.alloc(2 * max));
  assert.equal(admit(box, 0, Buffer.alloc(10), max, 'close'), 'take', 'over the bound by this round alone: no clock');
  assert.equal(admit(box, max, Buffer.alloc(max + 1), max, 'close'), 'ceiling');
  assert.equal(admit(box, max + 1, Buffer.alloc(2 * max), max, 'close'), 'ceiling');
});

test("admit and dropsNext: 'drop' drops past the bound of unsent bytes, or past the ceiling", () => {
  const box = new Outbox();
  const max = 1000;
  assert.equal(admit(box, max + 1, Buffer.alloc(1), max, 'drop'), 'drop');
  assert.equal(dropsNext(box, max + 1, max), true);
  assert.equal(dropsNext(box, max, max), false);
  box.push(Buffer.alloc(3 * max));
  assert.equal(admit(box, 0, Buffer.alloc(max), max, 'drop'), 'take', 'exactly at the ceiling');
  assert.equal(admit(box, 0, Buffer.alloc(max + 1), max, 'drop'), 'drop', 'over the ceiling');
  assert.equal(dropsNext(box, 0, max), false);
  box.push(Buffer.alloc(max + 1));
  assert.equal(dropsNext(box, 0, max), true, 'past the ceiling: the next one is dropped');
});

test('FlushQueue: one hook call per round, every item flushed in order, flushes that write again wait for the next round', () => {
  const rounds: (() => void)[] = [];
  const hook = { afterRound: (run: () => void): void => void rounds.push(run) };
  const queue = new FlushQueue<{ flush(): void }>();
  const flushed: string[] = [];
  const item = (name: string, again?: () => void): { flush(): void } => ({ flush: () => { flushed.push(name); again?.(); } });
  const a = item('a');
  const c = item('c');
  const b = item('b', () => queue.add(c, hook));
  queue.add(a, hook);
  queue.add(b, hook);
  assert.equal(rounds.length, 1, 'the first item asks for the round, the others join it');
  assert.equal(queue.size, 2);
  rounds.shift()!();
  assert.deepEqual(flushed, ['a', 'b']);
  assert.equal(rounds.length, 1, 'what a flush queued waits for the next round');
  assert.equal(queue.size, 1);
  rounds.shift()!();
  assert.deepEqual(flushed, ['a', 'b', 'c']);
  assert.equal(queue.size, 0);
  assert.equal(rounds.length, 0);
});
