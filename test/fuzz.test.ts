/**
 * Bad input never crashes: seeded random bytes and mutated valid frames, fed in random chunk sizes
 * to every protocol session. Whatever arrives, receive() does not throw, the session ends at most
 * once, nothing is delivered after the end, and every message respects the size bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, constants as Z } from 'node:zlib';
import type { CloseInfo, Message, ProtocolEvents, ProtocolSession } from '../src/codec/types.js';
import { LineSession } from '../src/codec/line.js';
import { FrameSession } from '../src/codec/frame.js';
import { frame, makeSession, openServer, upgradeRequest } from './ws-helpers.js';

/** mulberry32: a small seeded generator, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Watch implements ProtocolEvents {
  messages = 0;
  ends = 0;
  afterEnd = 0;
  largest = 0;
  onOpen(): void {}
  onMessage(m: Message): void {
    this.messages++;
    if (this.ends > 0) this.afterEnd++;
    // A string's length in UTF-16 units is at most its wire bytes (an invalid byte decodes to one
    // U+FFFD, which re-encodes to three bytes, so Buffer.byteLength would overstate it).
    this.largest = Math.max(this.largest, m.length);
  }
  onWrite(): void {}
  onEnd(_info: CloseInfo): void {
    this.ends++;
  }
}

function feed(session: ProtocolSession, bytes: Buffer, rand: () => number): void {
  for (let i = 0; i < bytes.length;) {
    const n = 1 + Math.floor(rand() * Math.min(300, bytes.length - i));
    session.receive(bytes.subarray(i, i + n));
    i += n;
  }
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A stream of plausible client frames (some compressed), then random bit flips in it. */
function mutatedFrames(rand: () => number): Buffer {
  const parts: Buffer[] = [];
  const count = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < count; i++) {
    const kind = Math.floor(rand() * 6);
    const payload = randomBytes(rand, Math.floor(rand() * (rand() < 0.1 ? 3000 : 40)));
    if (kind === 0) parts.push(frame({ opcode: 1, payload: Buffer.from('héllo wörld 世界') }));
    else if (kind === 1) parts.push(frame({ opcode: 2, payload }));
    else if (kind === 2) parts.push(frame({ opcode: 9, payload: payload.subarray(0, 125) }));
    else if (kind === 3) parts.push(frame({ opcode: 1, fin: false, payload: Buffer.from('part') }), frame({ opcode: 0, payload: Buffer.from('s') }));
    else if (kind === 4) {
      const z = deflateRawSync(Buffer.from('compressed text '.repeat(5)), { finishFlush: Z.Z_SYNC_FLUSH });
      parts.push(frame({ opcode: 1, rsv: 4, payload: z.subarray(0, z.length - 4) }));
    } else parts.push(frame({ opcode: Math.floor(rand() * 16), rsv: Math.floor(rand() * 8), payload }));
  }
  const bytes = Buffer.concat(parts);
  const flips = Math.floor(rand() * 4);
  for (let i = 0; i < flips && bytes.length > 0; i++) bytes[Math.floor(rand() * bytes.length)]! ^= 1 << Math.floor(rand() * 8);
  return bytes;
}

const ROUNDS = 400;
const LIMIT = 4096;

function check(w: Watch, what: string): void {
  assert.ok(w.ends <= 1, `${what}: ended ${w.ends} times`);
  assert.equal(w.afterEnd, 0, `${what}: messages after the end`);
  assert.ok(w.largest <= LIMIT, `${what}: a message of ${w.largest} bytes passed the ${LIMIT} bound`);
}

test('line and frame sessions: random bytes in random chunks', () => {
  for (let seed = 1; seed <= ROUNDS; seed++) {
    const rand = rng(seed);
    const bytes = randomBytes(rand, Math.floor(rand() * 20000));
    for (const make of [(w: Watch) => new LineSession(w, LIMIT), (w: Watch) => new FrameSession(w, LIMIT)]) {
      const w = new Watch();
      const s = make(w);
      s.start();
      feed(s, bytes, rand);
      check(w, `seed ${seed} ${s.constructor.name}`);
    }
  }
});

test('WebSocket server: random bytes instead of a handshake, and mutated frames after one', () => {
  let delivered = 0;
  let ended = 0;
  for (let seed = 1; seed <= ROUNDS; seed++) {
    const rand = rng(seed);
    // Garbage, or a real request with garbage behind it.
    {
      const { s } = makeSession({ maxMessageSize: LIMIT });
      const bytes = rand() < 0.5 ? randomBytes(rand, Math.floor(rand() * 3000)) : Buffer.concat([upgradeRequest(), randomBytes(rand, 500)]);
      assert.doesNotThrow(() => feed(s, bytes, rand), `seed ${seed}: handshake garbage`);
    }
    for (const deflate of [false, true]) {
      const w = new Watch();
      const { s } = openServer({ maxMessageSize: LIMIT, ws: { perMessageDeflate: deflate } },
        deflate ? { 'Sec-WebSocket-Extensions': 'permessage-deflate' } : {});
      // The helper records on its own Recorder; watch the same session through a second feed of events.
      const sink = (s as unknown as { events: ProtocolEvents }).events as unknown as { onMessage: (m: Message) => void; onEnd: (i: CloseInfo) => void };
      const origMessage = sink.onMessage.bind(sink);
      const origEnd = sink.onEnd.bind(sink);
      sink.onMessage = (m) => { w.onMessage(m); origMessage(m); };
      sink.onEnd = (i) => { w.onEnd(i); origEnd(i); };
      assert.doesNotThrow(() => feed(s, mutatedFrames(rand), rand), `seed ${seed} deflate=${deflate}`);
      check(w, `seed ${seed} deflate=${deflate}`);
      delivered += w.messages;
      ended += w.ends;
    }
  }
  // Not vacuous: the mutated streams both deliver messages and break the rules.
  assert.ok(delivered > ROUNDS, `only ${delivered} messages delivered`);
  assert.ok(ended > ROUNDS / 2, `only ${ended} sessions ended`);
});

test('WebSocket server, inflate budget of one byte: held and resumed input gives the same messages, writes and end', () => {
  let yields = 0;
  for (let seed = 1; seed <= ROUNDS; seed++) {
    const stream = mutatedFrames(rng(seed));
    const run = (budget: number | undefined): { messages: Message[]; written: Buffer; end: number | undefined } => {
      const bytes = Buffer.from(stream); // a copy each: the receiver unmasks in place
      const { s, r } = openServer({ maxMessageSize: LIMIT, ws: { perMessageDeflate: budget === undefined ? true : { inflateBudget: budget } } },
        { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      let held = false;
      if (budget !== undefined) {
        (r as ProtocolEvents).onYield = () => {
          assert.ok(!held, `seed ${seed}: onYield twice without a resume`);
          held = true;
          yields++;
        };
      }
      // The same chunking in both runs; resumes come at random points between chunks, as rounds do.
      const rand = rng(seed * 7919);
      for (let i = 0; i < bytes.length;) {
        const n = 1 + Math.floor(rand() * Math.min(300, bytes.length - i));
        s.receive(bytes.subarray(i, i + n));
        i += n;
        if (held && rand() < 0.5) {
          held = false;
          s.resume();
        }
      }
      for (let k = 0; held && k < 10_000; k++) {
        held = false;
        s.resume();
      }
      assert.ok(!held, `seed ${seed}: still held`);
      return { messages: r.messages, written: r.written(), end: r.end?.code };
    };
    assert.deepEqual(run(1), run(undefined), `seed ${seed}`);
  }
  assert.ok(yields > ROUNDS / 4, `only ${yields} yields: the held path was hardly taken`);
});

test('WebSocket client: random bytes instead of the 101 answer', () => {
  for (let seed = 1; seed <= ROUNDS; seed++) {
    const rand = rng(seed);
    const { s } = makeSession({ role: 'client', maxMessageSize: LIMIT });
    const junk = rand() < 0.5 ? randomBytes(rand, Math.floor(rand() * 2000))
      : Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'), randomBytes(rand, 300)]);
    assert.doesNotThrow(() => feed(s, junk, rand), `seed ${seed}`);
  }
});
