// User sign-in from a bot, end to end (issue 12, item 6): the example bot
// (unmodified botbuilder 4.23.x and botbuilder-dialogs' OAuthPrompt) asks
// for a sign-in; in Debian's Chromium, Web Chat 4.18.1 shows the OAuthCard,
// the user clicks it and signs in at a real OpenID provider (ory/fosite,
// e2e/idp, a login form with a test user) and the bot receives the token
// with no magic code, then calls GetToken and SignOut.
//
// Deployment: Parley serves https://chat.parley.localhost:P (Chromium
// resolves *.localhost to loopback itself; the bot resolves it through the
// preloaded localhost-dns.cjs); the page is served on
// https://www.parley.localhost:Q (the same site as Parley) and on
// https://127.0.0.1:Q (another site).
//
// Third-party cookies are set through Chromium's own user setting, the
// preference profile.cookie_controls_mode of a throwaway profile
// (launchPersistentContext): 0 allows them, 1 blocks them (what Settings >
// "Block third-party cookies" stores). Measured with Chromium 156: with
// no preference, or in Playwright's incognito contexts, they are blocked;
// the --test-third-party-cookie-phaseout flag changes nothing here. The
// test proves the blocking from Chromium itself: the DevTools protocol
// reports the session cookie of the cross-site page as blocked with reason
// "UserPreferences", and the jar stays without it.
//   1. third-party cookies allowed, page on another site: no magic code;
//   2. third-party cookies blocked, page on the same site: no magic code;
//      page on another site: the cookie is blocked, the magic code shows;
//   3. the sign-in link opened in another browser context falls back to
//      the magic code; the code typed in another conversation does nothing,
//      in the right one it signs the user in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, appendFileSync, readFileSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { freePort, tempDir, waitFor, parleyBinary } from './lib.mjs';
import { chatPage, openPage, screenshot, send } from './browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const exampleBot = join(root, 'examples', 'botbuilder-bot', 'index.js');
const dnsPreload = join(here, 'localhost-dns.cjs');
const CONNECTION = 'idp';
const USER = 'alice';
const PASSWORD = 'alice-password-1';

function startProcess(name, cmd, args, env, readyPattern) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d) => { out += d; if (process.env.PARLEY_E2E_LOG) appendFileSync(process.env.PARLEY_E2E_LOG, `[${name}] ${d}`); };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const ready = waitFor(`${name} to start`, () => {
    if (proc.exitCode !== null) throw new Error(`${name} exited ${proc.exitCode}: ${out}`);
    return readyPattern.test(out);
  });
  return { proc, ready, output: () => out, async stop() { if (proc.exitCode === null) proc.kill('SIGTERM'); await exited; } };
}

/** Chromium headless; extra flags for the third-party cookie case. */
function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', ...extra],
  });
}

/**
 * A Chromium with a throwaway profile whose cookie setting is mode
 * (profile.cookie_controls_mode: 0 allow third-party cookies, 1 block
 * them). Resolves a persistent context that records, through the DevTools
 * protocol, the reasons Chromium gives for each cookie it refuses.
 */
async function launchProfile(mode) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  mkdirSync(join(dir, 'Default'));
  writeFileSync(join(dir, 'Default', 'Preferences'), JSON.stringify({ profile: { cookie_controls_mode: mode } }));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, ignoreHTTPSErrors: true, // the test CA
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  profiles.push(dir);
  context.blockedCookies = [];
  const watch = async (p) => {
    const cdp = await context.newCDPSession(p);
    cdp.on('Network.responseReceivedExtraInfo', (e) => {
      for (const b of e.blockedCookies || []) context.blockedCookies.push({ name: b.cookie?.name, reasons: b.blockedReasons });
    });
    await cdp.send('Network.enable');
  };
  context.watching = Promise.all(context.pages().map(watch));
  context.on('page', (p) => { context.watching = Promise.all([context.watching, watch(p)]); });
  return context;
}

let env; // what every test uses
const stops = [];
const profiles = []; // Chromium profile directories, removed at the end
before(async () => {
  const certs = process.env.PARLEY_E2E_CERTS;
  assert.ok(certs && process.env.NODE_EXTRA_CA_CERTS, 'run with the env of `npm test`, which makes the test CA');
  assert.match(readFileSync(join(certs, 'server.ext'), 'utf8'), /\*\.parley\.localhost/, 'the test certificate must cover *.parley.localhost (certs.sh)');
  const bin = parleyBinary();
  let idpBin = process.env.IDP_BIN;
  if (!idpBin) {
    idpBin = join(mkdtempSync(join(tmpdir(), 'parley-idp-')), 'idp');
    execFileSync('go', ['build', '-o', idpBin, './e2e/idp'], { cwd: root, stdio: 'inherit' });
  }
  const [port, botPort, pagePort] = [await freePort(), await freePort(), await freePort()];
  const base = `https://chat.parley.localhost:${port}`;
  const local = `https://127.0.0.1:${port}`; // the test's own calls (Node here does not resolve .localhost)
  const data = tempDir();

  // The identity provider, its client registered with Parley's exact callback.
  const clientSecret = 'E2E-IDP-SECRET-' + randomBytes(8).toString('hex');
  const secretFile = join(data, 'idp-client-secret');
  writeFileSync(secretFile, clientSecret, { mode: 0o600 });
  const idp = spawn(idpBin, ['-cert', join(certs, 'server.pem'), '-key', join(certs, 'server.key'),
    '-redirect-uri', `${base}/api/oauth/callback`, '-client-secret-file', secretFile, '-user', USER, '-password', PASSWORD],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  stops.push(async () => { if (idp.exitCode === null) { idp.kill('SIGTERM'); await new Promise((r) => idp.once('exit', r)); } });
  let idpErr = '';
  idp.stderr.on('data', (d) => { idpErr += d; });
  const { issuer } = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('idp did not start: ' + idpErr)), 20000);
    createInterface({ input: idp.stdout }).once('line', (l) => { clearTimeout(t); resolve(JSON.parse(l)); });
  });

  // The page: Web Chat on a token from the hash, talking to Parley's host name.
  const bundle = readFileSync(join(here, 'node_modules/botframework-webchat/dist/webchat.js'));
  const html = chatPage('/webchat.js', `
    const p = new URLSearchParams(location.hash.slice(1));
    const directLine = WebChat.createDirectLine({ token: p.get('token'), domain: ${JSON.stringify(base + '/v3/directline')} });
    WebChat.renderWebChat({ directLine }, document.getElementById('webchat'));
  `);
  const pages = createServer({ cert: readFileSync(join(certs, 'server.pem')), key: readFileSync(join(certs, 'server.key')) }, (req, res) => {
    if (req.url === '/webchat.js') { res.writeHead(200, { 'Content-Type': 'text/javascript' }); res.end(bundle); return; }
    if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }); res.end(html); return; }
    res.writeHead(404); res.end();
  });
  await new Promise((r) => pages.listen(pagePort, '127.0.0.1', r));
  stops.push(() => new Promise((r) => pages.close(r)));
  const sameSitePage = `https://www.parley.localhost:${pagePort}`;
  const otherSitePage = `https://127.0.0.1:${pagePort}`;

  // The operator: a bot, a site trusting both page origins, the connection.
  const bot = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'Sign-in example',
    '--endpoint', `http://127.0.0.1:${botPort}/api/messages`, '--public-url', base, '--json']));
  const site = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', bot.id, '--name', 'web',
    '--origin', sameSitePage, '--origin', otherSitePage, '--json']));
  execFileSync(bin, ['oauth', 'connection', 'create', '--data', data, '--bot', bot.id, '--name', CONNECTION, '--provider', 'oidc',
    '--issuer', issuer, '--client-id', 'parley-e2e', '--client-secret-file', '-', '--scopes', 'openid,profile,offline_access', '--json'],
  { input: clientSecret });
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: ${base}\ndata_dir: ${data}\n` +
    `tls:\n  cert_file: ${join(certs, 'server.pem')}\n  key_file: ${join(certs, 'server.key')}\nmetrics:\n  listen: 127.0.0.1:0\n`);
  // Go reads SSL_CERT_FILE: Parley trusts the test CA for the provider.
  const parley = startProcess('parley', bin, ['serve', '--config', cfg], { SSL_CERT_FILE: join(certs, 'ca.pem') }, /parley serving/);
  stops.push(() => parley.stop());
  await parley.ready;
  const botProc = startProcess('bot', 'node', ['--require', dnsPreload, exampleBot], {
    ...bot.settings, PORT: String(botPort), OAUTH_CONNECTION: CONNECTION, OAUTH_USERINFO_URL: `${issuer}/userinfo`,
  }, /bot listening/);
  stops.push(() => botProc.stop());
  await botProc.ready;

  async function dlToken() {
    const user = 'dl_' + randomBytes(12).toString('hex');
    const res = await fetch(`${local}/v3/directline/tokens/generate`, {
      method: 'POST', headers: { Authorization: `Bearer ${site.secrets[0]}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: { id: user } }),
    });
    assert.equal(res.status, 200);
    return { user, token: (await res.json()).token };
  }
  env = { base, sameSitePage, otherSitePage, parley, botProc, dlToken, clientSecret, issuer };
});
after(async () => {
  for (const stop of stops.reverse()) await stop();
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

/** Opens the chat page at origin in context; resolves {page, user}. */
async function openChat(context, origin) {
  const { user, token } = await env.dlToken();
  const page = await openPage(context);
  await context.watching;
  await page.goto(`${origin}/#token=${encodeURIComponent(token)}`);
  await page.getByText(`Hello ${user}`).first().waitFor({ timeout: 30000 });
  return { page, user };
}

/** Sends login, waits for the OAuthCard, clicks it; resolves the popup page (the sign-in window). */
async function clickSignIn(page) {
  await send(page, 'login');
  const button = page.getByRole('button', { name: 'Sign in' });
  await button.first().waitFor({ timeout: 20000 });
  const [popup] = await Promise.all([page.context().waitForEvent('page', { timeout: 20000 }), button.first().click()]);
  return popup;
}

/** Signs in at the provider's login form (in popup); resolves Parley's final page text. */
async function signInAtProvider(popup) {
  await popup.waitForURL((u) => u.href.startsWith(env.issuer + '/auth'), { timeout: 20000 });
  await popup.getByLabel('User').fill(USER);
  await popup.getByLabel('Password').fill(PASSWORD);
  await popup.getByRole('button', { name: 'Sign in' }).click();
  await popup.waitForURL((u) => u.href.startsWith(env.base + '/api/oauth/callback'), { timeout: 20000 });
  await popup.locator('h1').waitFor({ timeout: 20000 });
  return popup.locator('body').innerText();
}

const botSaid = (page, text) => page.locator('.webchat__basic-transcript__activity').filter({ hasText: text })
  .filter({ hasNot: page.locator('.webchat__stacked-layout--from-user') });

/** After a silent sign-in: the bot says who, then GetToken and SignOut through its UserTokenClient. */
async function tokenThenSignOut(page) {
  await botSaid(page, `signed in as ${USER}`).first().waitFor({ timeout: 20000 });
  await send(page, 'token');
  await botSaid(page, `token: signed in as ${USER}`).first().waitFor({ timeout: 20000 });
  await send(page, 'logout');
  await botSaid(page, 'signed out').first().waitFor({ timeout: 20000 });
  await send(page, 'token');
  await botSaid(page, 'token: none').first().waitFor({ timeout: 20000 });
}

function assertCleanLogs() {
  const out = env.parley.output();
  assert.ok(!out.includes(env.clientSecret), 'the client secret reached the logs');
  assert.doesNotMatch(env.botProc.output(), /turn error|process failed/, 'the bot failed a turn');
}

test('third-party cookies allowed: sign-in from an OAuthPrompt completes without a magic code', { timeout: 120000 }, async () => {
  const context = await launchProfile(0);
  try {
    const { page } = await openChat(context, env.otherSitePage);
    const popup = await clickSignIn(page);
    const text = await signInAtProvider(popup);
    assert.match(text, /You are signed in/, 'Parley showed: ' + text);
    assert.equal(await popup.locator('#magic-code').count(), 0, 'a magic code was shown');
    await tokenThenSignOut(page);
    await screenshot(page, 'signin-3pc-allowed');
    assert.deepEqual(context.blockedCookies, [], 'Chromium blocked a cookie');
    assert.deepEqual(page.errors, [], 'console errors');
    assertCleanLogs();
  } finally {
    await context.close();
  }
});

test('third-party cookies blocked: the same-site page signs in without a magic code; another site gets the code', { timeout: 150000 }, async () => {
  // Same site (www. and chat.parley.localhost): the session cookie is first-party.
  const context = await launchProfile(1);
  try {
    const { page } = await openChat(context, env.sameSitePage);
    const popup = await clickSignIn(page);
    const text = await signInAtProvider(popup);
    assert.match(text, /You are signed in/, 'Parley showed: ' + text);
    await tokenThenSignOut(page);
    await screenshot(page, 'signin-3pc-blocked-same-site');
    assert.ok((await context.cookies(env.base)).some((c) => c.name === '__Host-parley_dl_session'), 'the same-site page got no session cookie');
    assert.deepEqual(context.blockedCookies, [], 'Chromium blocked a first-party cookie');
  } finally {
    await context.close();
  }

  // The same setting, the page on another site: Chromium refuses the
  // session cookie as a third-party cookie, so the sign-in needs the code.
  const context2 = await launchProfile(1);
  try {
    const other = await openChat(context2, env.otherSitePage);
    const popup2 = await clickSignIn(other.page);
    const text2 = await signInAtProvider(popup2);
    assert.match(text2, /Type this code in the chat/, 'Parley showed: ' + text2);
    assert.deepEqual(context2.blockedCookies, [{ name: '__Host-parley_dl_session', reasons: ['UserPreferences'] }], 'what Chromium blocked');
    assert.deepEqual((await context2.cookies(env.base)).filter((c) => c.name === '__Host-parley_dl_session'), [], 'the third-party cookie was stored');
    const code = (await popup2.locator('#magic-code').innerText()).trim();
    assert.match(code, /^\d{6}$/);
    await send(other.page, code);
    await botSaid(other.page, `signed in as ${USER}`).first().waitFor({ timeout: 20000 });
    assertCleanLogs();
  } finally {
    await context2.close();
  }
});

test('another browser falls back to the magic code; the code does nothing in another conversation', { timeout: 150000 }, async () => {
  const browser = await launch();
  try {
    const mine = await browser.newContext({ ignoreHTTPSErrors: true });
    const links = [];
    mine.on('request', (r) => { if (r.url().startsWith(env.base + '/api/oauth/signin')) links.push(r.url()); });
    const { page } = await openChat(mine, env.sameSitePage);
    const popup = await clickSignIn(page);
    await popup.waitForURL((u) => u.href.startsWith(env.issuer + '/auth'), { timeout: 20000 });
    await popup.close();
    assert.equal(links.length, 1, 'sign-in links opened: ' + links.join(' '));
    // Web Chat appended its session id (code_challenge) to Parley's link.
    assert.match(decodeURIComponent(links[0]), /code_challenge=[A-Za-z0-9_-]{43}/);

    // The same link in another browser context (another cookie jar): the
    // provider signs the user in, but Parley cannot tell it is the same
    // browser, so it shows a magic code instead of completing.
    const elsewhere = await browser.newContext({ ignoreHTTPSErrors: true });
    const other = await openPage(elsewhere);
    await other.goto(links[0]);
    const text = await signInAtProvider(other);
    assert.match(text, /Type this code in the chat/, 'Parley showed: ' + text);
    const code = (await other.locator('#magic-code').innerText()).trim();
    assert.match(code, /^\d{6}$/);
    await screenshot(other, 'signin-other-browser-code');
    await page.waitForTimeout(1000);
    assert.equal(await botSaid(page, 'signed in as').count(), 0, 'the bot was signed in without the code');

    // The code typed into another conversation (another user, also signing in): nothing.
    const stranger = await openChat(elsewhere, env.otherSitePage);
    await send(stranger.page, 'login');
    await stranger.page.getByRole('button', { name: 'Sign in' }).first().waitFor({ timeout: 20000 });
    // The prompt asks Parley for the token with the code: 404, no token.
    const noToken = () => (env.parley.output().match(/"route":"GET \/api\/usertoken\/GetToken","status":404/g) || []).length;
    const before404 = noToken();
    await send(stranger.page, code);
    await waitFor('the bot to try the code', () => noToken() > before404, 20000);
    await stranger.page.waitForTimeout(500);
    assert.equal(await botSaid(stranger.page, 'signed in as').count(), 0, 'the code signed in another conversation');

    // Typed into the chat it belongs to, it signs the user in.
    await send(page, code);
    await tokenThenSignOut(page);
    assertCleanLogs();
    assert.ok(!env.parley.output().includes(code), 'the magic code reached the logs');
  } finally {
    await browser.close();
  }
});
