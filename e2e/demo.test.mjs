// The demo page loads only the Web Chat bundle it expects, and works
// offline: `parley demo --webchat-file` serves the npm bundle itself (the
// browser reaches nothing but the demo), a bundle that cannot load shows
// how to fix it, and a bundle whose bytes do not match its integrity hash
// is refused by the browser (Debian's Chromium).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { freePort, tempDir, startDemo } from './lib.mjs';
import { launch, openPage, send, serveWebChat, screenshot } from './browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const bundlePath = join(here, 'node_modules/botframework-webchat/dist/webchat.js');
const bundle = readFileSync(bundlePath);
const sri = (b) => 'sha384-' + createHash('sha384').update(b).digest('base64');

let browser;
const cleanups = [];
before(async () => { browser = await launch(); });
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await browser?.close();
});

async function demo(args) {
  const d = await startDemo({ listen: `127.0.0.1:${await freePort()}`, data: tempDir(), args });
  cleanups.push(() => d.stop());
  return d;
}

/** A browser context that lets the page reach only allowed origins and records every request. */
async function offlineContext(allowed) {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  const requests = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    requests.push(url);
    if (allowed.some((o) => url.startsWith(o + '/'))) return route.continue();
    return route.abort('internetdisconnected');
  });
  return { context, requests };
}

async function expectFixItMessage(page, url) {
  const help = page.locator('#webchat-help');
  await help.waitFor({ state: 'visible', timeout: 20000 });
  const text = await help.innerText();
  assert.match(text, /Web Chat did not load/);
  assert.ok(text.includes(url), 'the message names the URL that failed: ' + text);
  assert.match(text, /parley demo --webchat-file node_modules\/botframework-webchat\/dist\/webchat\.js/);
  assert.match(text, /--webchat-url/);
  assert.match(await page.locator('#status').innerText(), /did not load/);
  assert.equal(await page.evaluate(() => typeof window.WebChat), 'undefined');
}

test('--webchat-file: Web Chat renders and chats with nothing but the demo reachable', { timeout: 90000 }, async () => {
  const d = await demo(['--webchat-file', bundlePath]);
  const origin = d.info.origin;
  const { context, requests } = await offlineContext([origin]);
  const page = await openPage(context);
  const res = await page.goto(d.info.page);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, new RegExp(`script-src 'nonce-[A-Za-z0-9_-]+' ${origin}/demo/webchat\\.js;`));
  const tag = await page.locator('#webchat-script').evaluate((s) => ({ src: s.src, integrity: s.integrity }));
  assert.deepEqual(tag, { src: origin + '/demo/webchat.js', integrity: sri(bundle) });
  await page.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent), null, { timeout: 30000 });
  const boundId = await page.locator('#user-id').textContent();
  await page.getByText('The gateway bound you to user id ' + boundId).first().waitFor({ timeout: 20000 });
  await send(page, 'hello offline');
  await page.getByText('You said: hello offline').first().waitFor({ timeout: 20000 });
  assert.equal(await page.locator('#webchat-help').count(), 0, 'Web Chat replaced the fix-it message');
  await screenshot(page, 'demo-offline-webchat-file');
  const elsewhere = requests.filter((u) => !u.startsWith(origin + '/'));
  assert.deepEqual(elsewhere, [], 'the page asked for something beyond the demo');
  assert.ok(requests.includes(origin + '/demo/webchat.js'));
  assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
});

test('a bundle that cannot load: the page says to use --webchat-file or --webchat-url', { timeout: 90000 }, async () => {
  // An explicit URL nobody answers on.
  const dead = 'http://127.0.0.1:1/webchat.js';
  const d1 = await demo(['--webchat-url', dead]);
  const page = await openPage(browser);
  cleanups.push(() => page.close());
  await page.goto(d1.info.page);
  await expectFixItMessage(page, dead);
  await screenshot(page, 'demo-webchat-unreachable');

  // The default, pinned CDN bundle on a machine without internet access.
  const d2 = await demo([]);
  const { context, requests } = await offlineContext([d2.info.origin]);
  const offline = await openPage(context);
  await offline.goto(d2.info.page);
  await expectFixItMessage(offline, 'https://cdn.botframework.com/botframework-webchat/4.18.1/webchat.js');
  assert.ok(requests.includes('https://cdn.botframework.com/botframework-webchat/4.18.1/webchat.js'), 'the default is the pinned version: ' + requests.join(' '));
  assert.ok(!requests.some((u) => u.includes('/latest/')), 'a request for latest');
  const integrity = await offline.locator('#webchat-script').getAttribute('integrity');
  assert.match(integrity, /^sha384-[A-Za-z0-9+/]{64}$/);
});

test('bytes that do not match the integrity hash are refused by the browser', { timeout: 90000 }, async () => {
  // The npm bundle, and the same with one line added: a tampered CDN.
  const tampered = Buffer.concat([bundle, Buffer.from('\nwindow.tampered = true;\n')]);
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/javascript', 'Access-Control-Allow-Origin': '*' });
    res.end(tampered);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => srv.close(r)));
  const url = `http://127.0.0.1:${srv.address().port}/webchat.js`;
  const d = await demo(['--webchat-url', url, '--webchat-integrity', sri(bundle)]);
  const page = await openPage(browser);
  cleanups.push(() => page.close());
  const fetched = page.waitForResponse(url);
  await page.goto(d.info.page);
  assert.equal((await fetched).status(), 200, 'the tampered script was served');
  await expectFixItMessage(page, url);
  assert.equal(await page.evaluate(() => window.tampered), undefined, 'the tampered script ran');
  assert.ok(page.errors.some((e) => /integrity/i.test(e)), 'no integrity error in the console: ' + page.errors.join('\n'));

  // Control: the genuine bytes with the same hash and the same headers load.
  const genuine = await serveWebChat();
  cleanups.push(() => genuine.close());
  const d2 = await demo(['--webchat-url', genuine.url, '--webchat-integrity', sri(bundle)]);
  const ok = await openPage(browser);
  cleanups.push(() => ok.close());
  await ok.goto(d2.info.page);
  await ok.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent), null, { timeout: 30000 });
  assert.equal(await ok.evaluate(() => typeof window.WebChat), 'object');
});
