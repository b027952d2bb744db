// The token service against botbuilder's own UserTokenClient (the
// unmodified botframework-connector 4.23.3 of the example bot, the client
// OAuthPrompt uses): no token is undefined (Parley's 404 has an empty
// body), the sign-in resource, the token status, sign-out; then the
// sign-in link leads to the provider with PKCE S256 and Parley's state.
// A real sign-in at an identity provider is covered by the Go protocol
// tests (internal/server/usertoken_test.go, ory/fosite).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort, tempDir, waitFor, parleyBinary } from './lib.mjs';

const exampleBot = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'botbuilder-bot', 'index.js');
// Not exported by the package index; the CloudAdapter builds it the same way.
const { UserTokenClientImpl } = createRequire(exampleBot)('botframework-connector/lib/auth/userTokenClientImpl.js');

test('botbuilder UserTokenClient against the token service', { timeout: 120000 }, async (t) => {
  const certs = process.env.PARLEY_E2E_CERTS;
  assert.ok(certs && process.env.NODE_EXTRA_CA_CERTS, 'run with the env of `npm test`, which makes the test CA');
  const bin = parleyBinary();
  const port = await freePort();
  const base = `https://127.0.0.1:${port}`;
  const data = tempDir();
  const bot = JSON.parse(execFileSync(bin, ['bot', 'create', '--data', data, '--name', 'Sign-in bot',
    '--endpoint', 'https://127.0.0.1:9/api/messages', '--public-url', base, '--json']));
  const site = JSON.parse(execFileSync(bin, ['site', 'create', '--data', data, '--bot', bot.id, '--name', 'web',
    '--origin', 'https://app.example', '--json']));
  const clientSecret = 'E2E-CLIENT-SECRET-' + randomBytes(6).toString('hex');
  const conn = JSON.parse(execFileSync(bin, ['oauth', 'connection', 'create', '--data', data, '--bot', bot.id, '--name', 'github',
    '--provider', 'github', '--client-id', 'Iv1.e2e', '--client-secret-file', '-', '--scopes', 'read:user', '--json'], { input: clientSecret }));
  assert.equal(conn.name, 'github');
  const cfg = join(data, 'parley.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:${port}\npublic_url: ${base}\ndata_dir: ${data}\n` +
    `tls:\n  cert_file: ${join(certs, 'server.pem')}\n  key_file: ${join(certs, 'server.key')}\n`);
  const proc = spawn(bin, ['serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  t.after(async () => { if (proc.exitCode === null) proc.kill('SIGTERM'); await exited; });
  await waitFor('parley to start', () => {
    if (proc.exitCode !== null) throw new Error(`parley exited: ${out}`);
    return /parley serving/.test(out);
  });

  // A Web Chat user: a token bound to a dl_ user id, a conversation.
  const user = 'dl_' + randomBytes(8).toString('hex');
  let res = await fetch(`${base}/v3/directline/tokens/generate`, {
    method: 'POST', headers: { Authorization: `Bearer ${site.secrets[0]}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: user } }),
  });
  const { token: dlToken } = await res.json();
  res = await fetch(`${base}/v3/directline/conversations`, { method: 'POST', headers: { Authorization: `Bearer ${dlToken}` } });
  const { conversationId } = await res.json();
  assert.ok(conversationId);

  // The bot's access token from Parley's token endpoint, as MSAL gets it.
  const meta = await (await fetch(`${base}/botframework/v2.0/.well-known/openid-configuration`)).json();
  res = await fetch(meta.token_endpoint, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: bot.id, client_secret: bot.clientSecret, scope: `${base}/.default` }),
  });
  const { access_token: botToken } = await res.json();
  assert.ok(botToken);
  const credentials = { signRequest: async (req) => { req.headers.set('Authorization', `Bearer ${botToken}`); return req; } };
  const client = new UserTokenClientImpl(bot.id, credentials, base);

  assert.equal(await client.getUserToken(user, 'github', 'directline'), undefined, 'no token yet: undefined, not an error');
  const activity = { type: 'message', channelId: 'directline', serviceUrl: `${base}/`, id: 'x',
    conversation: { id: conversationId }, from: { id: user, role: 'user' }, recipient: { id: bot.id, name: 'Sign-in bot', role: 'bot' } };
  const resource = await client.getSignInResource('github', activity);
  assert.match(resource.signInLink, new RegExp(`^${base.replace(/\./g, '\\.')}/api/oauth/signin\\?signin=`));
  const status = await client.getTokenStatus(user, 'directline');
  assert.deepEqual(status.map((s) => [s.connectionName, s.hasToken, s.serviceProviderDisplayName]), [['github', false, 'GitHub']]);
  await client.signOutUser(user, 'github', 'directline');
  // Another user than the conversation's: refused.
  await assert.rejects(client.getSignInResource('github', { ...activity, from: { id: 'dl_someone_else' } }));

  // The link, as Web Chat opens it (session id appended percent-encoded),
  // leads to GitHub with PKCE S256, Parley's state and its exact callback.
  res = await fetch(resource.signInLink + encodeURIComponent('&code_challenge=' + 'x'.repeat(43)), { redirect: 'manual' });
  assert.equal(res.status, 302);
  const loc = new URL(res.headers.get('location'));
  assert.equal(loc.origin + loc.pathname, 'https://github.com/login/oauth/authorize');
  assert.equal(loc.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(loc.searchParams.get('redirect_uri'), `${base}/api/oauth/callback`);
  assert.equal(loc.searchParams.get('client_id'), 'Iv1.e2e');
  assert.ok(loc.searchParams.get('state')?.length >= 40);
  assert.ok(!out.includes(clientSecret) && !out.includes(botToken), 'a secret reached the logs');
});
