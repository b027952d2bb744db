// Real-browser helpers: Debian's Chromium driven by playwright-core, and
// the npm Web Chat bundle served from loopback (tests never need the
// internet).
import { createServer } from 'node:http';
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const screenshotDir = join(here, 'screenshots');

/** Serves the Web Chat bundle on a loopback port; resolves {url, close}. */
export function serveWebChat() {
  const bundle = readFileSync(join(here, 'node_modules/botframework-webchat/dist/webchat.js'));
  const srv = createServer((req, res) => {
    if (req.url === '/webchat.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(bundle);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}/webchat.js`,
    close: () => new Promise((r) => srv.close(r)),
  })));
}

/** Launches Debian's Chromium headless with the flags from DESIGN.md. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Saves a screenshot and prints its path. */
export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, name + '.png');
  await page.screenshot({ path, fullPage: true });
  console.log('screenshot: ' + path);
  return path;
}
