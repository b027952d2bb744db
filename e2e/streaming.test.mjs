// Streamed replies in the official Web Chat (npm botframework-webchat
// 4.18.1) in Debian's Chromium, through `parley serve` over TLS:
//   - the botbuilder example bot (unmodified botbuilder 4.23.x, configured
//     only with what `parley bot create` printed) streams in Web Chat's
//     channelData form;
//   - a raw bot in this file streams in the Microsoft 365 Agents SDK's form
//     (a streaminfo entity on each activity, the stream id as the later
//     activities' own id, the final message's channelData without stream
//     members), which Web Chat 4.18.1 does not read: Parley copies the
//     entity's metadata into channelData.
// Each reply grows on screen, ends as one message, shows once after a page
// reload, and a reload in the middle of a stream leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tempDir, waitFor, parleyBinary } from './lib.mjs';
import { serveWebChat, launch, screenshot, chatPage, openPage, transcriptItems, send } from './browser.mjs';

const exampleBot = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'botbuilder-bot', 'index.js');
const { STORY } = await import('../examples/botbuilder-bot/bot.js');
const FINAL = STORY.join(' ');

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A bot that speaks the Bot Connector API by hand and streams the way the
 * Agents SDK's StreamingResponse does (1.8.x). It answers each delivery
 * at once and streams afterwards (the SDK's longRunningMessages). It does
 * not check the channel's JWT: it is a test double of the SDK's output,
 * not an example of a bot.
 */
async function startAgentsShapeBot({ base }) {
  let token;
  const errors = [];
  const bot = { credentials: null, errors };
  async function accessToken() {
    if (token && token.exp > Date.now() + 60000) return token.value;
    const r = await fetch(`${base}/botframework/oauth2/v2.0/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: bot.credentials.appId, client_secret: bot.credentials.secret, scope: `${base}/.default` }),
    });
    if (!r.ok) throw new Error(`token: ${r.status} ${await r.text()}`);
    const j = await r.json();
    token = { value: j.access_token, exp: Date.now() + j.expires_in * 1000 };
    return token.value;
  }
  async function reply(to, activity) {
    const u = `${to.serviceUrl.replace(/\/?$/, '/')}v3/conversations/${encodeURIComponent(to.conversation.id)}/activities/${encodeURIComponent(to.id)}`;
    const r = await fetch(u, {
      method: 'POST', headers: { Authorization: `Bearer ${await accessToken()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...activity, from: to.recipient, recipient: to.from, conversation: to.conversation, replyToId: to.id }),
    });
    if (!r.ok) throw new Error(`reply: ${r.status} ${await r.text()}`);
    return (await r.json()).id;
  }
  async function stream(to) {
    const info = (streamType, streamSequence, streamId) => [{ type: 'streaminfo', streamType, streamSequence, ...(streamId ? { streamId } : {}) }];
    let seq = 1;
    const streamId = await reply(to, { type: 'typing', text: 'Thinking…', entities: info('informative', seq) });
    let text = '';
    for (const part of STORY) {
      await sleep(700);
      text = text ? `${text} ${part}` : part;
      seq += 1;
      await reply(to, { type: 'typing', id: streamId, text, entities: info('streaming', seq, streamId) });
    }
    seq += 2; // the SDK skips one number before the final message
    await reply(to, { type: 'message', id: streamId, text, entities: info('final', seq, streamId), channelData: { feedbackLoopEnabled: false } });
  }
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      res.writeHead(200).end();
      let act;
      try { act = JSON.parse(body); } catch { return; }
      if (act.type === 'message' && (act.text || '').trim() === 'stream') {
        stream(act).catch((e) => errors.push(String(e)));
      }
    });
  });
  const port = await freePort();
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return Object.assign(bot, { endpoint: `http://127.0.0.1:${port}/api/messages`, close: () => new Promise((r) => srv.close(r)) });
}

/** The page of the site: Web Chat on a token (and conversation) from its hash. */
function sitePage(webchat, directline) {
  return webchat.page('/stream.html', chatPage(webchat.url, `
    const p = new URLSearchParams(location.hash.slice(1));
    const directLine = WebChat.createDirectLine({ token: p.get('token'), conversationId: p.get('conv') || undefined, domain: ${JSON.stringify(directline)} });
    WebChat.renderWebChat({ directLine }, document.getElementById('webchat'));
  `));
}

/** Texts of the transcript's activities from the bot that contain text. */
function botBubbles(page, text) {
  return page.locator('.webchat__basic-transcript__activity').filter({ hasText: text }).filter({ hasNot: page.locator('.webchat__stacked-layout--from-user') })
    .evaluateAll((els) => els.map((e) => e.innerText));
}

/** Watches the streamed bubble grow until the final text; returns the texts seen. */
async function watchStream(page, shotName) {
  const seen = [];
  let shot = false;
  await waitFor('the streamed reply to end', async () => {
    const texts = await botBubbles(page, STORY[0]);
    const t = texts[texts.length - 1];
    if (t && seen[seen.length - 1] !== t) seen.push(t);
    if (!shot && t && t.includes(STORY[2]) && !t.includes(STORY[4])) {
      shot = true;
      await screenshot(page, shotName);
    }
    return t && t.includes(STORY[4]);
  }, 30000);
  return { seen, shot };
}

async function generate(directline, secret) {
  const res = await fetch(`${directline}/tokens/generate`, {
    method: 'POST', headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: 'dl_stream' + Date.now() } }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

test('streamed replies render progressively in Web Chat 4.18.1, in both forms, and once after a reload', { timeout: 240000 }, async (t) => {
  const certs = process.env.PARLEY_E2E_CERTS;
  assert.ok(certs && process.env.NODE_EXTRA_CA_CERTS, 'run through `npm test`, which makes the test CA');
  const bin = parleyBinary();
  const [port, botPort] = [await freePort(), await freePort()];
  const base = `https://127.0.0.1:${port}`;
  const directline = `${base}/v3/directline`;
  const data = tempDir();
  const webchat = await serveWebChat();
  t.after(() => webchat.close());

  // The botbuilder example bot, and a bot with the Agents SDK's stream shape.
  const bb = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'Example',
    '--endpoint', `http://127.0.0.1:${botPort}/api/messages`, '--public-url', base, '--json']));
  const bbSite = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', bb.id, '--name', 'web',
    '--origin', webchat.origin, '--json']));
  const agentsShape = await startAgentsShapeBot({ base });
  t.after(() => agentsShape.close());
  const ag = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'AgentsShape',
    '--endpoint', agentsShape.endpoint, '--public-url', base, '--json']));
  const agSite = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', ag.id, '--name', 'agents',
    '--origin', webchat.origin, '--json']));
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: ${base}\ndata_dir: ${data}\n` +
    `tls:\n  cert_file: ${join(certs, 'server.pem')}\n  key_file: ${join(certs, 'server.key')}\n`);
  const parley = startProcess('parley', bin, ['serve', '--config', cfg], {}, /parley serving/);
  t.after(() => parley.stop());
  await parley.ready;
  const botProc = startProcess('bot', 'node', [exampleBot], { ...bb.settings, PORT: String(botPort), STREAM_CHUNK_MS: '700' }, /bot listening/);
  t.after(() => botProc.stop());
  await botProc.ready;
  agentsShape.credentials = { appId: ag.id, secret: ag.clientSecret };

  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the test CA's server certificate
  const url = sitePage(webchat, directline);

  const forms = [
    { name: 'channelData', secret: bbSite.secrets[0], ready: (page) => page.getByText('I am a botbuilder bot behind Parley').first().waitFor({ timeout: 30000 }) },
    { name: 'entity', secret: agSite.secrets[0], ready: async () => {} },
  ];
  for (const form of forms) {
    await t.test(`${form.name} form`, async () => {
      const page = await openPage(context);
      const creds = await generate(directline, form.secret);
      await page.goto(`${url}#token=${encodeURIComponent(creds.token)}`);
      await form.ready(page);
      await send(page, 'stream');
      // The informative update: Web Chat 4.18.1 shows it as its typing
      // indicator (it does not draw an informative update's text).
      await page.locator('.webchat__typing-indicator').first().waitFor({ timeout: 20000 });
      await screenshot(page, `stream-${form.name}-informative`);
      const { seen, shot } = await watchStream(page, `stream-${form.name}-mid`);
      assert.ok(shot, 'no screenshot mid-stream: the text never showed half-way');
      // The text grew in place, in at least three steps, to the final text.
      assert.ok(seen.length >= 3, `the reply did not grow progressively: ${JSON.stringify(seen)}`);
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i].length > seen[i - 1].length, `the text shrank: ${JSON.stringify(seen)}`);
      }
      await page.waitForTimeout(1500); // anything late would show now
      const end = await botBubbles(page, STORY[0]);
      assert.equal(end.length, 1, `the streamed reply shows ${end.length} times: ${JSON.stringify(end)}`);
      assert.ok(end[0].includes(FINAL), `final text: ${end[0]}`);
      await screenshot(page, `stream-${form.name}-end`);

      // Reload: the conversation resumes from the start of its history.
      await page.goto(`${url}#token=${encodeURIComponent(creds.token)}&conv=${encodeURIComponent(creds.conversationId)}`);
      await page.reload();
      await transcriptItems(page, STORY[4]).first().waitFor({ timeout: 30000 });
      await page.waitForTimeout(1500);
      const reloaded = await botBubbles(page, STORY[0]);
      assert.deepEqual(reloaded.length, 1, `after a reload the reply shows ${reloaded.length} times: ${JSON.stringify(reloaded)}`);
      assert.ok(reloaded[0].includes(FINAL));
      await screenshot(page, `stream-${form.name}-reloaded`);

      // A reload in the middle of a stream: the new page picks the stream
      // up where it is, and ends with one message per stream.
      await send(page, 'stream');
      await waitFor('the second stream to be half-way', async () => {
        const texts = await botBubbles(page, STORY[0]);
        return texts.length === 2 && texts[1].includes(STORY[1]) && !texts[1].includes(STORY[4]);
      }, 30000);
      await page.reload();
      await waitFor('both streams to end after the reload', async () => (await botBubbles(page, STORY[4])).length === 2, 30000);
      await page.waitForTimeout(1500);
      const after = await botBubbles(page, STORY[0]);
      assert.equal(after.length, 2, `after a reload mid-stream: ${JSON.stringify(after)}`);
      for (const text of after) assert.ok(text.includes(FINAL), `a stream did not end with its final text: ${text}`);
      assert.equal(await transcriptItems(page, 'Thinking').count(), 0, 'an informative update was left in the transcript');
      await screenshot(page, `stream-${form.name}-reloaded-mid-stream`);
      // A third stream on this page (which holds the second's first
      // activity) is drawn under its question.
      await send(page, 'stream');
      await waitFor('the third stream to end', async () => (await botBubbles(page, STORY[4])).length === 3, 30000);
      const order = await page.locator('.webchat__basic-transcript__activity').evaluateAll((els) => els.map((e) =>
        (e.querySelector('.webchat__stacked-layout--from-user') ? 'user' : 'bot') + (/stream/i.test(e.innerText) ? ':stream' : '')));
      assert.deepEqual(order.slice(-6), ['user:stream', 'bot:stream', 'user:stream', 'bot:stream', 'user:stream', 'bot:stream'], `transcript order: ${JSON.stringify(order)}`);
      assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
      await page.close();
    });
  }
  assert.deepEqual(agentsShape.errors, []);
});
