/**
 * The chat page on switchboard/client against `serve chat` in a child process: the server is
 * killed and restarted on the same ports; the page reconnects by itself, keeps its nickname,
 * renews the room's subscription, shows who is online and offline, and a line typed while the
 * server was down reaches a text:// (nc-style) user after the restart, exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Browser } from 'playwright-core';
import { launchChromium, noChromium } from './browser.js';
import { RawPeer, freePort, waitFor } from './helpers.js';

interface Proc { child: ChildProcess; output: () => string }

function serveChat(textPort: number, wsPort: number): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', 'chat', '--listen', `text://127.0.0.1:${textPort}`,
    '--listen', `ws://127.0.0.1:${wsPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return { child, output: () => out };
}

async function kill(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGKILL');
  await once(p.child, 'exit');
}

test('serve chat serves switchboard/client at /switchboard-client.js', { timeout: 30000 }, async () => {
  const wsPort = await freePort();
  const server = serveChat(await freePort(), wsPort);
  try {
    await waitFor(() => /listening on/.test(server.output()), 15000, 'listening');
    const res = await fetch(`http://127.0.0.1:${wsPort}/switchboard-client.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/javascript/);
    assert.match(await res.text(), /export class SwitchboardClient/);
  } finally {
    await kill(server);
  }
});

test('chat page: the server is killed and restarted; the page comes back as itself, and a line typed while down reaches a text user once', { timeout: 90000, skip: noChromium }, async () => {
  const textPort = await freePort();
  const wsPort = await freePort();
  let server = serveChat(textPort, wsPort);
  let browser: Browser | undefined;
  const peers: RawPeer[] = [];
  try {
    await waitFor(() => /listening on/.test(server.output()), 15000, 'listening');
    browser = await launchChromium();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${wsPort}/`);
    await page.locator('#status', { hasText: /^online$/ }).waitFor({ timeout: 10000 });
    const say = async (text: string): Promise<void> => {
      await page.fill('#input', text);
      await page.press('#input', 'Enter');
    };
    const sees = (text: string | RegExp) => page.locator('#log li', { hasText: text }).first().waitFor({ timeout: 15000 });
    await say('/nick ann');
    await sees('you are now ann');
    const tess = await RawPeer.connect(textPort);
    peers.push(tess);
    tess.write('/nick tess\n');
    await tess.until((t) => t.includes('you are now tess'));
    // Who is online, from the page's request over the wire protocol.
    await page.locator('#online li', { hasText: /^tess$/ }).waitFor({ timeout: 10000 });
    await page.locator('#online li', { hasText: /^ann$/ }).waitFor({ timeout: 10000 });
    tess.write('hello ann\n');
    await sees('tess: hello ann');
    // Someone comes and goes: listed, then shown offline.
    const bob = await RawPeer.connect(textPort);
    peers.push(bob);
    bob.write('/nick bob\n');
    await page.locator('#online li', { hasText: /^bob$/ }).waitFor({ timeout: 10000 });
    bob.destroy();
    await page.locator('#online li.offline', { hasText: 'bob (offline)' }).waitFor({ timeout: 10000 });

    // Killed: the page notices, says so, and is offline. The network is cut too (offline
    // emulation), so that the page cannot be back before the text user is: then the line it holds
    // has someone to reach.
    await kill(server);
    await page.locator('#status', { hasText: /^offline/ }).waitFor({ timeout: 10000 });
    await sees(/disconnected \(1006/);
    await page.locator('#online li.offline', { hasText: /^tess$/ }).waitFor({ timeout: 10000 }); // nobody is known online now
    await context.setOffline(true);
    await say('typed while the server was down');
    await sees('typed while the server was down (sent when back online)');

    server = serveChat(textPort, wsPort);
    await waitFor(() => /listening on/.test(server.output()), 15000, 'listening again');
    const tess2 = await RawPeer.connect(textPort);
    peers.push(tess2);
    tess2.write('/nick tess\n');
    await tess2.until((t) => t.includes('you are now tess'));
    assert.doesNotMatch(server.output(), /connected on ws:\/\//, 'the page is still cut off: the text user is in the room first');
    await context.setOffline(false);

    // The page is back by itself, as ann (its nickname sent before the held line), subscribed again.
    await tess2.until((t) => /guest\d+ is now ann/.test(t), 30000);
    await tess2.until((t) => t.includes('ann: typed while the server was down\n'), 15000);
    await page.locator('#status', { hasText: /^online$/ }).waitFor({ timeout: 10000 });
    tess2.write('welcome back\n');
    await sees('tess: welcome back');
    await page.locator('#online li', { hasText: /^tess$/ }).waitFor({ timeout: 10000 });
    // Framed: the page's connection takes the room in the protocol's envelope again (resubscribed).
    await say('/who');
    await sees(/online here \(2\): .*ann/);
    await say('and one more');
    await tess2.until((t) => t.includes('ann: and one more\n'));
    assert.equal(tess2.text.split('\n').filter((l) => l === 'ann: typed while the server was down').length, 1, 'exactly once');
    assert.equal(page.url(), `http://127.0.0.1:${wsPort}/`, 'no reload');
  } finally {
    for (const p of peers) p.destroy();
    await browser?.close();
    await kill(server);
  }
});
