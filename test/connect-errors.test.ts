/** connect() rejects with a SwitchboardError whatever failed: Node's code and message kept, Node's error as `cause`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, SwitchboardError, connect } from '../src/index.js';
import { freePort, makeCertificate } from './helpers.js';

test('connect(): a refused port rejects with a SwitchboardError (code ECONNREFUSED, the Node error as cause)', { timeout: 10000 }, async () => {
  const port = await freePort();
  for (const url of [`text://127.0.0.1:${port}`, `ws://127.0.0.1:${port}/`]) {
    const err = await connect(url).then(() => assert.fail('connected'), (e: unknown) => e);
    assert.ok(err instanceof SwitchboardError, `${url}: ${String(err)}`);
    assert.equal(err.code, 'ECONNREFUSED');
    assert.match(err.message, /ECONNREFUSED 127\.0\.0\.1:\d+/);
    assert.ok(err.cause instanceof Error);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  }
});

test('connect(): an untrusted certificate rejects with a SwitchboardError carrying the TLS error', { timeout: 10000 }, async () => {
  const { key, cert } = makeCertificate();
  const server = new Server({ listen: 'wss://127.0.0.1:0/', tls: { key, cert } });
  await server.listen();
  try {
    const err = await connect(server.addresses[0]!).then(() => assert.fail('connected'), (e: unknown) => e);
    assert.ok(err instanceof SwitchboardError, String(err));
    assert.match(err.message, /self-signed|unable to verify|certificate/i);
    assert.ok(err.cause instanceof Error);
    assert.equal(err.code, (err.cause as NodeJS.ErrnoException).code);
  } finally {
    await server.close();
  }
});
