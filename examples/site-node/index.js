// A minimal Express website backend that puts the official Web Chat on its
// pages through Parley (Direct Line enhanced authentication): it signs its
// own user in, derives an unguessable dl_ user id from that user (HMAC with
// a key only the site has), asks Parley for a token with the site secret
// (which never leaves the server) and gives the page only the token.
//
// Environment: PARLEY_DIRECTLINE, PARLEY_SITE_SECRET, SITE_USERS
// (user:password,...), SITE_ID_KEY (32+ random characters), SITE_LISTEN
// (default 127.0.0.1:3001), WEBCHAT_URL (default the official CDN bundle).
const crypto = require('node:crypto');
const express = require('express');

const env = process.env;
const directLine = (env.PARLEY_DIRECTLINE || '').replace(/\/+$/, '');
const secret = env.PARLEY_SITE_SECRET || '';
const idKey = env.SITE_ID_KEY || '';
const webchatURL = env.WEBCHAT_URL || 'https://cdn.botframework.com/botframework-webchat/latest/webchat.js';
const users = new Map((env.SITE_USERS || '').split(',').map((p) => p.split(':')).filter(([u, p]) => u && p));
if (!directLine || !secret) throw new Error('PARLEY_DIRECTLINE and PARLEY_SITE_SECRET are required');
if (users.size === 0) throw new Error('SITE_USERS must list at least one user:password');
if (idKey.length < 32) throw new Error('SITE_ID_KEY must be at least 32 characters of random data');

const sessions = new Map(); // session id -> user name

// The Direct Line user id: stable per user, unguessable without the key.
function userId(user) {
  return 'dl_' + crypto.createHmac('sha256', idKey).update(user).digest().subarray(0, 18).toString('base64url');
}

function currentUser(req) {
  const m = /(?:^|;\s*)site_session=([^;]+)/.exec(req.headers.cookie || '');
  return m ? sessions.get(m[1]) : undefined;
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const app = express();
app.disable('x-powered-by');
app.use(express.urlencoded({ extended: false, limit: '4kb' }));

app.get('/', (req, res) => {
  const user = currentUser(req);
  res.type('html');
  if (!user) {
    res.send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example site: sign in</title><link rel="icon" href="data:,"></head>
<body style="font-family:system-ui;margin:2rem"><h1>Example site</h1>
<form method="post" action="/login"><label>User <input name="user" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label> <button>Sign in</button></form></body></html>`);
    return;
  }
  res.send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example site: chat</title><link rel="icon" href="data:,"></head>
<body style="font-family:system-ui;margin:0"><header style="padding:1rem">Signed in as <b id="user">${escape(user)}</b></header>
<div id="webchat" style="height:600px"></div>
<script src="${escape(webchatURL)}"></script>
<script>
(async function () {
  const res = await fetch('/api/directline/token', { method: 'POST' });
  const { token, domain } = await res.json();
  window.WebChat.renderWebChat({ directLine: window.WebChat.createDirectLine({ token, domain }) }, document.getElementById('webchat'));
})();
</script></body></html>`);
});

app.post('/login', (req, res) => {
  const { user = '', password = '' } = req.body || {};
  const want = users.get(user);
  const ok = want !== undefined && want.length === password.length &&
    crypto.timingSafeEqual(Buffer.from(password), Buffer.from(want));
  if (!ok) { res.status(401).type('text').send('Wrong user or password.'); return; }
  const id = crypto.randomBytes(32).toString('base64url');
  sessions.set(id, user);
  res.cookie('site_session', id, { httpOnly: true, sameSite: 'lax', secure: req.secure, path: '/' });
  res.redirect(303, '/');
});

// Mints a Direct Line token for the signed-in user.
app.post('/api/directline/token', async (req, res) => {
  const user = currentUser(req);
  if (!user) { res.status(401).json({ error: 'sign in first' }); return; }
  try {
    const r = await fetch(directLine + '/tokens/generate', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + secret, 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: { id: userId(user) } }),
      signal: AbortSignal.timeout(10000),
    });
    if (!r.ok) throw new Error('tokens/generate answered ' + r.status);
    const { token } = await r.json();
    res.set('Cache-Control', 'no-store').json({ token, domain: directLine });
  } catch (e) {
    console.error('token:', e.message);
    res.status(502).json({ error: 'chat unavailable' });
  }
});

const [host, port] = (env.SITE_LISTEN || '127.0.0.1:3001').split(':');
app.listen(Number(port), host, () => console.log(`site listening on http://${host}:${port}/`));
