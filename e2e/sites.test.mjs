// The site integration examples (examples/site-go, examples/site-node): a
// website signs its own user in, derives an unguessable dl_ id, mints a
// Direct Line token with its secret on the server, and renders the official
// Web Chat with it, in Debian's Chromium against `parley demo`.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tempDir, startDemo, parleyBinary, waitFor } from './lib.mjs';
import { serveWebChat, launch, screenshot, openPage, transcriptItems, send } from './browser.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const idKey = 'test-key-' + 'k'.repeat(40);
const expectedId = (user) => 'dl_' + createHmac('sha256', idKey).update(user).digest().subarray(0, 18).toString('base64url');

let webchat, browser, demo;
const sites = {};
before(async () => {
  webchat = await serveWebChat();
  browser = await launch();
  const data = tempDir();
  demo = await startDemo({ listen: `127.0.0.1:${await freePort()}`, data, args: ['--webchat-url', webchat.url] });
  const goBin = join(tempDir(), 'site-go');
  execFileSync('go', ['build', '-o', goBin, './examples/site-go'], { cwd: root, stdio: 'inherit' });
  const commands = { go: [goBin, []], node: ['node', [join(root, 'examples/site-node/index.js')]] };
  for (const [name, [cmd, args]] of Object.entries(commands)) {
    const listen = `127.0.0.1:${await freePort()}`;
    const proc = spawn(cmd, args, {
      env: { ...process.env, PARLEY_DIRECTLINE: demo.info.directline, PARLEY_SITE_SECRET: demo.info.secret,
        SITE_USERS: 'alice:correct horse,bob:battery staple', SITE_ID_KEY: idKey, SITE_LISTEN: listen, WEBCHAT_URL: webchat.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    await waitFor(`the ${name} site`, () => { if (proc.exitCode !== null) throw new Error(out); return /site listening/.test(out); });
    sites[name] = { proc, url: `http://${listen}/`, origin: `http://${listen}`, output: () => out };
  }
  execFileSync(parleyBinary(), ['site', 'set-origins', '--data', data, '--site', 'demo-site', '--origin', demo.info.origin,
    ...Object.values(sites).flatMap((s) => ['--origin', s.origin])]);
  await new Promise((r) => setTimeout(r, 5500)); // policy changes apply within 5 s
});
after(async () => {
  await browser?.close();
  for (const s of Object.values(sites)) s.proc.kill('SIGTERM');
  await demo?.stop();
  await webchat?.close();
});

for (const name of ['go', 'node']) {
  test(`${name} site: sign in, token minted server-side for the derived dl_ id, chat`, { timeout: 90000 }, async () => {
    const site = sites[name];
    // No session, no token.
    const anon = await fetch(site.url + 'api/directline/token', { method: 'POST' });
    assert.equal(anon.status, 401);
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(site.url);
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', 'correct horse');
    await page.click('button');
    await page.locator('#user').getByText('alice').waitFor({ timeout: 10000 });
    const bound = expectedId('alice');
    await page.getByText('bound you to user id ' + bound).first().waitFor({ timeout: 20000 });
    await send(page, `hello from the ${name} site`);
    await transcriptItems(page, `You said: hello from the ${name} site`).filter({ hasText: `(from ${bound})` }).first().waitFor({ timeout: 20000 });
    const html = await page.content();
    assert.ok(!html.includes(demo.info.secret), 'the site secret reached the page');
    // Web Chat's transient "Connecting…" notice (a cold browser) clears.
    await page.waitForFunction(() => ![...document.querySelectorAll('.webchat__connectivityStatus')].some((e) => /Connecting/.test(e.textContent)), null, { timeout: 15000 });
    await screenshot(page, `site-${name}`);
    assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
    // A wrong password gets no session.
    const bad = await fetch(site.url + 'login', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'user=alice&password=wrong', redirect: 'manual' });
    assert.equal(bad.status, 401);
    await context.close();
  });
}
