// The example bot (unmodified botbuilder 4.23.x: CloudAdapter,
// ConfigurationBotFrameworkAuthentication, MSAL credential factory),
// configured only with what `parley bot create` printed, behind `parley
// serve` over TLS: JWTs in both directions, the Bot Connector API (update,
// delete, members, attachment upload, a proactive message), and a key
// rotation in the middle with no failed delivery. The client is the
// unmodified DirectLineJS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort, tempDir, waitFor, parleyBinary } from './lib.mjs';

const require = createRequire(import.meta.url);
globalThis.XMLHttpRequest = require('xhr2');
globalThis.WebSocket = require('ws');
const { DirectLine } = require('botframework-directlinejs');

const exampleBot = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'botbuilder-bot', 'index.js');

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

function post(dl, activity) {
  return new Promise((resolve, reject) => dl.postActivity(activity).subscribe({ next: resolve, error: reject }));
}

test('botbuilder example bot through Parley: JWTs both ways, Bot Connector API, key rotation', { timeout: 180000 }, async (t) => {
  const certs = process.env.PARLEY_E2E_CERTS;
  assert.ok(certs && process.env.NODE_EXTRA_CA_CERTS, 'run through `npm test`, which makes the test CA');
  const bin = parleyBinary();
  const [port, botPort] = [await freePort(), await freePort()];
  const base = `https://127.0.0.1:${port}`;
  const data = tempDir();

  // The operator registers the bot and a site, exactly as the README says.
  const bot = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'Example',
    '--endpoint', `http://127.0.0.1:${botPort}/api/messages`, '--public-url', base, '--json']));
  const site = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', bot.id, '--name', 'web',
    '--origin', 'https://app.example', '--json']));
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: ${base}\ndata_dir: ${data}\n` +
    `tls:\n  cert_file: ${join(certs, 'server.pem')}\n  key_file: ${join(certs, 'server.key')}\n` +
    `bots:\n  key_reload: 1s\nmetrics:\n  listen: 127.0.0.1:0\n`);

  const parley = startProcess('parley', bin, ['serve', '--config', cfg], {}, /parley serving/);
  t.after(() => parley.stop());
  await parley.ready;
  // The bot gets only the printed settings (and its port).
  const botProc = startProcess('bot', 'node', [exampleBot], { ...bot.settings, PORT: String(botPort) }, /bot listening/);
  t.after(() => botProc.stop());
  await botProc.ready;

  const user = 'dl_' + randomBytes(12).toString('hex');
  const res = await fetch(`${base}/v3/directline/tokens/generate`, {
    method: 'POST', headers: { Authorization: `Bearer ${site.secrets[0]}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: user } }),
  });
  assert.equal(res.status, 200);
  const { token } = await res.json();
  const dl = new DirectLine({ token, domain: `${base}/v3/directline`, webSocket: true });
  const received = [];
  dl.activity$.subscribe({ next: (a) => received.push(a), error: () => {} }); // end() errors the stream
  const fromBot = (re) => () => received.find((a) => a.from.role === 'bot' && re.test(a.text || ''));

  await waitFor('the welcome (conversationUpdate reached the bot with a valid channel token)', fromBot(new RegExp(`Hello ${user}`)));
  await post(dl, { type: 'message', from: { id: 'dl_impostor' }, text: 'hello' });
  await waitFor('echo', fromBot(new RegExp(`bot heard: hello \\(from ${user}\\)`)));
  // Canaries through the real clients: the bot echoes them back, so they
  // are in the client's and the bot's activities, never in the clear on
  // Parley's disk or in its log.
  const canaries = ['4111111111111111', 'e2e.canary@example.com', 'E2E-CANARY-' + randomBytes(6).toString('hex')];
  await post(dl, { type: 'message', from: { id: user }, text: `card ${canaries[0]} mail ${canaries[1]} ${canaries[2]}` });
  await waitFor('the echo of the canaries', fromBot(new RegExp(canaries[2])));

  await post(dl, { type: 'message', from: { id: user }, text: 'update' });
  await waitFor('updated message', fromBot(/^updated message$/));
  await post(dl, { type: 'message', from: { id: user }, text: 'delete' });
  await waitFor('delete', fromBot(/^deleted a message$/));
  await post(dl, { type: 'message', from: { id: user }, text: 'members' });
  const members = await waitFor('members', fromBot(/^members: /));
  assert.ok(members.text.includes(user) && members.text.includes(bot.id), members.text);
  await post(dl, { type: 'message', from: { id: user }, text: 'upload' });
  await waitFor('upload', fromBot(/^uploaded hello\.txt \(19 bytes\)$/));
  await post(dl, { type: 'message', from: { id: user }, text: 'proactive' });
  await waitFor('proactive message', fromBot(/^proactive hello$/));

  // Rotate the bot-facing key sets mid-conversation, and the keys behind
  // the client's token and the conversation's encryption too.
  for (const purpose of ['channel', 'sts', 'kek', 'directline-token']) {
    const rotated = JSON.parse(execFileSync(bin, ['keys', 'rotate', '--config', cfg, '--purpose', purpose, '--force', '--json']));
    assert.ok(rotated.purpose === purpose && rotated.activated && rotated.next, JSON.stringify(rotated));
  }
  await waitFor('the server to sign with the new channel key', async () => {
    const keys = await (await fetch(`${base}/v1/.well-known/keys`)).json();
    return keys.keys.length === 3;
  });
  for (const text of ['after rotation one', 'after rotation two']) {
    await post(dl, { type: 'message', from: { id: user }, text });
    await waitFor(`echo of "${text}"`, fromBot(new RegExp(`bot heard: ${text}`)));
  }
  await post(dl, { type: 'message', from: { id: user }, text: 'proactive' });
  await waitFor('a second proactive message (fresh credentials path)', () => received.filter((a) => a.text === 'proactive hello').length === 2);

  dl.end();
  assert.doesNotMatch(parley.output(), /bot answered 40[13]|delivery failed|bot authentication failed/, 'a delivery or a bot call was refused');
  assert.doesNotMatch(botProc.output(), /turn error|process failed|AuthenticationError|Unauthorized/, 'the bot refused a call or failed a turn');
  assert.ok(!parley.output().includes(bot.clientSecret) && !parley.output().includes(site.secrets[0]), 'a secret reached the logs');
  for (const c of canaries) {
    assert.ok(!parley.output().includes(c), `canary ${c} reached Parley's log`);
  }
  // Every file of the data directory, read as raw bytes while Parley runs
  // (database, WAL, key files): no canary in the clear.
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path); else files.push(path);
    }
  };
  walk(data);
  assert.ok(files.some((f) => f.endsWith('parley.db')), `no database among ${files}`);
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const c of canaries) {
      assert.ok(!bytes.includes(Buffer.from(c)), `canary ${c} in the clear in ${f}`);
    }
  }
});
