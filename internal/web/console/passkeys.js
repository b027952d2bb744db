// Passkeys (WebAuthn) in the console: sign-in with the password and a
// passkey instead of the authenticator code (or with a passkey alone when
// the server allows it), re-authentication with a passkey, and the list of
// one's passkeys on the account page. navigator.credentials with the
// standard base64url conversions; no library.

import { api, ApiError, PREFIX, first } from './api.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** Whether this browser can use passkeys here (a secure context with WebAuthn). */
export function supported() {
  return !!(window.isSecureContext && window.PublicKeyCredential && navigator.credentials);
}

/** base64url (no padding) to an ArrayBuffer. */
export function fromB64u(s) {
  let b = String(s).replace(/-/g, '+').replace(/_/g, '/');
  while (b.length % 4) b += '=';
  const bin = atob(b);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** An ArrayBuffer (or view) to base64url without padding. */
export function toB64u(buf) {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const descriptors = (list) => (list || []).map((d) => ({ ...d, id: fromB64u(d.id) }));

/** The server's {"publicKey": {...}} creation options for navigator.credentials.create. */
function creationOptions(options) {
  const pk = { ...options.publicKey };
  pk.challenge = fromB64u(pk.challenge);
  pk.user = { ...pk.user, id: fromB64u(pk.user.id) };
  if (pk.excludeCredentials) pk.excludeCredentials = descriptors(pk.excludeCredentials);
  return { publicKey: pk };
}

/** The server's request options for navigator.credentials.get. */
function requestOptions(options) {
  const pk = { ...options.publicKey };
  pk.challenge = fromB64u(pk.challenge);
  if (pk.allowCredentials) pk.allowCredentials = descriptors(pk.allowCredentials);
  return { publicKey: pk };
}

/** A PublicKeyCredential as the JSON the server reads. */
function credentialJSON(cred) {
  const r = cred.response;
  const out = {
    id: cred.id,
    rawId: toB64u(cred.rawId),
    type: cred.type,
    clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    response: { clientDataJSON: toB64u(r.clientDataJSON) },
  };
  if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
  if (r.attestationObject) {
    out.response.attestationObject = toB64u(r.attestationObject);
    if (r.getTransports) out.response.transports = r.getTransports();
  } else {
    out.response.authenticatorData = toB64u(r.authenticatorData);
    out.response.signature = toB64u(r.signature);
    if (r.userHandle && r.userHandle.byteLength) out.response.userHandle = toB64u(r.userHandle);
  }
  return out;
}

/** Asks the browser for an assertion; a cancelled prompt is an error the user understands. */
async function assert(options) {
  try {
    const cred = await navigator.credentials.get(requestOptions(options));
    if (!cred) throw new Error('No passkey was chosen.');
    return credentialJSON(cred);
  } catch (e) {
    if (e && e.name === 'NotAllowedError') throw new Error('The passkey prompt was cancelled or timed out: try again.');
    throw e;
  }
}

/**
 * Signs in with the name, the password and a passkey: POST /session
 * without a code answers mfa_required with a passkey challenge. Resolves
 * with the session answer.
 */
export async function signInWithPasskey(name, password) {
  let res;
  try {
    res = await fetch(PREFIX + '/session', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store', redirect: 'error',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, password }),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The server could not be reached: ' + e.message);
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.ok) return data;
  const err = (data && data.error) || {};
  if (res.status !== 401 || err.code !== 'mfa_required' || !data.passkey) {
    if (res.status === 401 && err.code === 'mfa_required') {
      throw new ApiError(401, 'mfa_required', 'You have no passkey usable here: enter the code from your authenticator app instead.');
    }
    throw new ApiError(res.status, err.code || '', err.message || ('HTTP ' + res.status));
  }
  const credential = await assert(data.passkey.options);
  return api('POST', '/session/passkey', { handle: data.passkey.handle, credential });
}

/** Signs in with a passkey alone (operators.webauthn.passwordless). */
export async function signInPasswordless() {
  const ch = await api('POST', '/session/passkey/begin', {});
  const credential = await assert(ch.options);
  return api('POST', '/session/passkey', { handle: ch.handle, credential });
}

/** Re-authenticates the session with a passkey. */
export async function reauthWithPasskey() {
  const ch = await api('POST', '/session/reauth/passkey/begin', {}, { retried: true });
  const credential = await assert(ch.options);
  return api('POST', '/session/reauth/passkey/finish', { credential }, { retried: true });
}

/** Registers a new passkey named name (the server asks to re-authenticate first). */
export async function registerPasskey(name) {
  const ch = await api('POST', '/me/passkeys/begin', {});
  let cred;
  try {
    cred = await navigator.credentials.create(creationOptions(ch.options));
  } catch (e) {
    if (e && e.name === 'InvalidStateError') throw new Error('This authenticator already holds a passkey for you here.');
    if (e && e.name === 'NotAllowedError') throw new Error('The passkey prompt was cancelled or timed out: try again.');
    throw e;
  }
  if (!cred) throw new Error('No passkey was created.');
  return api('POST', '/me/passkeys/finish', { name, credential: credentialJSON(cred) });
}

const when = (s) => {
  if (!s) return 'never';
  const t = document.createElement('time');
  t.dateTime = s;
  t.textContent = new Date(s).toLocaleString();
  return t;
};

/** The passkey parts of the console's pages (called after the page's own code). */
export const passkeyPages = {
  async signin(main, ctx) {
    const button = $('#signin-passkey', main);
    if (!button) return;
    if (!supported()) {
      button.hidden = true;
      return;
    }
    button.addEventListener('click', async () => {
      ctx.showError(null);
      const form = $('#signin-form', main);
      const name = form.name.value.trim();
      const password = form.password.value;
      button.disabled = true;
      try {
        if (!name && !password) await signInPasswordless();
        else if (!name || !password) throw new Error('Enter your name and password, then use your passkey (or leave both empty to sign in with a passkey alone, when the server allows it).');
        else await signInWithPasskey(name, password);
        let session = null;
        try { session = await api('GET', '/session'); } catch { /* the sign-in answer is enough */ }
        ctx.setMe(session);
        const next = history.state && history.state.next;
        ctx.go(next && next !== '/signin' ? next : '/');
      } catch (e) {
        ctx.showError(e);
      } finally {
        button.disabled = false;
      }
    });
  },

  async account(main, ctx) {
    const section = $('#passkeys', main);
    if (!section) return;
    const list = $('#passkeys-list', section);
    const note = $('#passkeys-note', section);
    const form = $('#passkey-form', section);
    const load = async () => {
      const data = await api('GET', '/me/passkeys');
      const keys = (data && data.passkeys) || [];
      list.replaceChildren();
      for (const k of keys) {
        const li = document.createElement('li');
        const name = document.createElement('strong');
        name.textContent = first(k, 'name') || 'passkey';
        const meta = document.createElement('span');
        meta.append(' added ', when(k.createdAt), ', last used ', when(k.lastUsedAt), k.backupEligible ? ' (synced)' : '', ' ');
        const rm = document.createElement('button');
        rm.type = 'button';
        rm.textContent = 'Remove';
        rm.setAttribute('aria-label', `Remove passkey ${name.textContent}`);
        rm.addEventListener('click', async () => {
          ctx.showError(null);
          try {
            await api('DELETE', '/me/passkeys/' + encodeURIComponent(k.id));
            ctx.say(`Passkey ${name.textContent} removed.`);
            await load();
          } catch (e) { ctx.showError(e); }
        });
        li.append(name, meta, rm);
        list.append(li);
      }
      const usable = supported() && data && data.available;
      if (!keys.length) note.textContent = 'You have no passkey.';
      else note.textContent = `You have ${keys.length} passkey${keys.length > 1 ? 's' : ''}.`;
      if (!usable) {
        note.textContent += supported()
          ? ' Passkeys are not available at this address: open the console at its configured name (operators.webauthn), or as localhost on this machine (on a loopback listener).'
          : ' This browser cannot use passkeys here.';
      }
      form.hidden = !usable;
    };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      ctx.showError(null);
      const b = form.querySelector('button[type=submit]');
      b.disabled = true;
      try {
        const name = form.name.value.trim() || 'passkey';
        await registerPasskey(name);
        form.reset();
        ctx.say(`Passkey ${name} added.`);
        await load();
      } catch (e) { ctx.showError(e); } finally { b.disabled = false; }
    });
    await load();
  },
};

/** Offers a passkey in the re-authentication dialog; done(true) when it worked. */
export function wireReauthPasskey(dlg, done) {
  const button = dlg.querySelector('[data-passkey]');
  if (!button) return;
  if (!supported()) {
    button.hidden = true;
    return;
  }
  button.addEventListener('click', async () => {
    const box = dlg.querySelector('[data-error]');
    box.hidden = true;
    button.disabled = true;
    try {
      await reauthWithPasskey();
      done(true);
    } catch (e) {
      box.textContent = `${e.status ? e.status + ' ' + (e.code || '') + ': ' : ''}${e.message}`;
      box.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
