import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineDecoder, lineEncoder } from '../src/codec/line.js';
import { FrameDecoder, frameEncoder } from '../src/codec/frame.js';
import { ProtocolError } from '../src/errors.js';

test('line decoder: \\n and \\r\\n, lines across chunks', () => {
  const d = new LineDecoder(100);
  const out: string[] = [];
  d.push(Buffer.from('one\r\ntw'), (l) => out.push(l));
  d.push(Buffer.from('o\nthree\r'), (l) => out.push(l));
  d.push(Buffer.from('\n\n'), (l) => out.push(l));
  assert.deepEqual(out, ['one', 'two', 'three', '']);
});

test('line decoder: a multi-byte character split across chunks decodes whole', () => {
  const bytes = Buffer.from('héllo 世界👍🏽\n');
  for (let cut = 1; cut < bytes.length - 1; cut++) {
    const d = new LineDecoder(100);
    const out: string[] = [];
    d.push(bytes.subarray(0, cut), (l) => out.push(l));
    d.push(bytes.subarray(cut), (l) => out.push(l));
    assert.deepEqual(out, ['héllo 世界👍🏽'], `cut at ${cut}`);
  }
});

test('line decoder: a line over the bound fails, even before its newline arrives', () => {
  const d = new LineDecoder(8);
  assert.throws(() => d.push(Buffer.from('0123456789'), () => {}), (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_LINE_TOO_LONG');
  const d2 = new LineDecoder(8);
  const out: string[] = [];
  d2.push(Buffer.from('01234567\r\n'), (l) => out.push(l));
  assert.deepEqual(out, ['01234567']);
  assert.throws(() => d2.push(Buffer.from('012345678\n'), () => {}), /limit of 8 bytes/);
});

test('line encoder appends one newline', () => {
  assert.equal(lineEncoder.encode('héllo').toString(), 'héllo\n');
  assert.equal(lineEncoder.encode(Buffer.from('x')).toString(), 'x\n');
});

test('frame codec: round trip, split anywhere, several per chunk, empty frames', () => {
  const msgs = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world'), Buffer.alloc(300, 7)];
  const wire = Buffer.concat(msgs.map((m) => frameEncoder.encode(m)));
  for (let cut = 0; cut <= wire.length; cut += 3) {
    const d = new FrameDecoder(1000);
    const out: Buffer[] = [];
    d.push(wire.subarray(0, cut), (f) => out.push(Buffer.from(f)));
    d.push(wire.subarray(cut), (f) => out.push(Buffer.from(f)));
    assert.deepEqual(out, msgs, `cut at ${cut}`);
  }
  assert.deepEqual(frameEncoder.encode('hé').subarray(0, 4), Buffer.from([0, 0, 0, 3]));
});

test('frame codec: a length over the bound fails as soon as the header is read', () => {
  const d = new FrameDecoder(10);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(11);
  assert.throws(() => d.push(head, () => {}), (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PAYLOAD_TOO_LARGE');
  const d2 = new FrameDecoder(2 ** 31);
  const huge = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => d2.push(huge, () => {}), /over the limit/);
});

test('frame and line decoders: large messages in uneven pieces (buffers grow as bytes arrive) arrive intact', () => {
  const big = Buffer.alloc(200_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const wire = Buffer.concat([frameEncoder.encode(big), frameEncoder.encode(Buffer.from('tail'))]);
  const line = 'ü'.repeat(70_000);
  const text = Buffer.from(`${line}\r\nshort\n`);
  for (const step of [1, 3, 997, 65_536]) {
    const frames: Buffer[] = [];
    const d = new FrameDecoder(1 << 20);
    const lines: string[] = [];
    const l = new LineDecoder(1 << 20);
    for (let off = 0; off < wire.length; off += step) d.push(wire.subarray(off, off + step), (f) => frames.push(Buffer.from(f)));
    for (let off = 0; off < text.length; off += step) l.push(text.subarray(off, off + step), (s) => lines.push(s));
    assert.equal(frames.length, 2, `step ${step}`);
    assert.ok(frames[0]!.equals(big), `step ${step}`);
    assert.equal(frames[1]!.toString(), 'tail');
    assert.deepEqual(lines, [line, 'short'], `step ${step}`);
    assert.equal(d.pendingMessage, 0);
    assert.equal(l.pendingMessage, 0);
  }
});
