// The Parley web console: a small single-page app (plain ES modules, no
// framework, no build step). Pages are <template>s in index.html; this file
// routes between them, keeps the session, and shows the server's errors.

import { api, setCSRF, onReauth, onExpired, ApiError, val, first } from './api.js';
import { grants } from './roles.js';
import { pages } from './pages.js';
import { passkeyPages, wireReauthPasskey } from './passkeys.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** The signed-in principal: {name, role, bots, actions?, expires}; null when signed out. */
export const state = { me: null };

const PUBLIC = new Set(['signin', 'enroll']);

/** Reads GET /session's answer, whatever its exact nesting. */
export function readSession(data) {
  if (!data) return null;
  const who = val(data, 'operator') || val(data, 'principal') || val(data, 'user') || data;
  setCSRF(first(data, 'csrf_token', 'csrf', 'x_csrf_token') || first(who, 'csrf_token', 'csrf') || '');
  const actions = val(data, 'actions') || val(data, 'permissions') || val(who, 'actions') || val(who, 'permissions');
  return {
    id: first(who, 'id', 'operator_id'),
    name: first(who, 'name', 'operator_name') || '?',
    role: first(who, 'role') || first(data, 'role') || '',
    bots: val(who, 'bots') || [],
    actions: Array.isArray(actions) ? actions : null,
    expires: first(data, 'expires_at', 'expires', 'expiry'),
  };
}

/** Whether the signed-in principal holds action (for showing, never for allowing). */
export function can(action) {
  const me = state.me;
  if (!me) return false;
  if (me.actions) return me.actions.includes(action);
  return grants(me.role, action);
}

/** Shows an error to the user (the alert region reads it out). */
export function showError(err) {
  const box = $('#error');
  if (!err) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  const msg = err instanceof ApiError
    ? (err.status ? `${err.status}${err.code ? ' ' + err.code : ''}: ` : '') + err.message
    : String(err.message || err);
  box.textContent = msg;
  box.hidden = false;
  box.focus();
}

/** Says something politely (saved, created…). */
export function say(text) {
  const s = $('#status');
  s.textContent = '';
  // A fresh text node so that screen readers announce a repeated message.
  setTimeout(() => { s.textContent = text; }, 30);
}

function renderNav() {
  const nav = $('#nav');
  nav.hidden = !state.me;
  for (const a of nav.querySelectorAll('a[data-action]')) {
    a.parentElement.hidden = !can(a.dataset.action);
  }
  const who = $('#who');
  who.textContent = state.me ? `${state.me.name} (${state.me.role})` : '';
}

function markCurrent(page) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/** The page name of a path: "/dead-letters" → "dead-letters", "/" → "home". */
function pageOf(path) {
  const name = path.replace(/^\/+|\/+$/g, '').split('/')[0];
  return name || 'home';
}

let renderSeq = 0;

/** Shows the page for the current location. */
export async function route() {
  const seq = ++renderSeq;
  showError(null);
  $('#status').textContent = '';
  let name = pageOf(location.pathname);
  if (!pages[name] || !document.getElementById('page-' + name)) name = 'notfound';
  if (!state.me && !PUBLIC.has(name)) {
    try {
      state.me = readSession(await api('GET', '/session'));
    } catch (e) {
      state.me = null;
      if (!(e instanceof ApiError && e.status === 401)) showError(e);
    }
    if (seq !== renderSeq) return;
    if (!state.me) {
      history.replaceState({ next: location.pathname }, '', '/signin');
      name = 'signin';
    }
  }
  renderNav();
  markCurrent(name);
  const main = $('#main');
  const tpl = document.getElementById('page-' + name);
  main.replaceChildren(tpl ? tpl.content.cloneNode(true) : notFound());
  // Forms are sent by script only: never natively (a GET with the
  // password in the URL), even before the page's handlers are attached.
  for (const f of main.querySelectorAll('form')) f.addEventListener('submit', (ev) => ev.preventDefault());
  // Forms the role cannot use are hidden (the server refuses them anyway).
  for (const f of main.querySelectorAll('[data-action]')) f.hidden = !can(f.dataset.action);
  // Forms only an unscoped principal may use (a new bot is gateway-wide).
  for (const f of main.querySelectorAll('[data-unscoped]')) if (state.me && state.me.bots.length) f.hidden = true;
  const h1 = $('h1', main);
  document.title = (h1 ? h1.textContent + ' · ' : '') + 'Parley console';
  main.focus({ preventScroll: true });
  main.setAttribute('aria-busy', 'true');
  delete main.dataset.ready;
  try {
    await pages[name]?.(main, { go, can, say, showError, state, setMe });
    // Passkeys add to the sign-in and account pages (passkeys.js).
    await passkeyPages[name]?.(main, { go, can, say, showError, state, setMe });
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401 && !PUBLIC.has(name)) {
      state.me = null;
      go('/signin');
      return;
    }
    if (e instanceof ApiError && e.status === 403 && e.code !== 'csrf') refused(main, e);
    else showError(e);
  } finally {
    if (seq === renderSeq) {
      // The page has its data (or its error): for assistive technology and tests.
      main.removeAttribute('aria-busy');
      main.dataset.ready = name;
    }
  }
}

/** A page the server refused: its message in place of the page's content. */
function refused(main, e) {
  const p = document.createElement('p');
  p.className = 'refused';
  p.setAttribute('role', 'alert');
  p.textContent = `The server refused this page (403 ${e.code}): ${e.message}`;
  const h1 = $('h1', main);
  main.replaceChildren(...(h1 ? [h1] : []), p);
}

function notFound() {
  const f = document.createDocumentFragment();
  const h = document.createElement('h1');
  h.textContent = 'Page not found';
  const p = document.createElement('p');
  p.textContent = 'There is no such page in the console.';
  f.append(h, p);
  return f;
}

/** Sets the signed-in principal from a session answer. */
export function setMe(data) {
  state.me = data ? readSession(data) : null;
  renderNav();
}

/** Navigates inside the console. */
export function go(path) {
  history.pushState({}, '', path);
  route();
}

// Links marked data-link navigate without reloading.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[data-link]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', route);

// A session that ended (expired, idle, signed out elsewhere): back to the
// sign-in page, then to where the operator was.
onExpired((e) => {
  if (!state.me) return;
  state.me = null;
  const next = location.pathname;
  history.pushState({ next }, '', '/signin');
  route().then(() => showError(e));
});

// Re-authentication for the most sensitive actions: a dialog asks for the
// password and a code, then the request is tried again once.
onReauth(() => new Promise((resolve) => {
  const frag = document.getElementById('part-reauth').content.cloneNode(true);
  document.body.append(frag);
  const dlg = document.getElementById('reauth');
  const form = document.getElementById('reauth-form');
  const done = (ok) => { dlg.close(); dlg.remove(); resolve(ok); };
  dlg.querySelector('[data-cancel]').addEventListener('click', () => done(false));
  dlg.addEventListener('cancel', () => done(false));
  wireReauthPasskey(dlg, done);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = form.code.value.trim();
    const body = { password: form.password.value };
    if (/^\d{6}$/.test(code)) body.totp = code; else body.recoveryCode = code;
    try {
      await api('POST', '/session/reauth', body, { retried: true });
      done(true);
    } catch (e) {
      // The page behind the modal dialog is inert: the error goes in the dialog.
      const box = dlg.querySelector('[data-error]');
      box.textContent = `${e.status ? e.status + ' ' + (e.code || '') + ': ' : ''}${e.message}`;
      box.hidden = false;
      form.code.value = '';
      form.code.focus();
    }
  });
  dlg.showModal();
}));

route();
