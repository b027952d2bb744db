// The official Web Chat (npm botframework-webchat 4.18.1) in Debian's
// Chromium against `parley demo`: what a user meets, and what a hostile page
// script tries. Every scenario saves a screenshot.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { freePort, tempDir, startDemo, parleyBinary } from './lib.mjs';
import { serveWebChat, launch, screenshot, chatPage, openPage, transcriptItems, send } from './browser.mjs';

// webchat serves the bundle and the test pages of a website whose origin
// the demo site trusts; other is a second loopback origin it does not.
let webchat, other, browser, demo;
before(async () => {
  webchat = await serveWebChat();
  other = await serveWebChat();
  browser = await launch();
  const data = tempDir();
  demo = await startDemo({ listen: `127.0.0.1:${await freePort()}`, data, args: ['--webchat-url', webchat.url] });
  execFileSync(parleyBinary(), ['site', 'set-origins', '--data', data, '--site', 'demo-site', '--origin', demo.info.origin, '--origin', webchat.origin]);
  await new Promise((r) => setTimeout(r, 5500)); // a running gateway applies policy changes within 5 s
});
after(async () => {
  await browser?.close();
  await demo?.stop();
  await webchat?.close();
  await other?.close();
});

const wait = { timeout: 20000 };

/** A page of the trusted website (its backend is the test, minting tokens). */
function trustedPage(path, html) {
  return webchat.page(path, html);
}

/** The bot's echo of text (Web Chat labels the user's own messages "You said:" too). */
function echo(page, text) {
  return transcriptItems(page, 'You said: ' + text).filter({ hasText: '(from dl_' });
}

async function generateToken(userId) {
  const res = await fetch(demo.info.directline + '/tokens/generate', {
    method: 'POST', headers: { Authorization: 'Bearer ' + demo.info.secret, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: userId } }),
  });
  assert.equal(res.status, 200);
  return { ...(await res.json()), userId };
}

test('impersonation from the page: userID prop, hand-built from.id and setUserId change nothing', { timeout: 90000 }, async () => {
  const page = await openPage(browser);
  const minted = await generateToken('dl_' + Math.random().toString(36).slice(2) + Date.now());
  const url = trustedPage('/impersonate.html', chatPage(webchat.url, `
    const token = ${JSON.stringify(minted.token)};
    window.bound = ${JSON.stringify(minted.userId)};
    const dl = WebChat.createDirectLine({ token, domain: ${JSON.stringify(demo.info.directline)} });
    dl.setUserId('mallory');            // DirectLineJS: ignored, the token carries the user
    window.dl = dl;
    WebChat.renderWebChat({ directLine: dl, userID: 'dl_mallory', username: 'Mallory' }, document.getElementById('webchat'));
  `));
  await page.goto(url);
  const bound = await page.waitForFunction(() => window.bound).then((h) => h.jsonValue());
  assert.match(bound, /^dl_/);
  await page.getByText('bound you to user id ' + bound).first().waitFor(wait);
  await send(page, 'typed as mallory');
  await echo(page, 'typed as mallory').filter({ hasText: `(from ${bound})` }).first().waitFor(wait);
  // A hand-built activity claiming another sender.
  await page.evaluate(() => new Promise((resolve, reject) => window.dl.postActivity({
    type: 'message', from: { id: 'dl_mallory', name: 'Mallory', role: 'bot' }, text: 'forged sender',
  }).subscribe({ next: resolve, error: reject })));
  await echo(page, 'forged sender').filter({ hasText: `(from ${bound})` }).first().waitFor(wait);
  const body = await page.locator('#webchat').textContent();
  assert.doesNotMatch(body, /\(from (dl_)?mallory\)/, 'the bot saw an impersonated id');
  await screenshot(page, 'impersonation');
  assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
});

test('untrusted origin: no sign-in session, no stream; the trusted origin gets both', { timeout: 90000 }, async () => {
  const { token, conversationId } = await generateToken('dl_origin_probe');
  const start = await fetch(demo.info.directline + '/conversations', { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
  assert.ok(start.ok);
  const streamFor = async () => {
    const r = await fetch(`${demo.info.directline}/conversations/${encodeURIComponent(conversationId)}?watermark=`, { headers: { Authorization: 'Bearer ' + token } });
    return (await r.json()).streamUrl;
  };
  const probe = (streamUrl) => chatPage(webchat.url, `
    const out = {};
    try {
      const r = await fetch(${JSON.stringify(demo.info.directline)} + '/session/getsessionid', { credentials: 'include', headers: { Authorization: 'Bearer ' + ${JSON.stringify(token)} } });
      out.session = r.status;
    } catch (e) { out.session = 'blocked'; }
    out.stream = await new Promise((resolve) => {
      const ws = new WebSocket(${JSON.stringify(streamUrl)});
      ws.onopen = () => { resolve('open'); ws.close(); };
      ws.onerror = () => resolve('error');
      setTimeout(() => resolve('timeout'), 10000);
    });
    window.probe = out;
  `);
  const untrusted = await openPage(browser);
  await untrusted.goto(other.page('/probe.html', probe(await streamFor())));
  const bad = await untrusted.waitForFunction(() => window.probe).then((h) => h.jsonValue());
  assert.equal(bad.session, 'blocked', 'getsessionid answered an untrusted origin');
  assert.equal(bad.stream, 'error', 'the stream opened for an untrusted origin');
  await screenshot(untrusted, 'untrusted-origin');

  const trusted = await openPage(browser);
  await trusted.goto(trustedPage('/probe.html', probe(await streamFor())));
  const good = await trusted.waitForFunction(() => window.probe).then((h) => h.jsonValue());
  assert.deepEqual(good, { session: 200, stream: 'open' }, 'control: the trusted origin');
});

test('two tabs on one conversation both receive the bot', { timeout: 90000 }, async () => {
  const context = await browser.newContext();
  const tab1 = await openPage(context);
  const user = 'dl_tabs' + Date.now();
  const creds = await generateToken(user);
  await tab1.goto(trustedPage('/tab1.html', chatPage(webchat.url, `
    WebChat.renderWebChat({ directLine: WebChat.createDirectLine({ token: ${JSON.stringify(creds.token)}, domain: ${JSON.stringify(demo.info.directline)} }) }, document.getElementById('webchat'));
  `)));
  await tab1.getByText('bound you to user id ' + creds.userId).first().waitFor(wait);
  // The second tab resumes the conversation with its id and token.
  const tab2 = await openPage(context);
  await tab2.goto(trustedPage('/tab2.html', chatPage(webchat.url, `
    WebChat.renderWebChat({ directLine: WebChat.createDirectLine({ token: ${JSON.stringify(creds.token)}, conversationId: ${JSON.stringify(creds.conversationId)}, domain: ${JSON.stringify(demo.info.directline)} }) }, document.getElementById('webchat'));
  `)));
  await tab2.getByText('bound you to user id ' + creds.userId).first().waitFor(wait);
  await send(tab1, 'from tab one');
  await send(tab2, 'from tab two');
  for (const tab of [tab1, tab2]) {
    await echo(tab, 'from tab one').first().waitFor(wait);
    await echo(tab, 'from tab two').first().waitFor(wait);
  }
  await screenshot(tab1, 'two-tabs-1');
  await screenshot(tab2, 'two-tabs-2');
  assert.deepEqual([...tab1.errors, ...tab2.errors], []);
  await context.close();
});

test('a file upload reaches the bot and renders for the user', { timeout: 90000 }, async () => {
  const page = await openPage(browser);
  await page.goto(demo.info.page);
  const bound = await page.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent) && document.querySelector('#user-id').textContent).then((h) => h.jsonValue());
  await page.getByText('bound you to user id ' + bound).first().waitFor(wait);
  await page.locator('input[type="file"]').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from a file\n') });
  await send(page, 'here is a file');
  // The bot fetched the file through its download link: name, type and size.
  await echo(page, 'here is a file').filter({ hasText: 'You sent notes.txt (text/plain, 18 bytes).' }).first().waitFor(wait);
  // The user's own message shows the file.
  await page.locator('.webchat__stacked-layout--from-user').filter({ hasText: 'notes.txt' }).first().waitFor(wait);
  await screenshot(page, 'upload');
  assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
});

test('typing indicator, hero card and Adaptive Card from the bot render', { timeout: 90000 }, async () => {
  const page = await openPage(browser);
  await page.goto(demo.info.page);
  await page.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent));
  await page.getByText('bound you to user id').first().waitFor(wait);
  await send(page, 'cards');
  await page.locator('.webchat__typing-indicator').first().waitFor(wait);
  await page.locator('.ac-adaptiveCard').filter({ hasText: 'Parley hero card' }).first().waitFor(wait);
  const adaptive = page.locator('.ac-adaptiveCard').filter({ hasText: 'Parley adaptive card' }).first();
  await adaptive.waitFor(wait);
  const bound = await page.locator('#user-id').textContent();
  assert.ok((await adaptive.textContent()).includes(bound), 'the card shows the bound user');
  await screenshot(page, 'cards');
  assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
});

test('restart: Web Chat reconnects with its watermark and shows every message once', { timeout: 120000 }, async () => {
  const listen = `127.0.0.1:${await freePort()}`;
  const data = tempDir();
  let own = await startDemo({ listen, data, args: ['--webchat-url', webchat.url] });
  try {
    const page = await openPage(browser);
    await page.goto(own.info.page);
    await page.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent));
    await page.getByText('bound you to user id').first().waitFor(wait);
    await send(page, 'before restart');
    await echo(page, 'before restart').first().waitFor(wait);
    await own.stop();
    own = await startDemo({ listen, data, args: ['--webchat-url', webchat.url] });
    await page.waitForFunction(() => /connected/.test(document.querySelector('#status').textContent), null, { timeout: 60000 });
    await send(page, 'after restart');
    await echo(page, 'after restart').first().waitFor({ timeout: 60000 });
    await page.waitForTimeout(1500); // let any duplicate arrive
    const counts = {
      welcome: await transcriptItems(page, 'bound you to user id').count(),
      'echo before': await echo(page, 'before restart').count(),
      'echo after': await echo(page, 'after restart').count(),
      // The user's own messages (their label is "You said: …" without the bot's "(from …)").
      'sent before': await transcriptItems(page, 'You said: before restart').count() - await echo(page, 'before restart').count(),
      'sent after': await transcriptItems(page, 'You said: after restart').count() - await echo(page, 'after restart').count(),
    };
    assert.deepEqual(counts, { welcome: 1, 'echo before': 1, 'echo after': 1, 'sent before': 1, 'sent after': 1 }, 'every message exactly once');
    await screenshot(page, 'restart');
  } finally {
    await own.stop();
  }
});

test('long session: across several token lifetimes the conversation keeps working', { timeout: 400000 }, async () => {
  const own = await startDemo({ listen: `127.0.0.1:${await freePort()}`, data: tempDir(), args: ['--webchat-url', webchat.url, '--token-ttl', '1m'] });
  try {
    const page = await openPage(browser);
    await page.goto(own.info.page);
    await page.waitForFunction(() => /^dl_/.test(document.querySelector('#user-id').textContent));
    await page.getByText('bound you to user id').first().waitFor(wait);
    // Three and a half lifetimes of one minute, a message in each.
    for (let i = 1; i <= 4; i++) {
      await send(page, `message ${i}`);
      await echo(page, `message ${i}`).first().waitFor(wait);
      if (i < 4) await page.waitForTimeout(65000);
    }
    const refreshes = await page.evaluate(() => window.parleyTokenRefreshes || 0);
    assert.ok(refreshes >= 5, `the page refreshed its token ${refreshes} times`);
    assert.match(await page.locator('#status').textContent(), /connected/);
    await screenshot(page, 'long-session');
    assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
  } finally {
    await own.stop();
  }
});
