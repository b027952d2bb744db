// The official Web Chat (npm botframework-webchat 4.18.1) in Debian's
// Chromium on the demo page: the message a person types is sent (not
// "failed"), attributed to them, and the echo bot answers with the id the
// gateway bound.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, tempDir, startDemo } from './lib.mjs';
import { serveWebChat, launch, screenshot } from './browser.mjs';

let webchat, browser, demo;
before(async () => {
  webchat = await serveWebChat();
  browser = await launch();
  demo = await startDemo({ listen: `127.0.0.1:${await freePort()}`, data: tempDir(), args: ['--webchat-url', webchat.url] });
});
after(async () => {
  await browser?.close();
  await demo?.stop();
  await webchat?.close();
});

test('demo page: type a message, see it sent and echoed', { timeout: 90000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text() + ' ' + (m.location()?.url || '')); });
  await page.goto(demo.info.page);
  await page.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent), null, { timeout: 20000 });
  const boundId = await page.locator('#user-id').textContent();
  assert.match(boundId, /^dl_[A-Za-z0-9_-]{20,}$/);
  // The welcome message names the bound id.
  await page.getByText('The gateway bound you to user id ' + boundId).first().waitFor({ timeout: 20000 });
  const box = page.locator('[data-id="webchat-sendbox-input"]');
  await box.fill('hello from the browser');
  await box.press('Enter');
  await page.getByText('You said: hello from the browser').first().waitFor({ timeout: 20000 });
  await page.getByText(`(from ${boundId})`).first().waitFor({ timeout: 5000 });
  // Not marked as failed, on the user's side, and before the bot's echo.
  await page.waitForTimeout(500);
  const failed = await page.getByText(/send failed|could not send/i).count();
  assert.equal(failed, 0, 'the message shows as failed');
  assert.equal(await page.locator('.webchat__stacked-layout--from-user').filter({ hasText: 'hello from the browser' }).count(), 1, 'the message is not shown once on the user side');
  const order = await page.locator('.webchat__basic-transcript__activity').evaluateAll((els) => els.map((e) => e.innerText));
  const sentAt = order.findIndex((t) => t.includes('hello from the browser') && !t.includes('(from dl_'));
  const echoAt = order.findIndex((t) => t.includes('You said: hello from the browser') && t.includes('(from dl_'));
  assert.ok(sentAt >= 0 && echoAt > sentAt, `transcript order: sent at ${sentAt}, echo at ${echoAt}`);
  const status = await page.locator('#status').textContent();
  assert.match(status, /connected/);
  await screenshot(page, 'demo-echo');
  assert.deepEqual(errors, [], 'console errors: ' + errors.join('\n'));
});
