/**
 * The WebSocket codec session alone (codec/websocket/session.ts), driven with plain Buffers and
 * no core: the request event and its answers (accept, reject, respond), frames, pongs the session
 * writes itself, the close handshake, fragments and protocol errors.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CloseInfo, Message, ProtocolEvents } from '../src/codec/types.js';
import { acceptFor, HttpError } from '../src/codec/websocket/handshake.js';
import { applyMask, type WordXor } from '../src/codec/websocket/mask.js';
import { webSocketConfig, WebSocketSession, type HandshakeRequest, type WebSocketConfigSpec } from '../src/codec/websocket/session.js';
import { closeCodeOf, closePayload, frame, KEY, parseFrames, upgradeRequest } from './ws-helpers.js';

const TEXT = 0x1, BINARY = 0x2, CLOSE = 0x8, PING = 0x9, PONG = 0xa, CONT = 0x0;

/** ProtocolEvents that keep everything, `last` flags included. */
class Events implements ProtocolEvents {
  opened = 0;
  messages: Message[] = [];
  writes: { bytes: Buffer; last: boolean }[] = [];
  pongs: Buffer[] = [];
  end: CloseInfo | null = null;
  onOpen(): void { this.opened++; }
  onMessage(data: Message): void { this.messages.push(data); }
  onWrite(bytes: Buffer, last?: boolean): void { this.writes.push({ bytes, last: last === true }); }
  onEnd(info: CloseInfo): void {
    if (this.end) throw new Error('onEnd twice');
    this.end = info;
  }
  onPong(payload: Buffer): void { this.pongs.push(Buffer.from(payload)); }
  /** What was written since the last call, as one buffer. */
  take(): Buffer {
    const all = Buffer.concat(this.writes.map((w) => w.bytes));
    this.writes.length = 0;
    return all;
  }
}

interface Made { s: WebSocketSession; e: Events; requests: HandshakeRequest[] }

/** A server session whose policy records each request; `answer` answers it (or leaves it pending). */
function server(answer?: (s: WebSocketSession, r: HandshakeRequest) => void, spec: Partial<WebSocketConfigSpec> = {}): Made {
  const requests: HandshakeRequest[] = [];
  const cfg = webSocketConfig({
    role: 'server',
    maxMessageSize: 1 << 20,
    ...spec,
    onRequest: (s, r) => {
      requests.push(r);
      answer?.(s, r);
    },
  });
  const e = new Events();
  const s = new WebSocketSession(e, cfg, '10.0.0.7');
  s.start();
  return { s, e, requests };
}

function acceptedServer(spec: Partial<WebSocketConfigSpec> = {}): Made {
  const m = server((s) => s.accept(), spec);
  m.s.receive(upgradeRequest());
  assert.equal(m.e.opened, 1);
  m.e.take();
  return m;
}

describe('WebSocket codec session (sans-I/O)', () => {
  it('reports the request head, and opens on accept(): 101, then frames both ways', () => {
    const { s, e, requests } = server();
    const req = upgradeRequest({ 'Sec-WebSocket-Protocol': 'chat, superchat', Origin: 'https://example.org' }, '/live?room=1');
    // The head in two pieces: no event until it is whole.
    s.receive(req.subarray(0, 20));
    assert.equal(requests.length, 0);
    s.receive(req.subarray(20));
    assert.equal(requests.length, 1);
    const r = requests[0]!;
    assert.equal(r.head.target, '/live?room=1');
    assert.equal(r.invalid, null);
    assert.equal(r.badExtensions, null);
    assert.deepEqual(r.upgrade?.protocols, ['chat', 'superchat']);
    assert.equal(r.upgrade?.origin, 'https://example.org');
    // Nothing was written and nothing opened until the answer.
    assert.equal(e.writes.length, 0);
    assert.equal(e.opened, 0);
    assert.equal(s.awaitsAnswer, true);
    const info = s.requestInfoOf(r.head);
    assert.equal(info.remoteAddress, '10.0.0.7');
    assert.equal(s.request, info, 'conn.request is the object the policy saw');

    s.accept('superchat');
    assert.equal(s.awaitsAnswer, false);
    assert.equal(e.opened, 1);
    assert.equal(s.protocol, 'superchat');
    const answer = e.take().toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(answer.includes(`Sec-WebSocket-Accept: ${acceptFor(KEY)}\r\n`));
    assert.ok(answer.includes('Sec-WebSocket-Protocol: superchat\r\n'));

    s.receive(Buffer.concat([frame({ opcode: TEXT, payload: 'héllo' }), frame({ opcode: BINARY, payload: Buffer.from([1, 2, 3]) })]));
    assert.deepEqual(e.messages, ['héllo', Buffer.from([1, 2, 3])]);
    const [out] = parseFrames(s.encode('back') as Buffer);
    assert.equal(out!.opcode, TEXT);
    assert.equal(out!.masked, false);
    assert.equal(out!.payload.toString(), 'back');
    // A second answer is ignored.
    s.accept();
    assert.equal(e.opened, 1);
    assert.equal(e.writes.length, 0);
  });

  it('holds frames that arrive before a late accept and parses them after it; bounded meanwhile', () => {
    const { s, e, requests } = server();
    s.receive(Buffer.concat([upgradeRequest(), frame({ opcode: TEXT, payload: 'early' })]));
    s.receive(frame({ opcode: TEXT, payload: 'second' }));
    assert.equal(requests.length, 1);
    assert.deepEqual(e.messages, []);
    s.accept();
    assert.deepEqual(e.messages, ['early', 'second']);

    const small = server(undefined, { maxBufferedBytes: 64 });
    small.s.receive(upgradeRequest());
    small.s.receive(frame({ opcode: BINARY, payload: Buffer.alloc(100) }));
    assert.equal(small.e.end?.code, 1009);
    assert.equal(small.e.end?.error?.code, 'ERR_BUFFER_FULL');
    small.s.accept();
    assert.equal(small.e.opened, 0, 'an answer after the end is ignored');
  });

  it('reject(): the status, headers and reason as an HTTP answer, then the end; later input is ignored', () => {
    const { s, e } = server((s) => s.reject(new HttpError(403, 'not from here', { 'X-Why': 'origin' })));
    s.receive(upgradeRequest());
    const answer = e.take().toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.ok(answer.includes('X-Why: origin\r\n'));
    assert.ok(answer.endsWith('not from here\n'));
    assert.equal(e.opened, 0);
    assert.equal(e.end?.code, 1002);
    assert.equal(e.end?.error?.code, 'ERR_HANDSHAKE');
    s.receive(frame({ opcode: TEXT, payload: 'ignored' }));
    s.accept();
    assert.equal(e.opened, 0);
    assert.deepEqual(e.messages, []);
    assert.equal(e.writes.length, 0);
  });

  it('reports what RFC 6455 finds wrong without acting on it; with no policy it answers alone', () => {
    const { s, e, requests } = server();
    s.receive(upgradeRequest({ 'Sec-WebSocket-Version': '8' }));
    const r = requests[0]!;
    assert.equal(r.upgrade, null);
    assert.equal(r.invalid?.status, 426);
    assert.equal(e.writes.length, 0, 'the policy decides what to answer (a wrong path is a 404 first)');
    s.reject(r.invalid!);
    assert.ok(e.take().toString('latin1').startsWith('HTTP/1.1 426 '));

    const e2 = new Events();
    const alone = new WebSocketSession(e2, webSocketConfig({ role: 'server', maxMessageSize: 1024 }), '::1');
    alone.receive(upgradeRequest({ 'Sec-WebSocket-Version': '8' }));
    assert.ok(e2.take().toString('latin1').startsWith('HTTP/1.1 426 '));
    const e3 = new Events();
    const open = new WebSocketSession(e3, webSocketConfig({ role: 'server', maxMessageSize: 1024 }), '::1');
    open.receive(upgradeRequest());
    assert.equal(e3.opened, 1);
  });

  it('a plain HTTP request: respond() answers it (no body to HEAD) and ends', () => {
    const { s, e, requests } = server();
    s.receive(Buffer.from('GET /status HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
    assert.equal(requests[0]!.upgrade, null);
    assert.equal(requests[0]!.invalid, null);
    s.respond(200, { 'Content-Type': 'text/plain' }, 'ok\n');
    const answer = e.take().toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(answer.endsWith('\r\n\r\nok\n'));
    assert.deepEqual({ code: e.end?.code, reason: e.end?.reason }, { code: 1000, reason: 'HTTP 200' });

    const head = server((s) => s.respond(200, {}, 'a body'));
    head.s.receive(Buffer.from('HEAD / HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
    assert.ok(head.e.take().toString('latin1').endsWith('\r\n\r\n'));
  });

  it('answers a ping with the pong bytes itself, through onWrite, and reports pongs', () => {
    const { s, e } = acceptedServer();
    s.receive(frame({ opcode: PING, payload: 'are you there' }));
    assert.equal(e.writes.length, 1);
    assert.equal(e.writes[0]!.last, false);
    const [pong] = parseFrames(e.take());
    assert.deepEqual({ opcode: pong!.opcode, masked: pong!.masked, payload: pong!.payload.toString() }, { opcode: PONG, masked: false, payload: 'are you there' });
    s.receive(frame({ opcode: PONG, payload: 'p' }));
    assert.deepEqual(e.pongs.map(String), ['p']);
    assert.equal(e.writes.length, 0);
    // Our own ping.
    const [ping] = parseFrames(s.ping(Buffer.from('x'))!);
    assert.equal(ping!.opcode, PING);
  });

  it('close handshake: the peer\'s close is echoed as the last bytes; ours awaits the peer\'s', () => {
    const a = acceptedServer();
    a.s.receive(frame({ opcode: CLOSE, payload: closePayload(1001, 'going') }));
    assert.equal(a.e.writes.length, 1);
    assert.equal(a.e.writes[0]!.last, true);
    assert.equal(closeCodeOf(parseFrames(a.e.take())[0]!), 1001);
    assert.deepEqual({ code: a.e.end?.code, reason: a.e.end?.reason, error: a.e.end?.error }, { code: 1001, reason: 'going', error: undefined });

    const b = acceptedServer();
    const { bytes, awaitsPeer } = b.s.close(4000, 'done');
    assert.equal(awaitsPeer, true);
    const [ours] = parseFrames(bytes!);
    assert.deepEqual({ opcode: ours!.opcode, code: closeCodeOf(ours!), reason: ours!.payload.subarray(2).toString() }, { opcode: CLOSE, code: 4000, reason: 'done' });
    assert.equal(b.s.encode('x').length > 0, true);
    b.s.receive(frame({ opcode: CLOSE, payload: closePayload(4000) }));
    assert.equal(b.e.writes.length, 0, 'no second close frame');
    assert.equal(b.e.end?.code, 4000);
  });

  it('reassembles a fragmented message, with a ping answered in between', () => {
    const { s, e } = acceptedServer();
    const bytes = Buffer.concat([
      frame({ opcode: TEXT, fin: false, payload: 'frag' }),
      frame({ opcode: PING, payload: '1' }),
      frame({ opcode: CONT, fin: false, payload: 'men' }),
      frame({ opcode: CONT, payload: 'ted ✓' }),
    ]);
    // Byte by byte: the harshest chunking.
    for (let i = 0; i < bytes.length; i++) s.receive(bytes.subarray(i, i + 1));
    assert.deepEqual(e.messages, ['fragmented ✓']);
    assert.deepEqual(parseFrames(e.take()).map((f) => f.opcode), [PONG]);
    assert.equal(s.pendingMessage(), 0);
  });

  it('a protocol error (an unmasked client frame) sends a 1002 close as the last bytes and ends with the error', () => {
    const { s, e } = acceptedServer();
    s.receive(frame({ opcode: TEXT, payload: 'bare', mask: false }));
    assert.equal(e.writes.length, 1);
    assert.equal(e.writes[0]!.last, true);
    assert.equal(closeCodeOf(parseFrames(e.take())[0]!), 1002);
    assert.equal(e.end?.code, 1002);
    assert.equal(e.end?.error?.code, 'ERR_PROTOCOL');
    s.receive(frame({ opcode: TEXT, payload: 'after' }));
    assert.deepEqual(e.messages, []);
  });

  it('client role: sends the request at start(), opens on a valid 101, masks what it sends', () => {
    const e = new Events();
    const cfg = webSocketConfig({
      role: 'client', maxMessageSize: 1 << 20, perMessageDeflate: false,
      client: { host: 'example.org:8080', path: '/ws', protocols: ['chat'], headers: { Authorization: 'Bearer t' } },
    });
    const s = new WebSocketSession(e, cfg, '127.0.0.1');
    s.start();
    const req = e.take().toString('latin1');
    assert.match(req, /^GET \/ws HTTP\/1\.1\r\n/);
    assert.ok(req.includes('Host: example.org:8080\r\n'));
    assert.ok(req.includes('Authorization: Bearer t\r\n'));
    const key = /Sec-WebSocket-Key: (\S+)\r\n/.exec(req)![1]!;
    s.receive(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptFor(key)}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`, 'latin1'));
    assert.equal(e.opened, 1);
    assert.equal(s.protocol, 'chat');
    const [out] = parseFrames(s.encode('hi') as Buffer);
    assert.equal(out!.masked, true);
    assert.equal(out!.payload.toString(), 'hi');
    s.receive(frame({ opcode: PING, payload: 'q', mask: false }));
    assert.equal(parseFrames(e.take())[0]!.masked, true, 'a client\'s pong is masked');
  });

  it('uses an injected XOR loop for long payloads only, with the same result as its own', () => {
    let calls = 0;
    // A stand-in for the native loop: the codec's own masking of the same word, counted.
    const xor: WordXor = (buf, start, end, word) => {
      calls++;
      const m = new Uint8Array(new Uint32Array([word]).buffer);
      applyMask(buf, start, end, m, 0);
    };
    const { s, e } = acceptedServer({ xor });
    const long = Buffer.alloc(1000, 7);
    s.receive(Buffer.concat([frame({ opcode: BINARY, payload: Buffer.from('short') }), frame({ opcode: BINARY, payload: long })]));
    assert.deepEqual(e.messages, [Buffer.from('short'), long]);
    assert.equal(calls, 1);
  });
});
