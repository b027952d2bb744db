// Helpers of the web console's end-to-end test: RFC 6238 TOTP codes (with
// node:crypto only), `parley serve` with the admin listener, and an
// accessibility check of the page's form controls.
import { createHmac } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tempDir, parleyBinary, waitFor } from './lib.mjs';
import { startProcess } from './agentlib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
/** Where the console's screenshots go (not committed). */
export const artifactDir = join(here, 'artifacts');

/** Decodes RFC 4648 base32 (any case, padding and spaces ignored). */
export function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = s.toUpperCase().replace(/[\s=]/g, '');
  let bits = 0, value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret for time step counter. */
export function hotp(secret, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', base32Decode(secret)).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const n = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(n % 10 ** digits).padStart(digits, '0');
}

export const step = (t = Date.now()) => Math.floor(t / 30000);

/** The current TOTP code of secret. */
export function totp(secret, t = Date.now()) { return hotp(secret, step(t)); }

/**
 * A code not used yet: the server refuses a replayed code, so when the
 * current step's code was used (used holds the steps already used), wait
 * for the next step. Also waits when the step ends in under 2 s.
 */
export async function freshCode(secret, used) {
  for (;;) {
    const now = Date.now();
    const s = step(now);
    const left = 30000 - (now % 30000);
    if (!used.has(s) && left > 2000) {
      used.add(s);
      return hotp(secret, s);
    }
    await new Promise((r) => setTimeout(r, left + 100));
  }
}

// The admin listener's configuration (internal/config/admin.go): plain
// HTTP on loopback. PARLEY_E2E_ADMIN_YAML overrides it ({port} is replaced).
const adminYAML = process.env.PARLEY_E2E_ADMIN_YAML || 'admin:\n  listen: 127.0.0.1:{port}\n';

/**
 * Starts `parley serve` on loopback (plain http, insecure_http) with the
 * admin listener and resolves {admin (base URL of the console), public (the
 * Direct Line listener), code (the bootstrap owner enrollment code it
 * printed), output(), stop()}.
 */
export async function startParleyWithConsole() {
  const data = tempDir('parley-console-');
  const port = await freePort();
  const adminPort = await freePort();
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: http://127.0.0.1:${port}\ninsecure_http: true\ndata_dir: ${data}\n` +
    'metrics:\n  listen: 127.0.0.1:0\n' + adminYAML.replaceAll('{port}', String(adminPort)) +
    // Three people enroll and sign in from one address within a minute:
    // above the default rate of the public routes (10/m).
    'operators:\n  login_rate: 300/m burst 100\n' +
    // Failure counts reach the store (and the security report) within a second.
    'security:\n  flush_every: 1s\n');
  const env = { ...process.env };
  delete env.PARLEY_MASTER_KEY;
  const parley = startProcess('parley', parleyBinary(), ['serve', '--config', cfg], env, /parley serving/);
  await parley.ready;
  const code = await waitFor('the bootstrap enrollment code', () => {
    const m = /no owner yet.*?\b(pec_[A-Za-z0-9_-]+)/.exec(parley.output());
    return m && m[1];
  }, 10000);
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitFor('the admin listener', async () => {
    try { return (await fetch(admin + '/')).status === 200; } catch { return false; }
  }, 10000);
  return { admin, public: `http://127.0.0.1:${port}`, code, data, config: cfg, output: parley.output, stop: parley.stop };
}

/**
 * Fails unless every visible form control and button in the page has an
 * accessible name (a label, aria-label or aria-labelledby, or a button's
 * text), and the accessibility tree has no unnamed textbox, combobox or
 * button. Returns the number of controls checked.
 */
export async function assertNamedControls(page) {
  const unnamed = await page.evaluate(() => {
    const bad = [];
    let n = 0;
    for (const el of document.querySelectorAll('input, select, textarea, button')) {
      if (el.type === 'hidden' || !el.checkVisibility()) continue;
      n++;
      const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim()))
        || (el.getAttribute('aria-label') || '').trim()
        || (el.getAttribute('aria-labelledby') || '').split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())
        || (el.tagName === 'BUTTON' && el.textContent.trim());
      if (!labelled) bad.push(el.outerHTML.slice(0, 120));
    }
    return { bad, n };
  });
  if (unnamed.bad.length) throw new Error('form controls without an accessible name: ' + unnamed.bad.join('\n'));
  const tree = await page.locator('body').ariaSnapshot();
  const nameless = tree.split('\n').filter((l) => /^\s*- (textbox|combobox|button|spinbutton)\s*(\[.*\])?:?\s*$/.test(l));
  if (nameless.length) throw new Error('unnamed controls in the accessibility tree:\n' + nameless.join('\n') + '\n' + tree);
  return unnamed.n;
}

/** Saves a full-page screenshot as artifacts/console-NAME.png and prints the path. */
export async function shot(page, name) {
  mkdirSync(artifactDir, { recursive: true });
  const path = join(artifactDir, `console-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log('screenshot: ' + path);
  return path;
}

/**
 * Errors the page logged other than the browser's "Failed to load
 * resource" for API answers the console expects and shows (401 before
 * sign-in, 403 for a refused page, 404 for the SSO probe).
 */
export function unexpectedErrors(page) {
  return page.errors.filter((e) => !/Failed to load resource: the server responded with a status of (401|403|404)/.test(e));
}

/**
 * Waits for locator; when the console shows an error first (the alert
 * region), fails with the server's message instead of a timeout.
 */
export async function waitOrError(page, locator, timeout = 15000) {
  const alert = page.locator('#error:not([hidden]), .refused, .dialog-error:not([hidden])').first();
  await Promise.race([locator.first().waitFor({ timeout }), alert.waitFor({ timeout })]);
  if (!(await locator.first().isVisible()) && await alert.isVisible()) {
    throw new Error(`the console shows an error instead: ${(await alert.textContent()).trim()}`);
  }
}
