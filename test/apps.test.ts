/** The seed systems, driven byte for byte the way the seeds' own clients drive them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ackServer, chatServer, echoServer, greetServer, reverseServer } from '../src/apps/index.js';
import { reverseText, incompleteUtf8Tail } from '../src/apps/reverse.js';
import { ECHO_BANNER } from '../src/apps/echo.js';
import { RawPeer, portOf, quiet, waitFor } from './helpers.js';

test('reverse: the seed 000 client (no newline, one read) gets "revreS olleH\\n"', { timeout: 5000 }, async () => {
  const server = await reverseServer({ listen: 'tcp://127.0.0.1:0', log: quiet });
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    peer.write('Hello Server');
    assert.equal(await peer.until((t) => t.endsWith('\n')), 'revreS olleH\n');
    // A person typing lines in nc: each line reversed, trimmed.
    peer.write('  abc  \r\nhéllo 世界👍🏽\n');
    assert.equal(await peer.until((t) => t.split('\n').length === 4), 'revreS olleH\ncba\n👍🏽界世 olléh\n');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('reverse: a character split across two writes is not broken', { timeout: 5000 }, async () => {
  const server = await reverseServer({ listen: 'tcp://127.0.0.1:0', log: quiet });
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    const bytes = Buffer.from('ab世\n');
    peer.write(bytes.subarray(0, 3)); // "ab" + first byte of 世
    await peer.until((t) => t === 'ba\n');
    peer.write(bytes.subarray(3));
    assert.equal(await peer.until((t) => t.split('\n').length === 3), 'ba\n世\n');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('reverseText keeps grapheme clusters whole', () => {
  assert.equal(reverseText('héllo 世界👍🏽'), '👍🏽界世 olléh');
  assert.equal(reverseText('e\u0301a'), 'ae\u0301');
  assert.equal(reverseText('🇨🇳🇫🇷'), '🇫🇷🇨🇳');
  assert.equal(incompleteUtf8Tail(Buffer.from([0x61, 0xe4, 0xb8])), 2);
  assert.equal(incompleteUtf8Tail(Buffer.from('a世')), 0);
});

test('ack: "connect" on connect, "Information Received" per line, logs "Buffer: <line>"', { timeout: 5000 }, async () => {
  const logs: string[] = [];
  const server = await ackServer({ listen: 'text://127.0.0.1:0', log: (l) => logs.push(l) });
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    assert.equal(await peer.until((t) => t.endsWith('\n')), 'connect\n');
    peer.write('SOME DATA\n');
    await peer.until((t) => t.endsWith('Received\n'));
    peer.write('more\r\n');
    assert.equal(await peer.until((t) => t.split('\n').length === 4), 'connect\nInformation Received\nInformation Received\n');
    assert.ok(logs.includes('Buffer: SOME DATA'));
    assert.ok(logs.includes('Buffer: more'));
    assert.ok(logs.some((l) => /\+ 127\.0\.0\.1:\d+ connected/.test(l)));
    peer.destroy();
    await waitFor(() => logs.some((l) => /- 127\.0\.0\.1:\d+ disconnected/.test(l)));
  } finally {
    await server.close();
  }
});

test('greet: the seed client gets the greeting and the reply, then the close; gone after 5', { timeout: 8000 }, async () => {
  const logs: string[] = [];
  const server = await greetServer({ listen: 'tcp://127.0.0.1:0', log: (l) => logs.push(l) });
  const port = portOf(server.addresses[0]!);
  let closed = false;
  void server.closed().then(() => { closed = true; });
  for (let i = 0; i < 5; i++) {
    const peer = await RawPeer.connect(port);
    peer.write('Ho\r\nfirst blood\r\n');
    assert.equal(await peer.untilClosed(), '测试成功！\nsuccess\n');
  }
  assert.ok(logs.some((l) => l.includes('收到的信息: Ho\r\nfirst blood')));
  await waitFor(() => closed, 3000, 'greet server to stop');
  await assert.rejects(RawPeer.connect(port), /ECONNREFUSED/);
});

test('echo: banner, "OK ... <input>", the 11th client is told the server is full', { timeout: 8000 }, async () => {
  const server = await echoServer({ listen: 'text://127.0.0.1:0', log: quiet });
  try {
    const port = portOf(server.addresses[0]!);
    const peers: RawPeer[] = [];
    for (let i = 0; i < 10; i++) peers.push(await RawPeer.connect(port));
    const banner = ECHO_BANNER + '\n';
    for (const p of peers) await p.until((t) => t === banner);
    const eleventh = await RawPeer.connect(port);
    assert.match(await eleventh.untilClosed(), /^server full: 10 connections already/);
    peers[3]!.write('happy\n');
    assert.equal(await peers[3]!.until((t) => t.endsWith('happy\n')), banner + 'OK ... happy\n');
    for (const p of peers) p.destroy();
  } finally {
    await server.close();
  }
});

test('echo --bare: every message back unchanged, nothing else', { timeout: 5000 }, async () => {
  const server = await echoServer({ listen: 'text://127.0.0.1:0', bare: true, log: quiet });
  try {
    const peer = await RawPeer.connect(portOf(server.addresses[0]!));
    peer.write('a\nb\n');
    assert.equal(await peer.until((t) => t === 'a\nb\n'), 'a\nb\n');
    peer.destroy();
  } finally {
    await server.close();
  }
});

test('chat: banner, join/leave notices, relay with names, /nick, /who', { timeout: 8000 }, async () => {
  const server = await chatServer({ listen: 'text://127.0.0.1:0', log: quiet });
  try {
    const port = portOf(server.addresses[0]!);
    const alice = await RawPeer.connect(port);
    await alice.until((t) => t.includes('you are guest'));
    alice.write('/nick alice\n');
    await alice.until((t) => t.includes('you are now alice'));
    const bob = await RawPeer.connect(port);
    await alice.until((t) => /\* guest\d+ joined/.test(t));
    bob.write('/nick bob\n');
    await alice.until((t) => /guest\d+ is now bob/.test(t));
    bob.write('hello 世界\n');
    await alice.until((t) => t.includes('bob: hello 世界\n'));
    assert.ok(!bob.text.includes('bob: hello'), 'the sender does not get its own message back');
    alice.write('/who\n');
    await alice.until((t) => /online here \(2\): (alice, bob|bob, alice)/.test(t));
    bob.write('/nick alice\n');
    await bob.until((t) => t.includes('the name alice is taken'));
    bob.destroy();
    await alice.until((t) => t.includes('* bob left'));
    alice.destroy();
  } finally {
    await server.close();
  }
});

test('chat: a reader that stops reading is dropped; the room goes on', { timeout: 15000 }, async () => {
  const logs: string[] = [];
  const server = await chatServer({ listen: 'text://127.0.0.1:0', log: (l) => logs.push(l), maxBufferedAmount: 32 * 1024, rateLimit: false });
  try {
    const port = portOf(server.addresses[0]!);
    const slow = await RawPeer.connect(port);
    slow.socket.pause();
    const talker = await RawPeer.connect(port);
    const listener = await RawPeer.connect(port);
    await waitFor(() => server.connections.size === 3);
    const line = 'z'.repeat(4000) + '\n';
    for (let i = 0; i < 5000 && !logs.some((l) => l.includes('dropped slow reader')); i++) {
      talker.write(line);
      if (i % 4 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => logs.some((l) => l.includes('dropped slow reader')), 8000, 'slow reader drop');
    await waitFor(() => server.connections.size === 2);
    assert.equal(listener.closed, false);
    talker.destroy();
    listener.destroy();
  } finally {
    await server.close();
  }
});
