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

/**
 * Serves the Web Chat bundle on a loopback port, plus pages tests add with
 * page(path, html) (this origin is not trusted by any site); resolves
 * {url, origin, page, close}.
 */
export function serveWebChat() {
  const bundle = readFileSync(join(here, 'node_modules/botframework-webchat/dist/webchat.js'));
  const pages = new Map();
  const srv = createServer((req, res) => {
    if (req.url === '/webchat.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript', 'Access-Control-Allow-Origin': '*' });
      res.end(bundle);
    } else if (pages.has(req.url)) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(pages.get(req.url));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    const origin = `http://127.0.0.1:${srv.address().port}`;
    resolve({
      url: `${origin}/webchat.js`,
      origin,
      page: (path, html) => { pages.set(path, html); return origin + path; },
      close: () => new Promise((r) => srv.close(r)),
    });
  }));
}

/** A minimal page that loads Web Chat and runs script (an async body). */
export function chatPage(webchatURL, script) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>test page</title>
<link rel="icon" href="data:,"></head>
<body style="margin:0"><div id="webchat" style="height:600px;width:800px"></div>
<script src="${webchatURL}"></script>
<script>(async function () { ${script} })().catch((e) => { window.pageError = String(e); console.error(e); });</script>
</body></html>`;
}

/** Opens a page that records console errors and page errors. */
export async function openPage(browserOrContext) {
  const page = await browserOrContext.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text() + ' ' + (m.location()?.url || '')); });
  return page;
}

/** Activities in the transcript whose text contains text. */
export function transcriptItems(page, text) {
  return page.locator('.webchat__basic-transcript__activity').filter({ hasText: text });
}

/** Types into Web Chat's send box and sends. */
export async function send(page, text) {
  const box = page.locator('[data-id="webchat-sendbox-input"]');
  await box.fill(text);
  await box.press('Enter');
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
