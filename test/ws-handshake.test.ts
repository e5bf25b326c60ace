/**
 * WebSocket opening handshake, sans-I/O: the server's checks and answers (version, tokens, key,
 * path, Origin, verifyClient, plain HTTP), head limits, and the client's request and checks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { frame, KEY, makeSession, openServer, parseFrames, upgradeRequest } from './ws-helpers.js';
import { acceptFor, parseHead } from '../src/codec/websocket/handshake.js';
import type { WebSocketSession } from '../src/codec/websocket/session.js';

const T = { timeout: 10_000 };

function status(bytes: Buffer): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(bytes.toString('latin1'))?.[1]);
}
function header(bytes: Buffer, name: string): string | undefined {
  const head = bytes.toString('latin1').split('\r\n\r\n')[0]!;
  const re = new RegExp(`^${name}: (.*)$`, 'im');
  return re.exec(head)?.[1];
}

describe('ws handshake: server', () => {
  it('computes Sec-WebSocket-Accept as in RFC 6455 §1.3', T, () => {
    assert.equal(acceptFor(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const { s, r } = makeSession();
    s.receive(upgradeRequest());
    const out = r.written();
    assert.equal(status(out), 101);
    assert.equal(header(out, 'Sec-WebSocket-Accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(r.opened, 1);
  });

  it('matches Upgrade and Connection tokens case-insensitively, in lists', T, () => {
    const { s, r } = makeSession();
    s.receive(upgradeRequest({ Upgrade: 'WebSocket', Connection: 'keep-alive, UPGRADE' }));
    assert.equal(status(r.written()), 101);
  });

  it('a request split into single bytes, with frames right behind it', T, () => {
    const { s, r } = makeSession();
    const bytes = Buffer.concat([upgradeRequest(), frame({ opcode: 1, payload: 'early' })]);
    for (let i = 0; i < bytes.length; i++) s.receive(bytes.subarray(i, i + 1));
    assert.deepEqual(r.messages, ['early']);
    const both = makeSession();
    both.s.receive(Buffer.concat([upgradeRequest(), frame({ opcode: 1, payload: 'same chunk' })]));
    assert.deepEqual(both.r.messages, ['same chunk']);
  });

  it('version other than 13 gets 426 with Sec-WebSocket-Version: 13', T, () => {
    for (const v of ['8', '12', '']) {
      const { s, r } = makeSession();
      s.receive(upgradeRequest({ 'Sec-WebSocket-Version': v }));
      const out = r.written();
      assert.equal(status(out), 426);
      assert.equal(header(out, 'Sec-WebSocket-Version'), '13');
      assert.equal(r.end!.error!.code, 'ERR_HANDSHAKE');
      assert.equal(r.opened, 0);
    }
  });

  it('bad key, missing Connection: Upgrade, POST are refused with 4xx', T, () => {
    const cases: Array<[Record<string, string>, number]> = [
      [{ 'Sec-WebSocket-Key': 'short' }, 400],
      [{ 'Sec-WebSocket-Key': '' }, 400],
      [{ Connection: 'keep-alive' }, 400],
    ];
    for (const [extra, code] of cases) {
      const { s, r } = makeSession();
      s.receive(upgradeRequest(extra));
      assert.equal(status(r.written()), code, JSON.stringify(extra));
      assert.ok(r.end?.error);
    }
    const { s, r } = makeSession();
    s.receive(Buffer.from(upgradeRequest().toString('latin1').replace('GET', 'POST')));
    assert.equal(status(r.written()), 405);
  });

  it('garbage instead of a handshake is refused at once with 400', T, () => {
    const { s, r } = makeSession();
    s.receive(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    assert.equal(status(r.written()), 400);
    assert.ok(r.end?.error);
    const b = makeSession();
    b.s.receive(Buffer.from('HELLO THERE\r\n\r\n'));
    assert.equal(status(b.r.written()), 400);
  });

  it('a head over the size limit or with too many headers gets 431', T, () => {
    const { s, r } = makeSession({ ws: { maxHeaderBytes: 1024 } });
    s.receive(Buffer.from('GET / HTTP/1.1\r\nX-Pad: ' + 'a'.repeat(2000)));
    assert.equal(status(r.written()), 431);
    const many: Record<string, string> = {};
    for (let i = 0; i < 20; i++) many[`X-H${i}`] = 'v';
    const b = makeSession({ ws: { maxHeaders: 10 } });
    b.s.receive(upgradeRequest(many));
    assert.equal(status(b.r.written()), 431);
  });

  it('selects the first client subprotocol the server supports', T, () => {
    const { s, r } = makeSession({ ws: { protocols: ['chat', 'superchat'] } });
    s.receive(upgradeRequest({ 'Sec-WebSocket-Protocol': 'mqtt, superchat, chat' }));
    assert.equal(header(r.written(), 'Sec-WebSocket-Protocol'), 'superchat');
    assert.equal(s.protocol, 'superchat');
    const none = makeSession({ ws: { protocols: ['chat'] } });
    none.s.receive(upgradeRequest({ 'Sec-WebSocket-Protocol': 'mqtt' }));
    assert.equal(status(none.r.written()), 101);
    assert.equal(header(none.r.written(), 'Sec-WebSocket-Protocol'), undefined);
  });

  it('Origin allow-list: listed origins pass (any case), others get 403', T, () => {
    const ok = makeSession({ ws: { origins: ['https://example.com'] } });
    ok.s.receive(upgradeRequest({ Origin: 'https://EXAMPLE.com' }));
    assert.equal(status(ok.r.written()), 101);
    const bad = makeSession({ ws: { origins: ['https://example.com'] } });
    bad.s.receive(upgradeRequest({ Origin: 'https://evil.example' }));
    assert.equal(status(bad.r.written()), 403);
  });

  it('path: only the configured path upgrades', T, () => {
    const { s, r } = makeSession({ ws: { path: '/ws' } });
    s.receive(upgradeRequest({}, '/other'));
    assert.equal(status(r.written()), 404);
    const ok = makeSession({ ws: { path: '/ws' } });
    ok.s.receive(upgradeRequest({}, '/ws?token=1'));
    assert.equal(status(ok.r.written()), 101);
    assert.equal(ok.s.request!.url, '/ws?token=1');
    const fromUrl = makeSession({ url: 'ws://127.0.0.1:9001/chat' });
    fromUrl.s.receive(upgradeRequest({}, '/'));
    assert.equal(status(fromUrl.r.written()), 404);
  });

  it('verifyClient: sync and async, accept and refuse with a status', T, async () => {
    const seen: unknown[] = [];
    const a = makeSession({ ws: { verifyClient: (info) => { seen.push(info); return false; } } });
    a.s.receive(upgradeRequest({ Authorization: 'Bearer x' }, '/?u=1'));
    assert.equal(status(a.r.written()), 401);
    assert.deepEqual(seen.map((i) => {
      const info = i as { url: string; headers: Record<string, string>; remoteAddress: string };
      return [info.url, info.headers['authorization'], info.remoteAddress];
    }), [['/?u=1', 'Bearer x', '127.0.0.1']]);

    const b = makeSession({ ws: { verifyClient: async () => ({ status: 403, reason: 'no token' }) } });
    b.s.receive(upgradeRequest());
    assert.equal(b.r.writes.length, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(status(b.r.written()), 403);
    assert.match(b.r.written().toString(), /no token/);

    const c = makeSession({ ws: { verifyClient: async () => true } });
    // Frames sent right behind the request wait for the verdict, then flow in order.
    c.s.receive(Buffer.concat([upgradeRequest(), frame({ opcode: 1, payload: 'queued' })]));
    assert.equal(c.r.opened, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(c.r.opened, 1);
    assert.deepEqual(c.r.messages, ['queued']);

    const d = makeSession({ ws: { verifyClient: async () => { throw new Error('db down'); } } });
    d.s.receive(upgradeRequest());
    await new Promise((r) => setImmediate(r));
    assert.equal(status(d.r.written()), 500);
  });

  it('plain HTTP: 404 by default, httpHandler answers otherwise, HEAD has no body, then the session ends', T, async () => {
    const a = makeSession();
    a.s.receive(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(status(a.r.written()), 404);
    assert.equal(a.r.end!.error, undefined);

    const page = '<!doctype html><title>chat</title>';
    const h = { httpHandler: (req: { url: string }) => req.url === '/' ? { status: 200, headers: { 'Content-Type': 'text/html' }, body: page } : { status: 404, body: 'nope' } };
    const b = makeSession({ ws: h });
    b.s.receive(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const out = b.r.written().toString();
    assert.equal(status(b.r.written()), 200);
    assert.equal(header(b.r.written(), 'Content-Length'), String(page.length));
    assert.ok(out.endsWith(page));
    assert.equal(b.r.end!.code, 1000);

    const c = makeSession({ ws: h });
    c.s.receive(Buffer.from('HEAD / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.ok(c.r.written().toString().endsWith('\r\n\r\n'));

    const d = makeSession({ ws: { httpHandler: async () => ({ status: 200, body: 'later' }) } });
    d.s.receive(Buffer.from('GET /x HTTP/1.1\r\nHost: x\r\n\r\n'));
    await new Promise((r) => setImmediate(r));
    assert.ok(d.r.written().toString().endsWith('later'));
  });

  it('refuse() before the handshake is an HTTP 503 with the reason', T, () => {
    const { s } = makeSession();
    const out = s.refuse('server full');
    assert.equal(status(out), 503);
    assert.match(out.toString(), /server full/);
  });
});

describe('ws handshake: client', () => {
  function serverAnswer(s: WebSocketSession, req: Buffer, extra = ''): Buffer {
    const key = /Sec-WebSocket-Key: (.*)\r\n/.exec(req.toString())![1]!;
    void s;
    return Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n${extra}\r\n`);
  }

  it('sends the request on start: Host, key, version, protocols, extra headers, deflate offer', T, () => {
    const { r } = makeSession({ role: 'client', url: 'ws://[::1]:8080/chat?x=1', ws: { protocols: ['a', 'b'], headers: { Origin: 'http://me' } } });
    const head = parseHead(r.written(), 'request', { maxBytes: 8192, maxHeaders: 100 })!;
    assert.equal(head.method, 'GET');
    assert.equal(head.target, '/chat?x=1');
    assert.equal(head.headers['host'], '[::1]:8080');
    assert.equal(head.headers['sec-websocket-version'], '13');
    assert.match(head.headers['sec-websocket-key']!, /^[A-Za-z0-9+/]{22}==$/);
    assert.equal(head.headers['sec-websocket-protocol'], 'a, b');
    assert.equal(head.headers['origin'], 'http://me');
    assert.equal(head.headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits');
    const plain = makeSession({ role: 'client', url: 'ws://example.com/', ws: { perMessageDeflate: false } });
    const h2 = parseHead(plain.r.written(), 'request', { maxBytes: 8192, maxHeaders: 100 })!;
    assert.equal(h2.headers['host'], 'example.com');
    assert.equal(h2.headers['sec-websocket-extensions'], undefined);
  });

  it('opens on a correct 101, with frames in the same chunk; sends masked frames', T, () => {
    const { s, r } = makeSession({ role: 'client', ws: { protocols: ['chat'] } });
    const req = r.written();
    r.writes.length = 0;
    s.receive(Buffer.concat([serverAnswer(s, req, 'Sec-WebSocket-Protocol: chat\r\n'), frame({ opcode: 1, payload: 'hi', mask: false })]));
    assert.equal(r.opened, 1);
    assert.equal(s.protocol, 'chat');
    assert.deepEqual(r.messages, ['hi']);
    const [f] = parseFrames(s.encode('yo'));
    assert.equal(f!.masked, true);
    assert.equal(f!.payload.toString(), 'yo');
    assert.notEqual(s.shared.key, 'ws');
    // A masked frame from a server is a protocol error.
    s.receive(frame({ opcode: 1, payload: 'masked' }));
    assert.equal(r.end!.code, 1002);
    assert.equal(parseFrames(r.written())[0]!.masked, true, 'the client close frame is masked');
  });

  it('fails on a wrong accept, a non-101, an unoffered subprotocol or extension', T, () => {
    const bad: Array<(req: Buffer, s: WebSocketSession) => Buffer> = [
      () => Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n'),
      () => Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
      (req, s) => serverAnswer(s, req, 'Sec-WebSocket-Protocol: other\r\n'),
      (req, s) => serverAnswer(s, req, 'Sec-WebSocket-Extensions: x-unknown\r\n'),
      (req, s) => serverAnswer(s, req, 'Sec-WebSocket-Extensions: permessage-deflate; bogus=1\r\n'),
    ];
    for (const make of bad) {
      const { s, r } = makeSession({ role: 'client', ws: { protocols: ['chat'] } });
      const req = r.written();
      s.receive(make(req, s));
      assert.equal(r.opened, 0);
      assert.equal(r.end!.error!.code, 'ERR_HANDSHAKE');
    }
  });

  it('a server session refuses an unmasked frame but a client requires unmasked ones (role symmetry)', T, () => {
    const { s, r } = openServer();
    s.receive(frame({ opcode: 2, payload: 'x', mask: false }));
    assert.equal(r.end!.code, 1002);
  });
});
