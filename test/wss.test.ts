/** wss:// and tls://: WebSocket over TLS with a certificate made in the test, our client and the ws package. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Server, connect } from '../src/index.js';
import { makeCertificate } from './helpers.js';

test('wss:// round trips: our client and the ws package, certificate checked', { timeout: 15000 }, async () => {
  const { key, cert } = makeCertificate();
  const server = new Server({ listen: 'wss://127.0.0.1:0/chat', tls: { key, cert } });
  server.on('connection', (c) => c.on('message', (m) => c.send(m)));
  await server.listen();
  try {
    const url = server.addresses[0]!;
    assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/chat$/);
    const c = await connect(url.replace('127.0.0.1', 'localhost'), { tls: { ca: cert } });
    c.send('över TLS');
    c.send(Buffer.from([9, 8, 7]));
    const it = c[Symbol.asyncIterator]();
    assert.equal((await it.next()).value, 'över TLS');
    assert.deepEqual((await it.next()).value, Buffer.from([9, 8, 7]));
    c.close();

    const ws = new WebSocket(url, { ca: cert });
    await once(ws, 'open');
    ws.send('from ws');
    const [data, isBinary] = await once(ws, 'message') as [Buffer, boolean];
    assert.equal(String(data), 'from ws');
    assert.equal(isBinary, false);
    ws.close();

    // An unknown certificate is refused by default.
    await assert.rejects(connect(url), /self-signed|unable to verify|certificate/i);

    // The command line: --ca FILE trusts it.
    const dir = mkdtempSync(join(tmpdir(), 'sb-ca-'));
    writeFileSync(join(dir, 'ca.pem'), cert);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'send', url.replace('127.0.0.1', 'localhost'), 'hi', '--ca', join(dir, 'ca.pem'), '--quiet-time', '300ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.equal(out, 'hi\n');
  } finally {
    await server.close();
  }
});
