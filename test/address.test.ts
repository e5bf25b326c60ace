import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../src/address.js';
import { SwitchboardError } from '../src/errors.js';

test('schemes pick transport and protocol', () => {
  const cases: [string, string, string][] = [
    ['tcp://127.0.0.1:5353', 'tcp', 'raw'],
    ['text://127.0.0.1:5353', 'tcp', 'line'],
    ['frame://localhost:1', 'tcp', 'frame'],
    ['ws://127.0.0.1:8080/chat', 'tcp', 'ws'],
    ['wss://example.org', 'tls', 'ws'],
    ['tls://127.0.0.1:443', 'tls', 'raw'],
    ['tls+text://127.0.0.1:443', 'tls', 'line'],
    ['unix:///tmp/a.sock', 'unix', 'raw'],
    ['unix+text:///tmp/a.sock', 'unix', 'line'],
    ['udp://[::1]:13', 'udp', 'raw'],
  ];
  for (const [url, transport, protocol] of cases) {
    const a = parseAddress(url);
    assert.equal(a.transport, transport, url);
    assert.equal(a.protocol, protocol, url);
  }
});

test('hosts, ports and paths', () => {
  const v6 = parseAddress('text://[::1]:9999');
  assert.equal(v6.host, '::1');
  assert.equal(v6.port, 9999);
  assert.equal(parseAddress('ws://h.example:8080/chat?room=1').path, '/chat?room=1');
  assert.equal(parseAddress('ws://127.0.0.1').port, 80);
  assert.equal(parseAddress('wss://127.0.0.1').port, 443);
  assert.equal(parseAddress('unix:///tmp/s.sock').socketPath, '/tmp/s.sock');
  assert.equal(parseAddress('TEXT://Example.COM:1').host, 'Example.COM');
});

test('malformed URLs are rejected with a message naming the problem', () => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['127.0.0.1:5353', /missing scheme/],
    ['gopher://127.0.0.1:70', /unknown scheme "gopher:\/\/"/],
    ['text://127.0.0.1', /port is missing/],
    ['text://127.0.0.1:99999', /out of range/],
    ['text://127.0.0.1:http', /not a number/],
    ['text://300.1.1.1:5', /not a valid IPv4/],
    ['text://::1:5', /brackets/],
    ['text://[::1:5', /closing "\]"/],
    ['text://[zz]:5', /not an IPv6/],
    ['text://bad_host!:5', /not a valid host name/],
    ['text://127.0.0.1:5/path', /takes no path/],
    ['unix://relative.sock', /three slashes/],
    ['text://:5', /host is missing/],
  ];
  for (const [url, why] of bad) {
    assert.throws(() => parseAddress(url), (err: unknown) => {
      assert.ok(err instanceof SwitchboardError, url);
      assert.match(err.message, why, url);
      return true;
    });
  }
  assert.throws(() => parseAddress('gopher://x:1'), { code: 'ERR_UNKNOWN_SCHEME' });
});
