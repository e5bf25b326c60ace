/**
 * permessage-deflate (RFC 7692), sans-I/O, modelled on Autobahn groups 12 (payload sizes with
 * compression) and 13 (parameter combinations): negotiation of all four parameters, multiple
 * offers and invalid ones, compression round trips with and without context takeover across
 * many messages, bounds on inflated size, and RSV1 rules.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { frame, makeSession, openServer, parseFrames, upgradeRequest } from './ws-helpers.js';
import { wireBytes } from '../src/codec/types.js';
import {
  acceptServerResponse, clientOffer, negotiateServer, parseExtensions, PerMessageDeflate, type DeflateParams,
} from '../src/codec/websocket/deflate.js';

const T = { timeout: 20_000 };

function negotiate(offer: string, o = {}): string | null {
  return negotiateServer(parseExtensions(offer)!, o)?.response ?? null;
}

describe('ws deflate: negotiation', () => {
  it('parses extension lists with quoted values and white space', T, () => {
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits="10" ; server_no_context_takeover, x-foo'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10'], ['server_no_context_takeover', true]] },
      { name: 'x-foo', params: [] },
    ]);
    for (const bad of ['permessage-deflate;', ';x', 'a b', 'p; x="unterminated', 'p; x="a b"']) assert.equal(parseExtensions(bad), null, bad);
  });

  it('server answers each parameter as RFC 7692 §7.1 says', T, () => {
    assert.equal(negotiate('permessage-deflate'), 'permessage-deflate');
    assert.equal(negotiate('permessage-deflate; client_max_window_bits'), 'permessage-deflate');
    assert.equal(negotiate('permessage-deflate; client_max_window_bits=10'), 'permessage-deflate; client_max_window_bits=10');
    assert.equal(negotiate('permessage-deflate; server_max_window_bits=9'), 'permessage-deflate; server_max_window_bits=9');
    assert.equal(negotiate('permessage-deflate; server_no_context_takeover'), 'permessage-deflate; server_no_context_takeover');
    assert.equal(negotiate('permessage-deflate; client_no_context_takeover'), 'permessage-deflate; client_no_context_takeover');
    // The server's own settings.
    assert.equal(negotiate('permessage-deflate', { serverNoContextTakeover: true, serverMaxWindowBits: 10 }),
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=10');
    assert.equal(negotiate('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 11, clientNoContextTakeover: true }),
      'permessage-deflate; client_no_context_takeover; client_max_window_bits=11');
    assert.equal(negotiate('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 }), 'permessage-deflate; server_max_window_bits=10');
  });

  it('invalid or unknown parameters reject that offer; the next acceptable offer wins', T, () => {
    for (const bad of [
      'permessage-deflate; server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits', 'permessage-deflate; client_max_window_bits=08',
      'permessage-deflate; server_no_context_takeover=1', 'permessage-deflate; x=1',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover', 'x-other',
    ]) assert.equal(negotiate(bad), null, bad);
    assert.equal(negotiate('permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover'),
      'permessage-deflate; client_no_context_takeover');
    // Autobahn 13.7: several offers, the first acceptable is taken.
    assert.equal(negotiate('permessage-deflate; server_no_context_takeover; server_max_window_bits=8, permessage-deflate; server_no_context_takeover, permessage-deflate'),
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=8');
  });

  it('server session: off by default, on when enabled', T, () => {
    const off = makeSession();
    off.s.receive(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
    assert.doesNotMatch(off.r.written().toString(), /Sec-WebSocket-Extensions/);
    const on = makeSession({ ws: { perMessageDeflate: true } });
    on.s.receive(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }));
    assert.match(on.r.written().toString(), /Sec-WebSocket-Extensions: permessage-deflate\r\n/);
    const malformed = makeSession({ ws: { perMessageDeflate: true } });
    malformed.s.receive(upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate; ;' }));
    assert.match(malformed.r.written().toString(), /^HTTP\/1\.1 400/);
  });

  it('client: offer and checks of the answer', T, () => {
    assert.equal(clientOffer({}), 'permessage-deflate; client_max_window_bits');
    assert.equal(clientOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 }),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12');
    assert.equal(acceptServerResponse(undefined, {}), null);
    assert.deepEqual(acceptServerResponse('permessage-deflate; server_no_context_takeover; client_max_window_bits=9', {}), {
      serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 9,
    });
    for (const bad of ['permessage-deflate; client_max_window_bits', 'permessage-deflate, permessage-deflate', 'x-foo', 'permessage-deflate; client_max_window_bits=13']) {
      assert.throws(() => acceptServerResponse(bad, { clientMaxWindowBits: 12 }), { code: 'ERR_HANDSHAKE' }, bad);
    }
    assert.throws(() => acceptServerResponse('permessage-deflate', { serverMaxWindowBits: 10 }), { code: 'ERR_HANDSHAKE' });
    assert.throws(() => acceptServerResponse('permessage-deflate', null), { code: 'ERR_HANDSHAKE' });
  });
});

function pair(params: DeflateParams, maxInflated = 1 << 24): { server: PerMessageDeflate; client: PerMessageDeflate } {
  return { server: new PerMessageDeflate(params, true, {}, maxInflated), client: new PerMessageDeflate(params, false, {}, maxInflated) };
}

describe('ws deflate: compression (Autobahn 12.x / 13.x)', () => {
  const combos: DeflateParams[] = [];
  for (const nct of [false, true]) {
    for (const bits of [8, 9, 12, 15]) {
      combos.push({ serverNoContextTakeover: nct, clientNoContextTakeover: nct, serverMaxWindowBits: bits, clientMaxWindowBits: bits });
    }
  }
  for (const p of combos) {
    it(`round trips both ways: no_context_takeover=${p.serverNoContextTakeover}, window bits ${p.serverMaxWindowBits}`, T, () => {
      const { server, client } = pair(p);
      let seed = 7;
      const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
      const words = ['hello', 'world', 'switchboard', 'websocket', 'deflate', 'context', '{"a":1}', 'κόσμε'];
      for (let i = 0; i < 60; i++) {
        const size = [16, 64, 256, 1024, 4096, 16384, 65536][i % 7]!;
        let s = '';
        while (s.length < size) s += words[rnd() % words.length] + ' ';
        const msg = Buffer.from(s.slice(0, size));
        assert.deepEqual(client.decompress(server.compress(msg)), msg);
        assert.deepEqual(server.decompress(client.compress(msg)), msg);
      }
    });
  }

  it('context takeover makes a repeated message smaller; no_context_takeover does not', T, () => {
    const msg = Buffer.from('the quick brown fox jumps over the lazy dog, '.repeat(20));
    const a = pair({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    const first = a.server.compress(msg);
    const second = a.server.compress(msg);
    assert.ok(second.length < first.length / 2, `${second.length} vs ${first.length}`);
    assert.deepEqual(a.client.decompress(first), msg);
    assert.deepEqual(a.client.decompress(second), msg);
    const b = pair({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    assert.equal(b.server.compress(msg).length, b.server.compress(msg).length);
  });

  it('an empty message compresses to a single 0x00 byte and back', T, () => {
    const { server, client } = pair({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    const c = server.compress(Buffer.alloc(0));
    assert.deepEqual(c, Buffer.from([0]));
    assert.equal(client.decompress(c).length, 0);
  });

  it('a decompression bomb is stopped at maxInflated with 1009', T, () => {
    const { client } = pair({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, 1 << 20);
    const bomb = deflateRawSync(Buffer.alloc(64 << 20), { level: 9 });
    assert.ok(bomb.length < 100_000);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => client.decompress(bomb), (e: { closeCode?: number }) => e.closeCode === 1009);
    assert.ok(process.memoryUsage().arrayBuffers - before < 32 << 20, 'did not inflate the whole bomb');
  });

  it('session: compressed messages in, fragmented and whole; compressed above the threshold out', T, () => {
    const { s, r } = openServer({ ws: { perMessageDeflate: { threshold: 100 } } }, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    const peer = new PerMessageDeflate({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, false, {}, 1 << 20);
    const text = 'compressed text, compressed text, compressed text';
    s.receive(frame({ opcode: 1, rsv: 4, payload: peer.compress(Buffer.from(text)) }));
    const c2 = peer.compress(Buffer.from(text + '!'));
    s.receive(Buffer.concat([
      frame({ opcode: 1, rsv: 4, fin: false, payload: c2.subarray(0, 5) }),
      frame({ opcode: 9, payload: 'interleaved' }),
      frame({ opcode: 0, fin: true, payload: c2.subarray(5) }),
    ]));
    s.receive(frame({ opcode: 2, payload: Buffer.from([1, 2, 3]) })); // RSV1=0: uncompressed is allowed per message
    assert.equal(r.end, null, r.end?.reason);
    assert.deepEqual(r.messages, [text, text + '!', Buffer.from([1, 2, 3])]);
    const big = 'x'.repeat(1000);
    const [fBig] = parseFrames(s.encode(big));
    assert.equal(fBig!.rsv, 4);
    const serverSide = new PerMessageDeflate({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, false, {}, 1 << 20);
    assert.equal(serverSide.decompress(fBig!.payload).toString(), big);
    const [fSmall] = parseFrames(s.encode('small'));
    assert.equal(fSmall!.rsv, 0);
    // Broadcasts under sharedThreshold (1024) go uncompressed; longer ones are compressed alone,
    // and the session's next own message starts without its context, as the peer's window moved.
    assert.match(s.shared.key, /^ws-deflate-\d+-15$/);
    assert.equal(parseFrames(wireBytes(s.shared.encode(big)))[0]!.rsv, 0);
    const [fShared] = parseFrames(wireBytes(s.shared.encode(big + big)));
    assert.equal(fShared!.rsv, 4);
    assert.equal(serverSide.decompress(fShared!.payload).toString(), big + big);
    const [fAfter] = parseFrames(s.encode(big));
    assert.equal(serverSide.decompress(fAfter!.payload).toString(), big);
  });

  it('session: RSV1 on a continuation, bad deflate data, and invalid UTF-8 after inflating', T, () => {
    const cases: Array<[Buffer, number]> = [
      [Buffer.concat([frame({ opcode: 1, rsv: 4, fin: false, payload: 'x' }), frame({ opcode: 0, rsv: 4, payload: 'y' })]), 1002],
      [frame({ opcode: 2, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) }), 1007],
      [frame({ opcode: 1, rsv: 4, payload: deflateRawSync(Buffer.from([0xc0, 0xaf])) }), 1007],
      [frame({ opcode: 9, rsv: 4, payload: 'p' }), 1002],
    ];
    for (const [bytes, code] of cases) {
      const { s, r } = openServer({ ws: { perMessageDeflate: true } }, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      s.receive(bytes);
      assert.equal(r.end?.code, code, r.end?.reason);
    }
  });

  it('session: a bomb closes with 1009', T, () => {
    const { s, r } = openServer({ maxMessageSize: 1 << 20, ws: { perMessageDeflate: true } }, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    s.receive(frame({ opcode: 2, rsv: 4, payload: deflateRawSync(Buffer.alloc(16 << 20)) }));
    assert.equal(r.end?.code, 1009);
    assert.equal(parseFrames(r.written()).pop()!.payload.readUInt16BE(0), 1009);
  });
});
