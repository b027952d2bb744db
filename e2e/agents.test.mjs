// The example Agents SDK agent (unmodified @microsoft/agents-hosting 1.8.x:
// AgentApplication + CloudAdapter, express), configured only with the
// agentsSdkSettings that `parley bot create --json` printed, behind
// `parley serve` over TLS: channel JWTs checked against Parley's channel
// keys at the SDK's own key path, its access tokens from Parley's managed
// identity endpoint (no Microsoft endpoint, no instance discovery), echo
// with the bound user id, a card, a streamed reply (StreamingResponse),
// proactive messages, a key rotation mid-conversation, and a turn longer
// than the bot's per-attempt delivery timeout answered once. The client is
// the unmodified DirectLineJS 0.15.8 with `streaming: true` (deliveryMode
// "stream" on every activity).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort, tempDir, waitFor, parleyBinary } from './lib.mjs';

const require = createRequire(import.meta.url);
globalThis.XMLHttpRequest = require('xhr2');
globalThis.WebSocket = require('ws');
const { DirectLine } = require('botframework-directlinejs');

const exampleAgent = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'agents-sdk-agent', 'index.js');

function startProcess(name, cmd, args, env, readyPattern) {
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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

function post(dl, activity) {
  return new Promise((resolve, reject) => dl.postActivity(activity).subscribe({ next: resolve, error: reject }));
}

const streamInfo = (a) => (a.entities || []).find((e) => e.type === 'streaminfo');

test('Agents SDK example agent through Parley: SDK settings only, streaming, rotation, long turn answered once', { timeout: 180000 }, async (t) => {
  const certs = process.env.PARLEY_E2E_CERTS;
  assert.ok(certs && process.env.NODE_EXTRA_CA_CERTS, 'run through `npm test`, which makes the test CA');
  const bin = parleyBinary();
  const [port, botPort] = [await freePort(), await freePort()];
  const base = `https://127.0.0.1:${port}`;
  const data = tempDir();

  const bot = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'Agent',
    '--endpoint', `http://127.0.0.1:${botPort}/api/messages`, '--public-url', base, '--delivery-timeout', '5s', '--json']));
  assert.ok(bot.agentsSdkSettings && bot.agentsSdkSettings.IDENTITY_HEADER === bot.clientSecret, 'bot create printed no Agents SDK settings');
  const site = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', bot.id, '--name', 'web',
    '--origin', 'https://app.example', '--json']));
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: ${base}\ndata_dir: ${data}\n` +
    `tls:\n  cert_file: ${join(certs, 'server.pem')}\n  key_file: ${join(certs, 'server.key')}\n` +
    `bots:\n  key_reload: 1s\n`);

  const parley = startProcess('parley', bin, ['serve', '--config', cfg], { ...process.env }, /parley serving/);
  t.after(() => parley.stop());
  await parley.ready;
  // The agent's environment: the printed Agents SDK settings, its port,
  // the test CA, and nothing of Microsoft's (no MicrosoftAppId, no proxy).
  const agentEnv = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS, ...bot.agentsSdkSettings, PORT: String(botPort) };
  const agent = startProcess('agent', 'node', [exampleAgent], agentEnv, /agent listening/);
  t.after(() => agent.stop());
  await agent.ready;

  const user = 'dl_' + randomBytes(12).toString('hex');
  const res = await fetch(`${base}/v3/directline/tokens/generate`, {
    method: 'POST', headers: { Authorization: `Bearer ${site.secrets[0]}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: user } }),
  });
  assert.equal(res.status, 200);
  const { token } = await res.json();
  const dl = new DirectLine({ token, domain: `${base}/v3/directline`, webSocket: true, streaming: true });
  const received = [];
  dl.activity$.subscribe({ next: (a) => received.push(a), error: () => {} });
  const fromBot = (re) => () => received.find((a) => a.from.role === 'bot' && a.type === 'message' && re.test(a.text || ''));

  await waitFor('the welcome (conversationUpdate reached the agent with a valid channel token)', fromBot(new RegExp(`Hello ${user}`)));
  // The bound id, whatever the client claims; the field DirectLineJS
  // stamps with streaming: true reaches the agent.
  await post(dl, { type: 'message', from: { id: 'dl_impostor' }, text: 'hello' });
  await waitFor('echo with the bound id', fromBot(new RegExp(`^agent heard: hello \\(from ${user}\\) deliveryMode=stream$`)));

  await post(dl, { type: 'message', from: { id: user }, text: 'card' });
  const card = await waitFor('the hero card', () => received.find((a) => a.from.role === 'bot' && a.attachments?.[0]?.contentType === 'application/vnd.microsoft.card.hero'));
  assert.equal(card.attachments[0].content.title, 'Parley');

  // The streamed reply: an informative update, typing chunks with growing
  // text, then the final message, all with one streamId.
  const before = received.length;
  await post(dl, { type: 'message', from: { id: user }, text: 'stream' });
  const final = await waitFor('the final streamed message', () => received.slice(before).find((a) => a.type === 'message' && streamInfo(a)?.streamType === 'final'));
  assert.equal(final.text, 'Streamed replies arrive in chunks.');
  const streamed = received.slice(before).filter((a) => a.type === 'typing' && streamInfo(a));
  const informative = streamed.filter((a) => streamInfo(a).streamType === 'informative');
  const chunks = streamed.filter((a) => streamInfo(a).streamType === 'streaming');
  assert.ok(informative.some((a) => a.text === 'thinking…'), 'no informative update');
  assert.ok(chunks.length >= 4, `only ${chunks.length} stream chunks`);
  for (let i = 1; i < chunks.length; i++) {
    assert.ok(chunks[i].text.startsWith(chunks[i - 1].text) && chunks[i].text.length > chunks[i - 1].text.length, 'chunks do not grow');
  }
  const streamId = streamInfo(final).streamId;
  assert.ok(streamId && streamed.every((a) => streamInfo(a).streamId === streamId || a === streamed[0]), 'stream ids differ');

  await post(dl, { type: 'message', from: { id: user }, text: 'proactive' });
  await waitFor('proactive message', fromBot(/^proactive hello$/));

  // Rotate every key set mid-conversation.
  for (const purpose of ['channel', 'sts', 'kek', 'directline-token']) {
    const rotated = JSON.parse(execFileSync(bin, ['keys', 'rotate', '--config', cfg, '--purpose', purpose, '--force', '--json']));
    assert.ok(rotated.purpose === purpose && rotated.activated && rotated.next, JSON.stringify(rotated));
  }
  await waitFor('the server to sign with the new channel key', async () => {
    const keys = await (await fetch(`${base}/channel/discovery/v2.0/keys`)).json();
    return keys.keys.length === 3;
  });
  for (const text of ['after rotation one', 'after rotation two']) {
    await post(dl, { type: 'message', from: { id: user }, text });
    await waitFor(`echo of "${text}"`, fromBot(new RegExp(`agent heard: ${text}`)));
  }
  await post(dl, { type: 'message', from: { id: user }, text: 'proactive' });
  await waitFor('a second proactive message', () => received.filter((a) => a.text === 'proactive hello').length === 2);

  // A turn of 8 s under a 5 s per-attempt timeout (the SDK answers the
  // POST when the turn ends): typing while it runs, then one answer.
  const slowStart = Date.now();
  await post(dl, { type: 'message', from: { id: user }, text: 'slow 8000' });
  assert.ok(Date.now() - slowStart < 5000, 'the client waited for the whole turn instead of the agent\'s first reply');
  await waitFor('the slow reply', fromBot(/^slow reply after 8000 ms/), 30000);
  await new Promise((resolve) => setTimeout(resolve, 8000)); // a redelivery would answer again by now
  const slowReplies = received.filter((a) => /^slow reply after 8000 ms/.test(a.text || ''));
  assert.equal(slowReplies.length, 1, `the long turn was answered ${slowReplies.length} times`);
  assert.match(parley.output(), /bot delivery not repeated/);

  dl.end();
  assert.doesNotMatch(parley.output(), /bot answered 40[13]|dead-lettered|bot authentication failed|client authentication failed/, 'a delivery or a bot call was refused');
  assert.doesNotMatch(agent.output(), /turn error|process failed|Unauthorized|signing key|instance discovery|login\.microsoftonline/i, 'the agent refused a call or failed a turn');
  assert.ok(!parley.output().includes(bot.clientSecret) && !parley.output().includes(site.secrets[0]), 'a secret reached the logs');
});
