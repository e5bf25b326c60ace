/**
 * WebSocket codec conformance, sans-I/O: a server session driven with Buffers, modelled on the
 * Autobahn|Testsuite case groups 1 (framing), 2 (pings), 3 (reserved bits), 4 (opcodes),
 * 5 (fragmentation), 6 (UTF-8), 7 (close) and 9 (large messages, moderate sizes).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeCodeOf, closePayload, feedBytewise, frame, openServer, parseFrames } from './ws-helpers.js';
import { encodeClose, encodeFrame, Opcode } from '../src/codec/websocket/sender.js';
import { applyMask } from '../src/codec/websocket/mask.js';
import { Utf8Validator } from '../src/codec/websocket/utf8.js';

const T = { timeout: 10_000 };

function endsWith(r: ReturnType<typeof openServer>['r'], code: number): void {
  assert.ok(r.end, 'session should have ended');
  assert.equal(r.end.code, code, `end code (reason: ${r.end.reason})`);
  const frames = parseFrames(r.written());
  const last = frames[frames.length - 1];
  assert.ok(last && last.opcode === Opcode.CLOSE, 'a close frame was sent');
  assert.equal(closeCodeOf(last), code);
  assert.equal(last.masked, false, 'server frames are not masked');
}

describe('ws codec: framing (Autobahn 1.x)', () => {
  for (const len of [0, 1, 125, 126, 127, 128, 65535, 65536, 200_000]) {
    it(`text and binary of ${len} bytes, whole and byte by byte`, T, () => {
      const text = 'a'.repeat(len);
      const bin = Buffer.alloc(len, 0xfe);
      const { s, r } = openServer();
      s.receive(frame({ opcode: 1, payload: text }));
      s.receive(frame({ opcode: 2, payload: bin }));
      if (len <= 65536) feedBytewise(s, Buffer.concat([frame({ opcode: 1, payload: text }), frame({ opcode: 2, payload: bin })]));
      assert.equal(r.end, null);
      assert.equal(r.messages[0], text);
      assert.deepEqual(r.messages[1], bin);
      if (len <= 65536) {
        assert.equal(r.messages[2], text);
        assert.deepEqual(r.messages[3], bin);
      }
    });
  }

  it('many frames in one chunk are all delivered in order', T, () => {
    const { s, r } = openServer();
    const frames = [];
    for (let i = 0; i < 100; i++) frames.push(frame({ opcode: 1, payload: `m${i}` }));
    s.receive(Buffer.concat(frames));
    assert.deepEqual(r.messages, Array.from({ length: 100 }, (_, i) => `m${i}`));
  });

  it('a 16-bit length form for a short payload is accepted (lengths need not be minimal)', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 1, payload: 'hi', lenForm: 16 }));
    s.receive(frame({ opcode: 1, payload: 'hi', lenForm: 64 }));
    assert.deepEqual(r.messages, ['hi', 'hi']);
  });

  it('an unmasked client frame closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 1, payload: 'x', mask: false }));
    endsWith(r, 1002);
    assert.deepEqual(r.messages, []);
  });

  it('a 64-bit length with the top bit set (2^63) closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 2, fakeLength: 1n << 63n, lenForm: 64 }));
    endsWith(r, 1002);
  });

  it('a length over 2^53 - 1 closes with 1009', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 2, fakeLength: 1n << 60n, lenForm: 64 }));
    endsWith(r, 1009);
  });

  it('a frame over the message limit closes with 1009 as soon as its header arrives', T, () => {
    const { s, r } = openServer({ maxMessageSize: 1000 });
    // Header only: the payload never comes, yet the session ends without buffering anything.
    s.receive(frame({ opcode: 2, payload: Buffer.alloc(1001) }).subarray(0, 8));
    endsWith(r, 1009);
  });

  it('server frames: unmasked, every length form, one allocation with the payload', T, () => {
    for (const len of [0, 125, 126, 65535, 65536]) {
      const [f] = parseFrames(encodeFrame(Opcode.BINARY, Buffer.alloc(len, 7), false));
      assert.equal(f!.masked, false);
      assert.equal(f!.payload.length, len);
      assert.ok(f!.payload.every((b) => b === 7));
    }
  });

  it('client frames: masked with a fresh mask each time', T, () => {
    const a = encodeFrame(Opcode.TEXT, 'same text here', true);
    const b = encodeFrame(Opcode.TEXT, 'same text here', true);
    assert.notDeepEqual(a, b);
    assert.equal(parseFrames(a)[0]!.payload.toString(), 'same text here');
    assert.equal(parseFrames(b)[0]!.masked, true);
  });

  it('masking equals byte-by-byte masking at every alignment, phase and tail length, on every path (bytes, words, native)', T, () => {
    const mask = Buffer.from([0x12, 0x34, 0x56, 0x78, 0x9a]);
    const lengths = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 127, 128, 129, 191, 192, 193, 255, 256, 257];
    for (let n = 1017; n <= 1031; n++) lengths.push(n);
    for (const length of lengths) {
      for (let start = 0; start < 9; start++) {
        for (let phase = 0; phase < 4; phase++) {
          const maskAt = (start + phase) % 2; // the mask read from an odd offset too
          const data = Buffer.from(Array.from({ length: length + 20 }, (_, i) => (i * 7) & 0xff));
          const expect = Buffer.from(data);
          for (let i = start; i < start + length; i++) expect[i]! ^= mask[maskAt + ((i - start + phase) & 3)]!;
          applyMask(data, start, start + length, mask, maskAt, phase);
          assert.deepEqual(data, expect, `length ${length}, start ${start}, phase ${phase}`);
        }
      }
    }
  });
});

describe('ws codec: pings and pongs (Autobahn 2.x)', () => {
  it('a ping is answered with a pong carrying the same payload', T, () => {
    for (const payload of [Buffer.alloc(0), Buffer.from('hello'), Buffer.from([0, 0xff, 0xfe, 0x80]), Buffer.alloc(125, 0xab)]) {
      const { s, r } = openServer();
      s.receive(frame({ opcode: 9, payload }));
      const [f] = parseFrames(r.written());
      assert.equal(f!.opcode, Opcode.PONG);
      assert.deepEqual(f!.payload, payload);
    }
  });

  it('a ping of 126 bytes closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 9, payload: Buffer.alloc(126) }));
    endsWith(r, 1002);
  });

  it('an unsolicited pong is reported and otherwise ignored', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 10, payload: 'unsolicited' }));
    assert.equal(r.writes.length, 0);
    assert.equal(r.end, null);
    assert.equal(r.pongs[0]!.toString(), 'unsolicited');
  });

  it('ten pings in one chunk get ten pongs in order; byte by byte too', T, () => {
    const { s, r } = openServer();
    const pings = Array.from({ length: 10 }, (_, i) => frame({ opcode: 9, payload: `p${i}` }));
    s.receive(Buffer.concat(pings));
    feedBytewise(s, Buffer.concat(Array.from({ length: 10 }, (_, i) => frame({ opcode: 9, payload: `q${i}` }))));
    const pongs = parseFrames(r.written()).map((f) => f.payload.toString());
    assert.deepEqual(pongs, [...Array.from({ length: 10 }, (_, i) => `p${i}`), ...Array.from({ length: 10 }, (_, i) => `q${i}`)]);
  });

  it('a fragmented ping closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 9, fin: false, payload: 'a' }));
    endsWith(r, 1002);
  });
});

describe('ws codec: reserved bits (Autobahn 3.x)', () => {
  for (const rsv of [1, 2, 3, 4, 5, 6, 7]) {
    it(`RSV=${rsv} without an extension closes with 1002, after delivering what came before`, T, () => {
      const { s, r } = openServer();
      s.receive(Buffer.concat([frame({ opcode: 1, payload: 'before' }), frame({ opcode: 1, rsv, payload: 'x' }), frame({ opcode: 1, payload: 'after' })]));
      assert.deepEqual(r.messages, ['before']);
      endsWith(r, 1002);
    });
  }
  it('RSV on a ping closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 9, rsv: 4 }));
    endsWith(r, 1002);
  });
});

describe('ws codec: opcodes (Autobahn 4.x)', () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    it(`reserved opcode ${opcode} closes with 1002`, T, () => {
      const { s, r } = openServer();
      s.receive(Buffer.concat([frame({ opcode: 1, payload: 'ok' }), frame({ opcode, payload: 'x' })]));
      assert.deepEqual(r.messages, ['ok']);
      endsWith(r, 1002);
    });
  }
});

describe('ws codec: fragmentation (Autobahn 5.x)', () => {
  it('text in fragments, with pings interleaved, byte by byte and whole', T, () => {
    for (const bytewise of [false, true]) {
      const { s, r } = openServer();
      const bytes = Buffer.concat([
        frame({ opcode: 1, fin: false, payload: 'frag' }),
        frame({ opcode: 9, payload: 'ping1' }),
        frame({ opcode: 0, fin: false, payload: 'men' }),
        frame({ opcode: 9, payload: 'ping2' }),
        frame({ opcode: 0, fin: false, payload: '' }),
        frame({ opcode: 0, fin: true, payload: 'ted' }),
      ]);
      if (bytewise) feedBytewise(s, bytes);
      else s.receive(bytes);
      assert.deepEqual(r.messages, ['fragmented']);
      const pongs = parseFrames(r.written());
      assert.deepEqual(pongs.map((f) => [f.opcode, f.payload.toString()]), [[10, 'ping1'], [10, 'ping2']]);
    }
  });

  it('binary in 1000 one-byte fragments', T, () => {
    const { s, r } = openServer();
    const parts = [frame({ opcode: 2, fin: false, payload: Buffer.from([0]) })];
    for (let i = 1; i < 999; i++) parts.push(frame({ opcode: 0, fin: false, payload: Buffer.from([i & 0xff]) }));
    parts.push(frame({ opcode: 0, fin: true, payload: Buffer.from([999 & 0xff]) }));
    s.receive(Buffer.concat(parts));
    assert.deepEqual(r.messages[0], Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff)));
  });

  it('a continuation without a start closes with 1002', T, () => {
    for (const fin of [true, false]) {
      const { s, r } = openServer();
      s.receive(frame({ opcode: 0, fin, payload: 'x' }));
      endsWith(r, 1002);
    }
  });

  it('a new data frame inside a fragmented message closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(Buffer.concat([frame({ opcode: 1, fin: false, payload: 'a' }), frame({ opcode: 1, fin: true, payload: 'b' })]));
    endsWith(r, 1002);
    assert.deepEqual(r.messages, []);
  });

  it('more fragments than maxFragments close with 1009', T, () => {
    const { s, r } = openServer({ ws: { maxFragments: 10 } });
    const parts = [frame({ opcode: 2, fin: false, payload: 'x' })];
    for (let i = 0; i < 20; i++) parts.push(frame({ opcode: 0, fin: false, payload: 'x' }));
    s.receive(Buffer.concat(parts));
    endsWith(r, 1009);
  });

  it('fragments adding up past the message limit close with 1009', T, () => {
    const { s, r } = openServer({ maxMessageSize: 100 });
    s.receive(Buffer.concat([frame({ opcode: 2, fin: false, payload: Buffer.alloc(60) }), frame({ opcode: 0, fin: false, payload: Buffer.alloc(60) })]));
    endsWith(r, 1009);
  });
});

// Byte sequences from Autobahn 6.x (Markus Kuhn's UTF-8 decoder stress test).
const VALID_UTF8: Array<[string, Buffer]> = [
  ['Hello-µ@ßöäüàá-UTF-8!!', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8')],
  ['κόσμε', Buffer.from('cebae1bdb9cf83cebcceb5', 'hex')],
  ['first of each length', Buffer.from('00c280e0a080f0908080', 'hex')],
  ['last of each length', Buffer.from('7fdfbfefbfbff48fbfbf', 'hex')],
  ['U+FFFE and U+FFFF noncharacters are valid', Buffer.from('efbfbeefbfbf', 'hex')],
  ['boundary U+D7FF, U+E000, U+FFFD', Buffer.from('ed9fbfee8080efbfbd', 'hex')],
];
const INVALID_UTF8: Array<[string, Buffer]> = [
  ['lone continuation byte', Buffer.from('80', 'hex')],
  ['overlong /', Buffer.from('c0af', 'hex')],
  ['overlong NUL in 3 bytes', Buffer.from('e08080', 'hex')],
  ['overlong in 4 bytes', Buffer.from('f08080af', 'hex')],
  ['UTF-16 surrogate U+D800', Buffer.from('eda080', 'hex')],
  ['UTF-16 surrogate U+DFFF', Buffer.from('edbfbf', 'hex')],
  ['above U+10FFFF', Buffer.from('f4908080', 'hex')],
  ['byte FE', Buffer.from('fe', 'hex')],
  ['byte FF', Buffer.from('ff', 'hex')],
  ['5-byte form', Buffer.from('f888808080', 'hex')],
  ['truncated 3-byte at the end', Buffer.from('61e282', 'hex')],
  ['κόσμε with an invalid byte inside', Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex')],
];

describe('ws codec: UTF-8 (Autobahn 6.x)', () => {
  for (const [name, bytes] of VALID_UTF8) {
    it(`valid: ${name}, whole, in 1-byte fragments and byte by byte`, T, () => {
      const { s, r } = openServer();
      s.receive(frame({ opcode: 1, payload: bytes }));
      const parts = [];
      for (let i = 0; i < bytes.length; i++) {
        parts.push(frame({ opcode: i === 0 ? 1 : 0, fin: i === bytes.length - 1, payload: bytes.subarray(i, i + 1) }));
      }
      s.receive(Buffer.concat(parts));
      feedBytewise(s, frame({ opcode: 1, payload: bytes }));
      assert.equal(r.end, null, r.end?.reason);
      assert.deepEqual(r.messages, [bytes.toString('utf8'), bytes.toString('utf8'), bytes.toString('utf8')]);
    });
  }
  for (const [name, bytes] of INVALID_UTF8) {
    it(`invalid: ${name} closes with 1007 (whole, fragmented, byte by byte)`, T, () => {
      for (const mode of ['whole', 'fragments', 'bytewise']) {
        const { s, r } = openServer();
        if (mode === 'whole') s.receive(frame({ opcode: 1, payload: bytes }));
        else if (mode === 'bytewise') feedBytewise(s, frame({ opcode: 1, payload: bytes }));
        else {
          for (let i = 0; i < bytes.length && !r.end; i++) {
            s.receive(frame({ opcode: i === 0 ? 1 : 0, fin: i === bytes.length - 1, payload: bytes.subarray(i, i + 1) }));
          }
        }
        assert.deepEqual(r.messages, [], mode);
        endsWith(r, 1007);
      }
    });
  }

  it('fails fast: an invalid byte in the first fragment ends the connection before the message ends', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 1, fin: false, payload: Buffer.from('cebae1bdb9cf83cebcceb5eda080', 'hex') }));
    endsWith(r, 1007);
  });

  it('fails fast inside one frame split over chunks (Autobahn 6.4.3)', T, () => {
    const { s, r } = openServer();
    const payload = Buffer.concat([Buffer.from('cebae1bdb9cf83cebcceb5', 'hex'), Buffer.from('f4908080', 'hex'), Buffer.from('656469746564', 'hex')]);
    const f = frame({ opcode: 1, payload });
    // Header plus the first 15 payload bytes (through the invalid F4 90): the rest never comes.
    s.receive(f.subarray(0, 6 + 13));
    endsWith(r, 1007);
  });

  it('a code point split across fragments is fine', T, () => {
    const { s, r } = openServer();
    const euro = Buffer.from('€', 'utf8');
    s.receive(Buffer.concat([
      frame({ opcode: 1, fin: false, payload: euro.subarray(0, 1) }),
      frame({ opcode: 0, fin: false, payload: euro.subarray(1, 2) }),
      frame({ opcode: 0, fin: true, payload: euro.subarray(2) }),
    ]));
    assert.deepEqual(r.messages, ['€']);
  });

  it('the incremental validator agrees with a reference decoder on random bytes', T, () => {
    let seed = 42;
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    for (let n = 0; n < 3000; n++) {
      const len = rnd() % 12;
      const bytes = Buffer.from(Array.from({ length: len }, () => {
        const k = rnd() % 4;
        return k === 0 ? rnd() & 0x7f : k === 1 ? 0x80 | (rnd() & 0x3f) : 0xc0 + (rnd() % 0x40);
      }));
      const v = new Utf8Validator();
      const cut = len === 0 ? 0 : rnd() % len;
      const ok = v.push(bytes, 0, cut) && v.push(bytes, cut, len) && v.complete;
      let ref = true;
      try { new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { ref = false; }
      assert.equal(ok, ref, bytes.toString('hex'));
    }
  });
});

describe('ws codec: close handshake (Autobahn 7.x)', () => {
  it('a close with a code is echoed with that code, then the session ends', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 8, payload: closePayload(1000, 'bye') }));
    const [f] = parseFrames(r.written());
    assert.equal(f!.opcode, 8);
    assert.equal(closeCodeOf(f!), 1000);
    assert.deepEqual(r.end, { code: 1000, reason: 'bye' });
  });

  it('an empty close is answered with an empty close; the code reported is 1005', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 8 }));
    const [f] = parseFrames(r.written());
    assert.equal(f!.payload.length, 0);
    assert.equal(r.end!.code, 1005);
  });

  it('frames after the close are ignored (no pong, no message)', T, () => {
    const { s, r } = openServer();
    s.receive(Buffer.concat([frame({ opcode: 8, payload: closePayload(1000) }), frame({ opcode: 9, payload: 'p' }), frame({ opcode: 1, payload: 'm' })]));
    s.receive(frame({ opcode: 1, payload: 'later' }));
    assert.equal(parseFrames(r.written()).length, 1);
    assert.deepEqual(r.messages, []);
  });

  it('a 1-byte close payload closes with 1002', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 8, payload: Buffer.from([0x03]) }));
    endsWith(r, 1002);
  });

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    it(`valid close code ${code} is echoed`, T, () => {
      const { s, r } = openServer();
      s.receive(frame({ opcode: 8, payload: closePayload(code) }));
      assert.equal(closeCodeOf(parseFrames(r.written())[0]!), code);
      assert.equal(r.end!.code, code);
      assert.equal(r.end!.error, undefined);
    });
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`invalid close code ${code} closes with 1002`, T, () => {
      const { s, r } = openServer();
      s.receive(frame({ opcode: 8, payload: closePayload(code) }));
      endsWith(r, 1002);
    });
  }

  it('a 123-byte reason is accepted; invalid UTF-8 in the reason closes with 1007', T, () => {
    const a = openServer();
    a.s.receive(frame({ opcode: 8, payload: closePayload(1000, 'r'.repeat(123)) }));
    assert.equal(a.r.end!.reason, 'r'.repeat(123));
    const b = openServer();
    b.s.receive(frame({ opcode: 8, payload: closePayload(1000, Buffer.from('cebae1bdb9cf83cebcceb5eda080', 'hex')) }));
    endsWith(b.r, 1007);
  });

  it('close(): sends a close frame, awaits the peer, and ends on the answer', T, () => {
    const { s, r } = openServer();
    const { bytes, awaitsPeer } = s.close(4001, 'done');
    assert.equal(awaitsPeer, true);
    const [f] = parseFrames(bytes!);
    assert.equal(closeCodeOf(f!), 4001);
    assert.equal(f!.payload.toString('utf8', 2), 'done');
    // Messages in flight are still delivered; pings are no longer answered.
    s.receive(frame({ opcode: 1, payload: 'late' }));
    s.receive(frame({ opcode: 9, payload: 'p' }));
    assert.deepEqual(r.messages, ['late']);
    assert.equal(r.writes.length, 0);
    s.receive(frame({ opcode: 8, payload: closePayload(4001) }));
    assert.equal(r.writes.length, 0, 'no second close');
    assert.equal(r.end!.code, 4001);
    assert.deepEqual(s.close(), { bytes: null, awaitsPeer: false });
  });

  it('reserved codes are never sent; long reasons are cut on a character boundary', T, () => {
    for (const code of [1005, 1006, 1015, 999, 5000]) assert.throws(() => encodeClose(code, '', false), { code: 'ERR_INVALID_OPTION' });
    const { s } = openServer();
    assert.throws(() => s.close(1006));
    const [f] = parseFrames(encodeClose(1000, 'é'.repeat(100), false));
    assert.equal(f!.payload.length, 2 + 122);
    assert.equal(f!.payload.toString('utf8', 2), 'é'.repeat(61));
  });
});

describe('ws codec: large messages (Autobahn 9.x, moderate sizes)', () => {
  for (const size of [64 * 1024, 256 * 1024, 1024 * 1024]) {
    it(`text and binary of ${size} bytes in chunks of 997 and in 64-byte fragments`, T, () => {
      const { s, r } = openServer({ maxMessageSize: 2 << 20 });
      const text = 'Hello, 世界! '.repeat(Math.ceil(size / 16)).slice(0, size / 2);
      const bin = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bin[i] = (i * 31) & 0xff;
      const whole = Buffer.concat([frame({ opcode: 1, payload: text }), frame({ opcode: 2, payload: bin })]);
      for (let off = 0; off < whole.length; off += 997) s.receive(whole.subarray(off, off + 997));
      const frags = [];
      for (let off = 0; off < bin.length; off += 64) {
        frags.push(frame({ opcode: off === 0 ? 2 : 0, fin: off + 64 >= bin.length, payload: bin.subarray(off, off + 64) }));
      }
      s.receive(Buffer.concat(frags));
      assert.equal(r.end, null, r.end?.reason);
      assert.equal(r.messages[0], text);
      assert.deepEqual(r.messages[1], bin);
      assert.deepEqual(r.messages[2], bin);
    });
  }
});
