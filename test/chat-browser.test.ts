/** The browser chat: two headless Chromium pages and one text:// client share one room. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, noChromium } from './browser.js';
import { chatServer } from '../src/apps/index.js';
import { RawPeer, portOf, quiet } from './helpers.js';


test('chat page: served at /, 404 elsewhere, over plain HTTP on the WebSocket port', { timeout: 10000 }, async () => {
  const server = await chatServer({ listen: ['ws://127.0.0.1:0'], log: quiet });
  try {
    const base = server.addresses[0]!.replace('ws://', 'http://');
    const page = await fetch(base + '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<title>switchboard chat<\/title>/);
    assert.equal((await fetch(base + '/nope')).status, 404);
  } finally {
    await server.close();
  }
});

test('two browser pages and a text client chat in one room', { timeout: 60000, skip: noChromium }, async () => {
  const server = await chatServer({ listen: ['text://127.0.0.1:0', 'ws://127.0.0.1:0'], log: quiet });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const url = server.addresses[1]!.replace('ws://', 'http://') + '/';
    const openPage = async (): Promise<Page> => {
      const p = await browser!.newPage();
      await p.goto(url);
      await p.locator('#status', { hasText: 'online' }).waitFor({ timeout: 10000 });
      return p;
    };
    const say = async (p: Page, text: string): Promise<void> => {
      await p.fill('#input', text);
      await p.press('#input', 'Enter');
    };
    const sees = (p: Page, text: string | RegExp) => p.locator('#log li', { hasText: text }).first().waitFor({ timeout: 10000 });

    const ann = await openPage();
    await say(ann, '/nick ann');
    await sees(ann, 'you are now ann');
    const ben = await openPage();
    await say(ben, '/nick ben');
    await sees(ben, 'you are now ben');
    await sees(ann, /is now ben/);

    const term = await RawPeer.connect(portOf(server.addresses[0]!));
    term.write('/nick tess\n');
    await term.until((t) => t.includes('you are now tess'));
    await sees(ann, /is now tess/);
    await sees(ben, /is now tess/);

    await say(ann, 'hello from ann 你好');
    await sees(ben, 'ann: hello from ann 你好');
    await term.until((t) => t.includes('ann: hello from ann 你好\n'));

    term.write('hi browsers\n');
    await sees(ann, 'tess: hi browsers');
    await sees(ben, 'tess: hi browsers');

    await say(ben, 'ben here');
    await sees(ann, 'ben: ben here');
    await term.until((t) => t.includes('ben: ben here\n'));

    await ben.close();
    await sees(ann, '* ben left');
    await term.until((t) => t.includes('* ben left'));
    term.destroy();
  } finally {
    await browser?.close();
    await server.close();
  }
});

test('chat page: input cut to the limit in UTF-8 bytes, close reason shown, nickname kept across a reconnect', { timeout: 60000, skip: noChromium }, async () => {
  const server = await chatServer({ listen: ['text://127.0.0.1:0', 'ws://127.0.0.1:0'], log: quiet, noticeInterval: 50 });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(server.addresses[1]!.replace('ws://', 'http://') + '/');
    await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: 10000 });
    const say = async (text: string): Promise<void> => {
      await page.fill('#input', text);
      await page.press('#input', 'Enter');
    };
    const sees = (text: string | RegExp) => page.locator('#log li', { hasText: text }).first().waitFor({ timeout: 10000 });
    await say('/nick ann');
    await sees('you are now ann');
    const term = await RawPeer.connect(portOf(server.addresses[0]!));
    await term.until((t) => t.includes('you are guest'));

    // 4000 CJK characters are 12,000 bytes, over the chat's 8192: the page cuts them (whole
    // characters) instead of sending what the server would close the connection for.
    await say('中'.repeat(4000));
    await sees(/cut to 8192 bytes/);
    const line = (await term.until((t) => /ann: 中+\n/.test(t), 10000)).split('\n').find((l) => l.startsWith('ann: 中'))!;
    const sent = line.slice('ann: '.length);
    assert.equal(sent, '中'.repeat(2730), 'cut to the most whole characters that fit in 8192 bytes');
    await say('still here');
    await term.until((t) => t.includes('ann: still here\n'), 10000);
    assert.doesNotMatch(term.text, /ann left/, 'the page kept its connection');

    // The server closes the page's connection: the page says why, reconnects, and is ann again.
    const conn = [...server.connections].find((c) => c.address.scheme === 'ws')!;
    conn.close(4000, 'kicked by the test');
    await sees('disconnected (4000 kicked by the test)');
    await term.until((t) => /guest\d+ is now ann/.test(t), 15000);
    await page.locator('#status', { hasText: /^online$/ }).waitFor({ timeout: 10000 });
    await say('back again');
    await term.until((t) => t.includes('ann: back again\n'), 10000);
    term.destroy();
  } finally {
    await browser?.close();
    await server.close();
  }
});
