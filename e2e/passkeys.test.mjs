// Passkeys in the web console (issue 13, item 3), in Debian's Chromium
// with its virtual authenticator (CTAP2, internal transport, resident keys,
// user verification) against `parley serve`: the owner enrolls with TOTP,
// adds a passkey on the account page (after re-authenticating), signs out,
// and signs in again with the password and the passkey instead of the
// code. The console is opened at http://localhost:PORT: a loopback admin
// listener without operators.webauthn derives the relying party from it
// (browsers refuse an IP address as RP ID). Screenshots:
// e2e/artifacts/console-passkey-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage } from './browser.mjs';
import { startParleyWithConsole, freshCode, assertNamedControls, shot, unexpectedErrors } from './consolelib.mjs';

/** Waits for locator; when the console shows an error first, fails with its message. */
async function waitOrError(page, locator, timeout = 15000) {
  const alert = page.locator('#error:not([hidden]), .refused, .dialog-error:not([hidden])').first();
  await Promise.race([locator.first().waitFor({ timeout }), alert.waitFor({ timeout })]);
  if (!(await locator.first().isVisible()) && await alert.isVisible()) {
    throw new Error(`the console shows an error instead: ${(await alert.textContent()).trim()}`);
  }
}

const password = 'ribbons of fog drift past the pier 73';

let parley, browser, context, page, base;
const person = { used: new Set() };

before(async () => {
  parley = await startParleyWithConsole();
  base = parley.admin.replace('127.0.0.1', 'localhost');
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await openPage(context);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  person.cdp = cdp;
  person.authenticatorId = authenticatorId;
});
after(async () => {
  await context?.close();
  await browser?.close();
  await parley?.stop();
});

test('an owner registers a passkey, signs out, and signs in with the password and the passkey', { timeout: 120000 }, async () => {
  // Enroll the first owner (password + TOTP).
  await page.goto(base + '/');
  await page.waitForURL('**/signin');
  await page.getByRole('link', { name: /Enroll with your one-time code/ }).click();
  await page.getByLabel('One-time enrollment code').fill(parley.code);
  await page.getByLabel('Name', { exact: true }).fill('owner');
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('Repeat the password').fill(password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await waitOrError(page, page.getByLabel('Code shown by the app'));
  person.secret = (await page.locator('#enroll-secret').textContent()).trim();
  await page.getByLabel('Code shown by the app').fill(await freshCode(person.secret, person.used));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await waitOrError(page, page.getByRole('heading', { name: 'Your recovery codes' }));
  await page.locator('#enroll-signin').click();
  if (new URL(page.url()).pathname === '/signin') {
    await page.getByLabel('Name', { exact: true }).fill('owner');
    await page.getByLabel('Password').fill(password);
    await page.getByLabel('Authentication code').fill(await freshCode(person.secret, person.used));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }
  await waitOrError(page, page.locator('#home-who').getByText('Signed in as owner'));

  // The account page: no passkey yet; adding one asks to re-authenticate.
  await page.getByRole('navigation').getByRole('link', { name: 'Account', exact: true }).click();
  const section = page.locator('#passkeys');
  await section.getByText('You have no passkey.').waitFor();
  await page.getByLabel('Name of the new passkey').fill('Chromium virtual key');
  await assertNamedControls(page);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  const dialog = page.getByRole('dialog', { name: 'Confirm it is you' });
  await dialog.waitFor();
  await dialog.getByLabel('Password').fill(password);
  await dialog.getByLabel('Authentication code').fill(await freshCode(person.secret, person.used));
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await waitOrError(page, section.getByText('Chromium virtual key'));
  await section.getByText('You have 1 passkey.').waitFor();
  await shot(page, 'passkey-registered');
  const creds = await person.cdp.send('WebAuthn.getCredentials', { authenticatorId: person.authenticatorId });
  assert.equal(creds.credentials.length, 1, 'the virtual authenticator holds one credential');
  assert.equal(creds.credentials[0].rpId, 'localhost');
  const countAfterRegistration = creds.credentials[0].signCount;

  // Sign out, then sign in with the password and the passkey (no code).
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/signin');
  await page.getByLabel('Name', { exact: true }).fill('owner');
  await page.getByLabel('Password').fill(password);
  await assertNamedControls(page);
  await shot(page, 'passkey-signin');
  await page.getByRole('button', { name: /Sign in with a passkey/ }).click();
  await waitOrError(page, page.locator('#home-who').getByText('Signed in as owner'));
  const after = await person.cdp.send('WebAuthn.getCredentials', { authenticatorId: person.authenticatorId });
  assert.ok(after.credentials[0].signCount > countAfterRegistration, 'the authenticator signed (its counter went up)');

  // The server's record: a passkey sign-in in the audit log, and the
  // passkey's last use.
  const me = await page.evaluate(async () => {
    const r = await fetch('/admin/v1/me/passkeys', { credentials: 'same-origin' });
    return r.json();
  });
  assert.equal(me.passkeys.length, 1);
  assert.ok(me.passkeys[0].lastUsedAt, 'last use recorded');
  const entries = await page.evaluate(async () => {
    const r = await fetch('/admin/v1/audit?after=0&limit=500', { credentials: 'same-origin' });
    return r.json();
  });
  const list = Array.isArray(entries) ? entries : (entries.entries || entries.items || []);
  assert.ok(list.some((e) => e.action === 'session.login' && e.outcome === 'success' && (e.detail || {}).mfa === 'passkey'),
    'a passkey sign-in is in the audit log');
  assert.ok(list.some((e) => e.action === 'mfa.passkey.register' && e.outcome === 'success'), 'the registration is in the audit log');
  await shot(page, 'passkey-signed-in');

  // A sensitive action (new recovery codes) asks to re-authenticate: the
  // dialog's passkey button does it, without the password or a code.
  await page.getByRole('navigation').getByRole('link', { name: 'Account', exact: true }).click();
  await page.getByRole('button', { name: 'Make new recovery codes' }).click();
  const again = page.getByRole('dialog', { name: 'Confirm it is you' });
  await again.waitFor();
  await shot(page, 'passkey-reauth-dialog');
  await again.getByRole('button', { name: 'Use a passkey instead' }).click();
  await again.waitFor({ state: 'detached' });
  const audit = await page.evaluate(async () => {
    const r = await fetch('/admin/v1/audit?after=0&limit=500', { credentials: 'same-origin' });
    return r.json();
  });
  const all = Array.isArray(audit) ? audit : (audit.entries || audit.items || []);
  assert.ok(all.some((e) => e.action === 'session.reauth' && e.outcome === 'success' && (e.detail || {}).mfa === 'passkey'),
    'a passkey re-authentication is in the audit log');
  await page.waitForFunction(async () => {
    const r = await fetch('/admin/v1/audit?after=0&limit=500', { credentials: 'same-origin' });
    const d = await r.json();
    const l = Array.isArray(d) ? d : (d.entries || d.items || []);
    return l.some((e) => e.action === 'mfa.recovery_codes' && e.outcome === 'success');
  });
  assert.equal(await page.locator('#error').isVisible(), false, 'no error shown');
  assert.deepEqual(unexpectedErrors(page), []);
});
