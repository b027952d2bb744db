// The web console (issue 13, item 5) in Debian's Chromium against
// `parley serve`: the owner enrolls with the bootstrap code and TOTP,
// invites an operator and an auditor; the operator enrolls, creates a site
// and cannot open the keys page (not in the navigation, and the server
// refuses it: 403); the auditor sees the new entries in the audit log and
// the chain verifies. Sign-in works by keyboard alone, and every form
// control has an accessible name. Screenshots: e2e/artifacts/console-*.png.
import { test, before, after } from 'node:test';
import { createServer } from 'node:http';
import assert from 'node:assert/strict';
import { launch, openPage } from './browser.mjs';
import { generateToken } from './agentlib.mjs';
import { startParleyWithConsole, freshCode, assertNamedControls, shot, unexpectedErrors, waitOrError } from './consolelib.mjs';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
// Long passphrases that do not contain the operator's name (the server refuses that).
const passwords = { owner: 'a tandem crosses the lagoon at dawn 41', olivia: 'seven herons fold maps by the canal 17', audrey: 'quiet ledgers hum under copper lamps 29' };
const password = (who) => passwords[who];

let parley, browser, refusingBot;
// What each person's enrollment left: {secret, used (TOTP steps used), context}.
const people = {};
const state = {};

before(async () => {
  parley = await startParleyWithConsole();
  browser = await launch();
  // A bot that refuses every activity for good (400): its deliveries
  // become dead letters at once.
  refusingBot = createServer((req, res) => { req.resume(); res.writeHead(400, { 'Content-Type': 'application/json' }); res.end('{"error":"no"}'); });
  await new Promise((r) => refusingBot.listen(0, '127.0.0.1', r));
});
after(async () => {
  for (const p of Object.values(people)) await p.context?.close();
  await browser?.close();
  await parley?.stop();
  await new Promise((r) => refusingBot?.close(r) ?? r());
});

/** Enrolls with a one-time code in a fresh browser context: returns the signed-in page. */
async function enroll(name, code, { screenshots = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await openPage(context);
  const person = { context, used: new Set(), page };
  people[name] = person;
  await page.goto(parley.admin + '/');
  await page.waitForURL('**/signin');
  await page.getByRole('link', { name: /Enroll with your one-time code/ }).click();
  await page.getByLabel('One-time enrollment code').fill(code);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('New password').fill(password(name));
  await page.getByLabel('Repeat the password').fill(password(name));
  if (screenshots) await assertNamedControls(page);
  await page.getByRole('button', { name: 'Continue' }).click();
  await waitOrError(page, page.getByLabel('Code shown by the app'));
  // The QR code is there (the server's PNG or the console's SVG), and the key as text.
  const qr = page.locator('#enroll-qr:visible, #enroll-qr-svg svg');
  await qr.first().waitFor();
  person.secret = (await page.locator('#enroll-secret').textContent()).trim();
  assert.match(person.secret, /^[A-Z2-7]{16,}=*$/, 'the TOTP key is shown as base32');
  if (screenshots) await shot(page, `${name}-enroll-totp`);
  await page.getByLabel('Code shown by the app').fill(await freshCode(person.secret, person.used));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await waitOrError(page, page.getByRole('heading', { name: 'Your recovery codes' }));
  const codes = await page.locator('#enroll-recovery li').allTextContents();
  assert.ok(codes.length >= 8, `recovery codes shown: ${codes.length}`);
  person.recovery = codes.map((c) => c.trim());
  if (screenshots) await shot(page, `${name}-recovery-codes`);
  await page.locator('#enroll-signin').click();
  // Confirming the code signs in (auth-shapes: POST /enroll/totp sets the
  // session); otherwise the link goes to the sign-in page.
  if (new URL(page.url()).pathname === '/signin') await signIn(page, name, person);
  await waitOrError(page, page.locator('#home-who').getByText(`Signed in as ${name}`));
  return page;
}

async function signIn(page, name, person) {
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Password').fill(password(name));
  await page.getByLabel('Authentication code').fill(await freshCode(person.secret, person.used));
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Opens a page from the navigation and waits until it has its data. */
async function goTo(page, label) {
  const link = page.getByRole('navigation').getByRole('link', { name: label, exact: true });
  await link.click();
  await page.locator(`#main[data-ready="${await link.getAttribute('data-page')}"]`).waitFor();
}

/** The values of the "shown once" box. */
async function shownOnce(page) {
  const box = page.locator('section.once');
  await waitOrError(page, box);
  return { title: (await box.locator('h2').textContent()).trim(), values: (await box.locator('code.secret').allTextContents()).map((s) => s.trim()) };
}

test('the console is served with its CSP and nothing external', async () => {
  for (const path of ['/', '/signin', '/keys', '/app.js']) {
    const res = await fetch(parley.admin + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-security-policy'), CSP, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  }
  assert.equal((await fetch(parley.admin + '/', { method: 'POST' })).status, 405);
  // The API still answers under /admin/v1 (not the console's fallback).
  const session = await fetch(parley.admin + '/admin/v1/session');
  assert.equal(session.status, 401);
  assert.equal((await session.json()).error.code, 'unauthenticated');
});

test('the owner enrolls with the bootstrap code and TOTP, registers a bot and invites an operator and an auditor', { timeout: 120000 }, async () => {
  const page = await enroll('owner', parley.code, { screenshots: true });
  // Every page an owner may use is in the navigation.
  for (const name of ['Bots', 'Sites', 'Origins', 'Conversations', 'Dead letters', 'Keys', 'Audit log', 'Security report', 'Operators', 'API tokens', 'Account']) {
    assert.ok(await page.getByRole('navigation').getByRole('link', { name, exact: true }).isVisible(), `${name} in the owner's navigation`);
  }
  // A bot, with its client secret shown once.
  await goTo(page, 'Bots');
  await page.getByLabel('Name', { exact: true }).fill('Support');
  await page.getByLabel('Messaging endpoint').fill(`http://127.0.0.1:${refusingBot.address().port}/api/messages`);
  await page.getByRole('button', { name: 'Register' }).click();
  const bot = await shownOnce(page);
  assert.ok(bot.values.some((v) => v.length >= 16), 'the bot client secret is shown: ' + JSON.stringify(bot));
  state.botName = 'Support';
  await page.getByRole('cell', { name: 'Support', exact: true }).first().waitFor();
  await assertNamedControls(page);
  await shot(page, 'owner-bots');
  // The keys page: its states, and rotation.
  await goTo(page, 'Keys');
  await page.getByRole('table', { name: 'Keys' }).waitFor();
  await page.getByLabel('Purpose').selectOption('directline-token');
  // Keys made at this first start are seconds old: the server refuses a
  // rotation then unless forced.
  await page.getByLabel('Rotate even if the next key is very new').check();
  await page.getByRole('button', { name: 'Rotate now' }).click();
  await waitOrError(page, page.locator('#status').getByText(/rotated/));
  await shot(page, 'owner-keys');
  // Invitations: one-time enrollment codes, shown once.
  await goTo(page, 'Operators');
  await page.getByLabel('Role').selectOption('operator');
  await page.getByRole('button', { name: 'Invite' }).click();
  const inv = await shownOnce(page);
  state.operatorCode = inv.values.find((v) => /^pec_/.test(v));
  assert.ok(state.operatorCode, 'an enrollment code for the operator: ' + JSON.stringify(inv));
  await shot(page, 'owner-invite');
  await page.locator('section.once').getByRole('button', { name: 'I copied it' }).click();
  await page.getByLabel('Role').selectOption('auditor');
  await page.getByRole('button', { name: 'Invite' }).click();
  state.auditorCode = (await shownOnce(page)).values.find((v) => /^pec_/.test(v));
  assert.ok(state.auditorCode);
  await assertNamedControls(page);
  assert.deepEqual(unexpectedErrors(page), []);
});

test('the operator enrolls, creates a site and cannot open the keys page', { timeout: 120000 }, async () => {
  assert.ok(state.operatorCode, 'needs the invitation');
  const page = await enroll('olivia', state.operatorCode);
  const nav = page.getByRole('navigation');
  assert.ok(await nav.getByRole('link', { name: 'Sites', exact: true }).isVisible());
  for (const hidden of ['Keys', 'Audit log', 'Operators', 'Security report']) {
    assert.equal(await nav.getByRole('link', { name: hidden, exact: true }).isVisible(), false, `${hidden} is not in the operator's navigation`);
  }
  await goTo(page, 'Sites');
  const botOption = page.getByLabel('Bot').locator('option', { hasText: state.botName }).first();
  await page.getByLabel('Bot').selectOption(await botOption.getAttribute('value'));
  await page.getByLabel('Name', { exact: true }).fill('web');
  await page.getByLabel('Trusted origins').fill('https://www.example.com');
  await page.getByRole('button', { name: 'Create' }).click();
  const site = await shownOnce(page);
  assert.equal(site.values.length, 2, 'two site secrets shown once: ' + JSON.stringify(site));
  state.siteSecret = site.values[0];
  state.siteId = /Site (\S+) created/.exec(site.title)?.[1];
  assert.ok(state.siteId, site.title);
  const row = page.getByRole('table', { name: 'Sites' }).getByRole('row').filter({ hasText: state.siteId });
  await row.waitFor();
  assert.match(await row.textContent(), /https:\/\/www\.example\.com/);
  await shot(page, 'operator-site');
  await assertNamedControls(page);
  // A direct visit to the keys page: the server refuses it and the page says so.
  await page.goto(parley.admin + '/keys');
  const refused = page.locator('.refused');
  await refused.waitFor();
  assert.match(await refused.textContent(), /403/);
  assert.equal(await page.getByRole('table', { name: 'Keys' }).count(), 0, 'no key is shown');
  await shot(page, 'operator-keys-refused');
  // And the API itself refuses it (the console only hides).
  const direct = await page.evaluate(async () => {
    const r = await fetch('/admin/v1/keys', { credentials: 'same-origin' });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(direct.status, 403);
  assert.equal(direct.body.error.code, 'forbidden');
  assert.deepEqual(unexpectedErrors(page), []);
});

test('sign-in works by keyboard alone', { timeout: 120000 }, async () => {
  const person = people.olivia;
  assert.ok(person, 'needs the operator');
  const page = person.page;
  await page.goto(parley.admin + '/account');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/signin');
  // The name field has the focus; Tab goes name → password → code → button.
  const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent);
  assert.equal(await focused(), 'signin-name');
  await page.keyboard.type('olivia');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'signin-password');
  await page.keyboard.type(password('olivia'));
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'signin-code');
  await assertNamedControls(page);
  await page.keyboard.type(await freshCode(person.secret, person.used));
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Sign in');
  await page.keyboard.press('Enter');
  await page.locator('#home-who').getByText('Signed in as olivia').waitFor();
  // A wrong code is refused with the server's message in the alert region.
  await page.goto(parley.admin + '/account');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/signin');
  await page.keyboard.type('olivia');
  await page.keyboard.press('Tab');
  await page.keyboard.type(password('olivia'));
  await page.keyboard.press('Tab');
  await page.keyboard.type('000000');
  await page.keyboard.press('Enter');
  const alert = page.locator('#error');
  await alert.waitFor();
  assert.match(await alert.textContent(), /401/);
  assert.equal(await focused(), 'error', 'the error takes the focus');
  await shot(page, 'signin-refused');
});

test('the auditor sees the new entries in the audit log, and the chain verifies', { timeout: 120000 }, async () => {
  assert.ok(state.auditorCode && state.siteId, 'needs the invitation and the site');
  const page = await enroll('audrey', state.auditorCode);
  await goTo(page, 'Audit log');
  const verify = page.locator('#audit-verify');
  await verify.getByText(/The chain (verifies|does NOT)/).waitFor();
  assert.match(await verify.textContent(), /^The chain verifies/);
  const log = page.getByRole('table', { name: /Audit log entries/ });
  await log.waitFor();
  const text = await log.textContent();
  assert.ok(text.includes(state.siteId), 'the site creation is in the log');
  assert.match(text, /denied/, "the operator's refused visit to the keys is in the log");
  assert.ok(/operator\.invite|operators\.manage/.test(text), 'the invitations are in the log');
  await shot(page, 'auditor-audit');
  // The security report: a client tries wrong Direct Line secrets; the
  // chart (inline SVG) and the table show it as an offender.
  for (let i = 0; i < 6; i++) {
    const r = await fetch(parley.public + '/v3/directline/tokens/generate', { method: 'POST', headers: { Authorization: 'Bearer not-a-secret-' + i, 'User-Agent': 'curl/8.0' } });
    assert.ok(r.status === 401 || r.status === 403 || r.status === 429, `a wrong secret: ${r.status}`);
  }
  await goTo(page, 'Security report');
  await page.locator('#security-chart svg').waitFor();
  const offenders = page.getByRole('table', { name: 'Top offenders' });
  for (let i = 0; i < 20 && !(await offenders.isVisible()); i++) {
    await page.waitForTimeout(500);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.locator('#main[data-ready="security"]').waitFor();
  }
  assert.match(await offenders.textContent(), /curl/, 'the offender is in the table');
  assert.ok(await page.locator('#security-chart svg rect[class^="s"]').count() >= 1, 'the chart has a mark for it');
  await shot(page, 'auditor-security');
  // The auditor may not manage operators: no invitation form.
  await goTo(page, 'Operators');
  await page.getByRole('table', { name: 'Operators' }).waitFor();
  assert.equal(await page.locator('#operator-form').isVisible(), false);
  await assertNamedControls(page);
  assert.deepEqual(unexpectedErrors(page), []);
});

test('every page of the owner opens without an error; origins, an API token and the security report work', { timeout: 120000 }, async () => {
  const owner = people.owner;
  assert.ok(owner && state.siteId, 'needs the owner and the site');
  const page = owner.page;
  page.setDefaultTimeout(15000);
  const nav = page.getByRole('navigation');
  for (const name of ['Bots', 'Sites', 'Origins', 'Conversations', 'Dead letters', 'Keys', 'Audit log', 'Security report', 'Operators', 'API tokens', 'Account']) {
    const link = nav.getByRole('link', { name, exact: true });
    await link.click();
    await page.locator(`#main[data-ready="${await link.getAttribute('data-page')}"]`).waitFor();
    const error = page.locator('#error:not([hidden]), .refused');
    if (await error.count()) assert.fail(`${name}: ${await error.first().textContent()}`);
    assert.equal(await nav.getByRole('link', { name, exact: true }).getAttribute('aria-current'), 'page');
    await assertNamedControls(page);
  }
  // A conversation of the operator's site (started over Direct Line with
  // its secret) is listed, and the owner erases it.
  const tok = await generateToken(parley.public + '/v3/directline', state.siteSecret, 'dl_console_e2e_user');
  const conv = await fetch(parley.public + '/v3/directline/conversations', { method: 'POST', headers: { Authorization: 'Bearer ' + tok.token } });
  const convBody = await conv.text();
  assert.equal(conv.status, 201, convBody);
  const { conversationId } = JSON.parse(convBody);
  // The bot refuses the conversation's first activity: a dead letter,
  // redelivered (refused again) and then dropped.
  await goTo(page, 'Dead letters');
  const dead = page.getByRole('table', { name: 'Dead letters' }).getByRole('row').filter({ hasText: conversationId });
  for (let i = 0; i < 40 && !(await dead.count()); i++) {
    await page.waitForTimeout(250);
    await goTo(page, 'Dead letters');
    await page.locator('#main[data-ready="dead-letters"]').waitFor();
  }
  assert.match(await dead.first().textContent(), /400/);
  await shot(page, 'owner-dead-letters');
  await dead.first().getByRole('button', { name: /^Redeliver dead letter/ }).click();
  await waitOrError(page, page.locator('#status').getByText(/put back in the outbox/));
  for (let i = 0; i < 40 && !(await dead.count()); i++) {
    await page.waitForTimeout(250);
    await goTo(page, 'Dead letters');
    await page.locator('#main[data-ready="dead-letters"]').waitFor();
  }
  page.once('dialog', (d) => d.accept());
  await dead.first().getByRole('button', { name: /^Drop dead letter/ }).click();
  await waitOrError(page, page.locator('#status').getByText(/dropped/));
  await goTo(page, 'Conversations');
  await page.locator('#main[data-ready="conversations"]').waitFor();
  const convRow = page.getByRole('table', { name: 'Conversations' }).getByRole('row').filter({ hasText: conversationId });
  await convRow.waitFor();
  await shot(page, 'owner-conversations');
  page.once('dialog', (d) => d.accept());
  await convRow.getByRole('button', { name: `Erase conversation ${conversationId}` }).click();
  await waitOrError(page, page.locator('#status').getByText(`Conversation ${conversationId} erased.`));
  assert.equal(await convRow.count(), 0);
  // Origins: the operator's site, replaced by two origins.
  await goTo(page, 'Origins');
  await page.getByLabel('Site').selectOption(state.siteId);
  assert.equal(await page.getByLabel('Origins').inputValue(), 'https://www.example.com');
  await page.getByLabel('Origins').fill('https://www.example.com\nhttps://shop.example.com');
  await page.getByRole('button', { name: 'Save the origins' }).click();
  await waitOrError(page, page.locator('#status').getByText(/Origins of .* saved/));
  await goTo(page, 'Sites');
  const row = page.getByRole('table', { name: 'Sites' }).getByRole('row').filter({ hasText: state.siteId });
  await row.getByText(/shop\.example\.com/).waitFor();
  // An API token, shown once, that works as a bearer token for its role.
  await goTo(page, 'API tokens');
  await page.getByLabel('Name', { exact: true }).fill('ci');
  await page.getByLabel('Role').selectOption('auditor');
  await page.getByRole('button', { name: 'Create' }).click();
  const token = (await shownOnce(page)).values[0];
  assert.match(token, /^ptk_/);
  await shot(page, 'owner-token');
  const asToken = (path) => fetch(parley.admin + '/admin/v1' + path, { headers: { Authorization: 'Bearer ' + token } });
  assert.equal((await asToken('/audit/verify')).status, 200, 'the auditor token reads the audit log');
  assert.equal((await asToken('/operators')).status, 200);
  await page.getByRole('table', { name: 'API tokens' }).getByRole('button', { name: 'Revoke token ci' }).click({ trial: true });
  // The security report: the refused sign-in earlier is not a Direct Line
  // failure, so the chart may be empty, but it is drawn.
  await goTo(page, 'Security report');
  await page.locator('#security-chart svg').waitFor();
  await page.getByLabel('Period').selectOption('1h');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.locator('#security-chart svg').waitFor();
  assert.deepEqual(unexpectedErrors(page), []);
});

test('an owner change asks to re-authenticate, then goes on', { timeout: 120000 }, async () => {
  const owner = people.owner;
  assert.ok(owner && people.audrey, 'needs the owner and the auditor');
  const page = owner.page;
  await page.goto(parley.admin + '/operators');
  const row = page.getByRole('table', { name: 'Operators' }).getByRole('row').filter({ hasText: 'audrey' });
  await row.getByRole('button', { name: 'Disable operator audrey' }).click();
  // PATCH /operators/{id} needs a recent sign-in: the dialog asks for the password and a code.
  const dialog = page.getByRole('dialog', { name: 'Confirm it is you' });
  await dialog.waitFor();
  await assertNamedControls(page);
  await dialog.getByLabel('Password').fill(password('owner'));
  await dialog.getByLabel('Authentication code').fill(await freshCode(owner.secret, owner.used));
  await shot(page, 'owner-reauth');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await waitOrError(page, page.locator('#status').getByText('Operator audrey disabled.'));
  assert.match(await row.textContent(), /disabled/);
  // New recovery codes (a re-authenticated session: no second dialog), shown once.
  await goTo(page, 'Account');
  await page.getByRole('button', { name: 'Make new recovery codes' }).click();
  const fresh = await shownOnce(page);
  assert.ok(fresh.values.length >= 8, 'new recovery codes: ' + JSON.stringify(fresh));
  assert.ok(!fresh.values.some((c) => owner.recovery.includes(c)), 'the codes are new');
  assert.deepEqual(unexpectedErrors(page), []);
});
