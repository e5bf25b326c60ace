/** The browser chat: two headless Chromium pages and one text:// client share one room. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chatServer } from '../src/apps/index.js';
import { RawPeer, portOf, quiet } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';

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

test('two browser pages and a text client chat in one room', { timeout: 60000, skip: !existsSync(CHROMIUM) && 'Debian chromium is not installed' }, async () => {
  const server = await chatServer({ listen: ['text://127.0.0.1:0', 'ws://127.0.0.1:0'], log: quiet });
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
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
