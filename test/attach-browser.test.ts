/** Debian's Chromium opens a page of an Express app and talks to a WebSocket endpoint attached to the same port. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium, noChromium } from './browser.js';
import { Server } from '../src/index.js';
import { APPS } from './attach-support.js';
import { makeCertificate } from './helpers.js';


test('a browser page of the app echoes through the attached endpoint (its Origin allowed by origins)', { timeout: 60000, skip: noChromium }, async () => {
  const app = await APPS.express!(makeCertificate());
  const server = new Server({ websocket: { origins: [app.base] } });
  server.on('connection', (c) => c.on('message', (m) => c.send(`echo:${String(m)} (${c.request?.origin ?? 'no origin'})`)));
  server.attach(app.http, { path: '/ws' });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${app.base}/hello`);
    assert.equal(await page.textContent('body'), 'hello from express');
    const wsUrl = `${app.base.replace('http', 'ws')}/ws`;
    const reply = await page.evaluate((url) => new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => ws.send('from chromium');
      ws.onmessage = (e) => { resolve(String(e.data)); ws.close(); };
      ws.onerror = () => reject(new Error('WebSocket error'));
      setTimeout(() => reject(new Error('no reply within 10 s')), 10000);
    }), wsUrl);
    assert.equal(reply, `echo:from chromium (${app.base})`);
  } finally {
    await browser?.close();
    await server.close();
    await app.stop();
  }
});
