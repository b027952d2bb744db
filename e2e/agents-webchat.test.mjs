// The example Agents SDK agent (unmodified @microsoft/agents-hosting 1.8.x,
// examples/agents-sdk-agent), configured only with the agentsSdkSettings
// that `parley bot create --json` printed, chatting through `parley serve`
// over TLS with the official Web Chat 4.18.1 in Debian's Chromium:
//   - the welcome and the echo (with the user id Parley bound) show;
//   - the SDK's StreamingResponse (informative update, 5 text chunks, final
//     message, all in the streaminfo entity form, which Web Chat 4.18.1 only
//     reads because Parley copies it into channelData) grows on screen in
//     several steps, shows the typing indicator for the informative update,
//     and ends as one message;
//   - after a reload the reply shows once; after a reload in the middle of
//     a second stream, both replies end as one final message each; after
//     the socket drops in the middle of a third, DirectLineJS resumes from
//     its watermark and that reply too ends as one message (Parley's socket
//     never repeats or reorders an activity, the page receives each once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort, tempDir, waitFor, parleyBinary } from './lib.mjs';
import { serveWebChat, launch, screenshot, chatPage, openPage, transcriptItems, send } from './browser.mjs';
import { startProcess, botBubbles, generateToken } from './agentlib.mjs';

const exampleAgent = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'agents-sdk-agent', 'index.js');
// What the example agent streams for "stream" (examples/agents-sdk-agent/index.js).
const FINAL = 'Streamed replies arrive in chunks.';

/** Web Chat on a token (and conversation) from the hash; every activity the page's DirectLineJS receives is kept in window.received, and Web Chat's store is window.store (its activities carry the webchat:sequence-id that orders the transcript, for reading a failure). */
function sitePage(webchat, directline) {
  return webchat.page('/agent.html', chatPage(webchat.url, `
    const p = new URLSearchParams(location.hash.slice(1));
    const directLine = WebChat.createDirectLine({ token: p.get('token'), conversationId: p.get('conv') || undefined, domain: ${JSON.stringify(directline)} });
    window.received = [];
    directLine.activity$.subscribe({ next: (a) => window.received.push(a), error: () => {} });
    window.store = WebChat.createStore();
    WebChat.renderWebChat({ directLine, store: window.store }, document.getElementById('webchat'));
  `));
}

/** Watches the streamed bubble (the last one holding "Streamed") grow to the final text; returns the texts seen. */
async function watchStream(page, shotName) {
  const seen = [];
  let shot = false;
  await waitFor('the streamed reply to end', async () => {
    const texts = await botBubbles(page, 'Streamed');
    const t = texts[texts.length - 1];
    if (t && seen[seen.length - 1] !== t) seen.push(t);
    if (!shot && t && t.includes('replies') && !t.includes('chunks.')) {
      shot = true;
      await screenshot(page, shotName);
    }
    return t && t.includes(FINAL);
  }, 30000);
  return { seen, shot };
}

test('Agents SDK example agent in Web Chat 4.18.1: echo, streamed reply growing on screen, once after reloads', { timeout: 180000 }, async (t) => {
  const certs = process.env.PARLEY_E2E_CERTS;
  assert.ok(certs && process.env.NODE_EXTRA_CA_CERTS, 'run through `npm test`, which makes the test CA');
  const bin = parleyBinary();
  const [port, botPort] = [await freePort(), await freePort()];
  const base = `https://127.0.0.1:${port}`;
  const directline = `${base}/v3/directline`;
  const data = tempDir();
  const webchat = await serveWebChat();
  t.after(() => webchat.close());

  const bot = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'Agent',
    '--endpoint', `http://127.0.0.1:${botPort}/api/messages`, '--public-url', base, '--json']));
  assert.ok(bot.agentsSdkSettings && bot.agentsSdkSettings.IDENTITY_HEADER === bot.clientSecret, 'bot create printed no Agents SDK settings');
  const site = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', bot.id, '--name', 'web',
    '--origin', webchat.origin, '--json']));
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: ${base}\ndata_dir: ${data}\n` +
    `tls:\n  cert_file: ${join(certs, 'server.pem')}\n  key_file: ${join(certs, 'server.key')}\n`);
  const parley = startProcess('parley', bin, ['serve', '--config', cfg], { ...process.env }, /parley serving/);
  t.after(() => parley.stop());
  await parley.ready;
  // The agent's environment: the printed Agents SDK settings, its port and
  // the test CA; nothing of Microsoft's.
  const agentEnv = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS, ...bot.agentsSdkSettings, PORT: String(botPort) };
  const agent = startProcess('agent', 'node', [exampleAgent], agentEnv, /agent listening/);
  t.after(() => agent.stop());
  await agent.ready;

  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the test CA's server certificate
  const page = await openPage(context);
  // Keeps the page's WebSockets reachable, to cut one mid-stream below.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.sockets = [];
    window.WebSocket = class extends Native { constructor(...args) { super(...args); window.sockets.push(this); } };
  });
  const url = sitePage(webchat, directline);
  const user = 'dl_' + randomBytes(12).toString('hex');
  const creds = await generateToken(directline, site.secrets[0], user);
  await page.goto(`${url}#token=${encodeURIComponent(creds.token)}`);

  await page.getByText(`Hello ${user}, I am an Agents SDK agent`).first().waitFor({ timeout: 30000 });
  await send(page, 'hello');
  await page.getByText(`agent heard: hello (from ${user})`).first().waitFor({ timeout: 30000 });

  // The stream. The informative update reaches the page translated into
  // Web Chat's channelData form; Web Chat 4.18.1 shows it as its typing
  // indicator and draws no bubble for its text.
  await send(page, 'stream');
  await waitFor('the informative update in the page', () => page.evaluate(() => window.received.some((a) =>
    a.type === 'typing' && a.text === 'thinking…' && a.channelData?.streamType === 'informative')), 20000);
  await page.locator('.webchat__typing-indicator').first().waitFor({ timeout: 20000 });
  await screenshot(page, 'agents-stream-informative');
  const { seen, shot } = await watchStream(page, 'agents-stream-mid');
  assert.ok(shot, 'no screenshot mid-stream: the text never showed half-way');
  assert.ok(seen.length >= 3, `the reply did not grow progressively: ${JSON.stringify(seen)}`);
  // The bubble's line that holds the reply's text (innerText also has "Bot said:" and the timestamp).
  const lines = seen.map((s) => s.split('\n').find((l) => l.startsWith('Streamed')));
  console.log('stream steps on screen: ' + JSON.stringify(lines));
  for (let i = 1; i < lines.length; i++) {
    assert.ok(lines[i].length > lines[i - 1].length && lines[i].startsWith(lines[i - 1]), `the text did not grow in place: ${JSON.stringify(lines)}`);
  }
  await page.waitForTimeout(1500); // anything late would show now
  const end = await botBubbles(page, 'Streamed');
  assert.equal(end.length, 1, `the streamed reply shows ${end.length} times: ${JSON.stringify(end)}`);
  assert.ok(end[0].includes(FINAL), `final text: ${end[0]}`);
  assert.equal(await transcriptItems(page, 'thinking…').count(), 0, 'the informative update was drawn as a bubble');
  const messages = await page.evaluate((f) => window.received.filter((a) => a.type === 'message' && a.text === f).length, FINAL);
  assert.equal(messages, 1, `the page received the final message ${messages} times`);
  await screenshot(page, 'agents-stream-end');

  // Reload: the conversation resumes from the start of its history.
  await page.goto(`${url}#token=${encodeURIComponent(creds.token)}&conv=${encodeURIComponent(creds.conversationId)}`);
  await page.reload();
  await transcriptItems(page, FINAL).first().waitFor({ timeout: 30000 });
  await page.waitForTimeout(1500);
  const reloaded = await botBubbles(page, 'Streamed');
  assert.equal(reloaded.length, 1, `after a reload the reply shows ${reloaded.length} times: ${JSON.stringify(reloaded)}`);
  assert.ok(reloaded[0].includes(FINAL));
  assert.equal(await page.evaluate(() => window.received.filter((a) => a.type === 'typing').length), 0, 'history replayed typing/stream chunks');
  await screenshot(page, 'agents-stream-reloaded');

  // A reload in the middle of a second stream.
  await send(page, 'stream');
  await waitFor('the second stream to be half-way', async () => {
    const texts = await botBubbles(page, 'Streamed');
    return texts.length === 2 && texts[1].includes('replies') && !texts[1].includes('chunks.');
  }, 30000);
  // What Parley writes on the reloaded page's WebSocket, in order.
  const wire = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (!f.payload) return; // keep-alive
    for (const a of JSON.parse(f.payload).activities || []) wire.push(Number(a.id.split('|').pop()));
  }));
  await page.reload();
  await waitFor('both streams to end after the reload', async () => (await botBubbles(page, FINAL)).length === 2, 30000);
  await page.waitForTimeout(1500);
  const after = await botBubbles(page, 'Streamed');
  assert.equal(after.length, 2, `after a reload mid-stream: ${JSON.stringify(after)}`);
  for (const text of after) assert.ok(text.includes(FINAL), `a stream did not end with its final text: ${text}`);
  assert.equal(await transcriptItems(page, 'thinking…').count(), 0, 'an informative update was left in the transcript');
  // What the reloaded page's DirectLineJS received: every message once,
  // both final messages, and of the open stream at most its first and
  // latest chunk replayed, then the live ones.
  const got = await page.evaluate(() => window.received.map((a) => ({ id: a.id, type: a.type, text: a.text, st: a.channelData?.streamType })));
  const msgIds = got.filter((a) => a.type === 'message').map((a) => a.id);
  assert.equal(new Set(msgIds).size, msgIds.length, `a message was received twice: ${JSON.stringify(got)}`);
  assert.equal(got.filter((a) => a.type === 'message' && a.text === FINAL).length, 2, `final messages: ${JSON.stringify(got)}`);
  assert.equal(got.filter((a) => a.type === 'message' && /^agent heard: hello/.test(a.text)).length, 1);
  // Parley sends each activity once, in order (DirectLineJS 0.15.8 was
  // seen to hand a frame's chunk to subscribers before the previous
  // frame's last one, so its order is not asserted).
  assert.ok(wire.length > 0 && wire.every((v, i) => i === 0 || v > wire[i - 1]), `the socket's activities are out of order or repeated: ${JSON.stringify(wire)}`);
  const gotIds = got.map((a) => a.id);
  assert.equal(new Set(gotIds).size, gotIds.length, `an activity was received twice: ${JSON.stringify(gotIds)}`);
  assert.deepEqual([...gotIds.map((id) => Number(id.split('|').pop()))].sort((a, b) => a - b), wire, 'DirectLineJS did not pass on what the socket carried');
  console.log('after the reload mid-stream the page received: ' + JSON.stringify(got.map((a) => `${a.id} ${a.type}${a.st ? '/' + a.st : ''} ${(a.text || '').slice(0, 20)}`)));
  await screenshot(page, 'agents-stream-reloaded-mid-stream');

  // The connection drops in the middle of a third stream (Web Chat stays
  // on the page): DirectLineJS reconnects from its watermark and the
  // half-drawn reply ends as its final message, once.
  await send(page, 'stream');
  await waitFor('the third stream to be half-way', async () => {
    const texts = await botBubbles(page, 'Streamed');
    return texts.length === 3 && texts.some((x) => x.includes('replies') && !x.includes('chunks.'));
  }, 30000);
  const socketsBefore = await page.evaluate(() => { window.sockets.at(-1).close(); return window.sockets.length; });
  await waitFor('the third stream to end after the reconnect', async () => (await botBubbles(page, FINAL)).length === 3, 40000);
  assert.ok(await page.evaluate((n) => window.sockets.length > n, socketsBefore), 'DirectLineJS did not open a new socket');
  await page.waitForTimeout(1500);
  const dropped = await botBubbles(page, 'Streamed');
  assert.equal(dropped.length, 3, `after a reconnect mid-stream: ${JSON.stringify(dropped)}`);
  for (const text of dropped) assert.ok(text.includes(FINAL), `a stream did not end with its final text: ${text}`);
  assert.ok(wire.every((v, i) => i === 0 || v > wire[i - 1]), `the resumed socket repeated or reordered activities: ${JSON.stringify(wire)}`);
  const all = await page.evaluate(() => window.received.map((a) => a.id));
  assert.equal(new Set(all).size, all.length, `an activity was received twice: ${JSON.stringify(all)}`);
  assert.equal(await page.evaluate((f) => window.received.filter((a) => a.type === 'message' && a.text === f).length, FINAL), 3);
  // Each reply is drawn under its question (Web Chat 4.18.1 drew the third
  // stream above the second one's reply before Parley stopped copying
  // streamSequence onto a stream's first activity).
  const order = await page.locator('.webchat__basic-transcript__activity').evaluateAll((els) => els.map((e) =>
    (e.querySelector('.webchat__stacked-layout--from-user') ? 'user:' : 'bot:') + (e.innerText.includes('Streamed') ? 'reply' : e.innerText.includes('stream') ? 'stream' : 'other')));
  assert.deepEqual(order.slice(-6), ['user:stream', 'bot:reply', 'user:stream', 'bot:reply', 'user:stream', 'bot:reply'], `transcript order: ${JSON.stringify(order)}`);
  await screenshot(page, 'agents-stream-reconnected-mid-stream');

  assert.deepEqual(page.errors, [], 'console errors: ' + page.errors.join('\n'));
  assert.doesNotMatch(parley.output(), /bot answered 40[13]|dead-lettered|bot authentication failed|client authentication failed/, 'a delivery or a bot call was refused');
  assert.doesNotMatch(agent.output(), /turn error|process failed|Unauthorized|signing key|instance discovery|login\.microsoftonline/i, 'the agent refused a call or failed a turn');
  assert.ok(!parley.output().includes(bot.clientSecret) && !parley.output().includes(site.secrets[0]), 'a secret reached the logs');
});
