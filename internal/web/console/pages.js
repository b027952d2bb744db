// The console's pages: each fills the template app.js cloned into main.
// Every value from the server is put in the page as text (never as HTML).

import { api, val, first, items } from './api.js';
import { drawChart, offenderLabel } from './chart.js';
import { qrSVG } from './qr.js';

const $ = (sel, root = document) => root.querySelector(sel);

function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') { if (v) e.className = v; }
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** A date as "2026-12-01 12:34:56Z", or "" for none. */
export function when(v) {
  if (!v || v === '0001-01-01T00:00:00Z') return '';
  const t = typeof v === 'number' ? new Date(v * (v < 1e12 ? 1000 : 1)) : new Date(v);
  return Number.isNaN(t.getTime()) ? String(v) : t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function text(v) {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k}=${x}`).join(', ');
  return String(v);
}

/**
 * A semantic table: columns [{label, get(row) → text or Node}], an optional
 * actions(row) → [buttons]. Empty: a sentence instead.
 */
function table(caption, columns, rows, actions) {
  if (!rows.length) return h('p', { class: 'empty' }, `${caption}: none yet.`);
  const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)), actions ? h('th', { scope: 'col' }, 'Actions') : null);
  const body = rows.map((r) => {
    const cells = columns.map((c, i) => {
      const v = c.get(r);
      const cell = v instanceof Node ? v : text(v);
      const long = typeof cell === 'string' && cell.length > 16 && !/\s/.test(cell) ? 'long' : undefined;
      return i === 0 ? h('th', { scope: 'row', class: long }, cell) : h('td', { class: long }, cell);
    });
    return h('tr', {}, cells, actions ? h('td', { class: 'actions' }, actions(r)) : null);
  });
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', {}, caption), h('thead', {}, head), h('tbody', {}, body)));
}

const col = (label, ...names) => ({ label, get: (r) => first(r, ...names) });
const colWhen = (label, ...names) => ({
  label,
  get: (r) => {
    const w = when(first(r, ...names));
    return w ? h('time', { datetime: w.replace(' ', 'T'), class: 't' }, w) : '';
  },
});

/** A button that runs fn, showing its errors; confirm asks first. */
function button(label, ctx, fn, { confirm: question, aria } = {}) {
  return h('button', {
    type: 'button', 'aria-label': aria,
    on: {
      click: async (ev) => {
        if (question && !window.confirm(question)) return;
        const b = ev.currentTarget;
        b.disabled = true;
        try { await fn(); } catch (e) { ctx.showError(e); } finally { b.disabled = false; }
      },
    },
  }, label);
}

/**
 * Shows values the server returns once (secrets, codes) in a box above the
 * page's content, with a copy button; the values are never kept.
 */
let onceCount = 0;
function showOnce(main, title, values) {
  const frag = document.getElementById('part-once').content.cloneNode(true);
  const box = frag.querySelector('section');
  const heading = box.querySelector('h2');
  heading.textContent = title;
  heading.id = 'once-title-' + (++onceCount);
  box.setAttribute('aria-labelledby', heading.id);
  const dl = box.querySelector('[data-values]');
  for (const [k, v] of values) dl.append(h('dt', {}, humanize(k)), h('dd', {}, h('code', { class: 'secret' }, text(v))));
  box.querySelector('[data-copy]').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(values.map(([k, v]) => `${k}: ${text(v)}`).join('\n')); } catch { /* the values stay selectable */ }
  });
  box.querySelector('[data-done]').addEventListener('click', () => box.remove());
  const h1 = $('h1', main);
  h1.after(box);
  box.focus();
}

/** "clientSecret" → "Client secret", "code" → "Enrollment code". */
function humanize(k) {
  const words = String(k).replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_.]/g, ' ').toLowerCase();
  const named = { code: 'one-time enrollment code', token: 'API token' }[words] || words;
  return named.charAt(0).toUpperCase() + named.slice(1);
}

/**
 * Calls a change that answers a secret shown once. Resolves with [answer,
 * note]: when the change was made but its audit event could not be
 * recorded (500 unrecorded), the answer is the result beside the error
 * and note says so, for showOnce's title; other errors reject.
 */
async function made(method, path, body) {
  try {
    return [await api(method, path, body), ''];
  } catch (e) {
    if (e.code === 'unrecorded' && e.result) return [e.result, ` (made, but NOT recorded in the audit log: ${e.message})`];
    throw e;
  }
}

/** The secret-looking fields of a creation answer, for showOnce. */
function secretsIn(data) {
  const out = [];
  const walk = (o, prefix) => {
    if (!o || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o)) {
      if (/secret|token|code|key$|password/i.test(k) && !/hash|_at$|expires|id$|kind|type|prefix/i.test(k)) {
        if (typeof v === 'string' && v) out.push([prefix + k, v]);
        else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) v.forEach((x, i) => out.push([`${prefix}${k.replace(/s$/, '')} ${i + 1}`, x]));
      } else if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, prefix + k + '.');
    }
  };
  walk(data, '');
  return out;
}

function formJSON(form) { return Object.fromEntries(new FormData(form)); }
const lines = (s) => String(s || '').split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
const enc = encodeURIComponent;

/** Submits form with fn(values); errors go to the alert region. */
function onSubmit(form, ctx, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    ctx.showError(null);
    const b = form.querySelector('button[type=submit]');
    if (b) b.disabled = true;
    try { await fn(formJSON(form)); } catch (e) { ctx.showError(e); } finally { if (b) b.disabled = false; }
  });
}

function codeBody(code) {
  const c = String(code || '').trim();
  return /^\d{6,8}$/.test(c) ? { totp: c } : { recoveryCode: c };
}

let ssoProbe = null;

export const pages = {
  async signin(main, ctx) {
    const form = $('#signin-form', main);
    $('#signin-name', main).focus();
    // SSO is offered when the server has a provider: the probe answers 204
    // (404 without one), starts no sign-in and spends no sign-in budget.
    ssoProbe ||= fetch('/admin/v1/sso/login?probe=1', { method: 'GET', redirect: 'manual', credentials: 'same-origin' })
      .then((r) => r.status === 204, () => false);
    ssoProbe.then((yes) => {
      const link = $('#signin-sso', main);
      if (link) link.hidden = !yes;
    });
    onSubmit(form, ctx, async (v) => {
      const data = await api('POST', '/session', { name: v.name, password: v.password, ...codeBody(v.code) });
      // The answer may already be the session; GET it to be sure of the CSRF token.
      let session = data;
      try { session = await api('GET', '/session'); } catch { /* keep the sign-in answer */ }
      ctx.setMe(session);
      const next = history.state && history.state.next;
      ctx.go(next && next !== '/signin' ? next : '/');
    });
  },

  async enroll(main, ctx) {
    const form = $('#enroll-form', main);
    const step = (n) => {
      for (const li of main.querySelectorAll('.steps li')) {
        if (Number(li.dataset.step) === n) li.setAttribute('aria-current', 'step'); else li.removeAttribute('aria-current');
      }
    };
    step(1);
    $('#enroll-code', main).focus();
    let enrollment = {};
    onSubmit(form, ctx, async (v) => {
      if (v.password !== v.password2) throw new Error('The two passwords differ.');
      const data = await api('POST', '/enroll', { code: v.code.trim(), name: v.name, password: v.password });
      enrollment = data || {};
      const uri = first(enrollment, 'totp_uri', 'otpauth_uri', 'otpauth_url', 'uri') || '';
      let secret = first(enrollment, 'totp_secret', 'secret');
      if (!secret && uri) secret = new URL(uri).searchParams.get('secret') || '';
      $('#enroll-secret', main).textContent = secret || '';
      const img = $('#enroll-qr', main);
      const qr = first(enrollment, 'qr', 'qr_png', 'qr_code', 'qr_data_url');
      if (qr && /^data:image\/(png|gif|svg\+xml);base64,/.test(qr)) {
        img.src = qr;
        img.hidden = false;
      } else if (uri) {
        $('#enroll-qr-svg', main).append(qrSVG(uri, 'QR code of the authenticator key'));
      }
      form.hidden = true;
      $('#enroll-totp', main).hidden = false;
      step(2);
      $('#enroll-totp-code', main).focus();
    });
    onSubmit($('#enroll-totp-form', main), ctx, async (v) => {
      const data = await api('POST', '/enroll/totp', { enrollmentId: first(enrollment, 'enrollment_id'), totp: v.totp.trim() });
      const codes = items(data, 'recovery_codes', 'codes');
      const ul = $('#enroll-recovery', main);
      ul.replaceChildren(...codes.map((c) => h('li', {}, h('code', { class: 'secret' }, String(c)))));
      $('#enroll-totp', main).hidden = true;
      $('#enroll-done', main).hidden = false;
      step(3);
      $('#enroll-done-title', main).setAttribute('tabindex', '-1');
      $('#enroll-done-title', main).focus();
      // Confirming signs the new operator in (the answer is the session).
      if (val(data, 'operator')) ctx.setMe(data);
      try { ctx.setMe(await api('GET', '/session')); } catch { /* not signed in: the link says sign in */ }
      if (ctx.state.me) {
        const a = $('#enroll-signin', main);
        a.textContent = 'I saved them: open the console';
        a.setAttribute('href', '/');
      }
    });
  },

  async home(main, ctx) {
    const me = ctx.state.me;
    $('#home-who', main).textContent = `Signed in as ${me.name}, role ${me.role}${me.bots && me.bots.length ? ', bots ' + me.bots.join(', ') : ''}${me.expires ? '; the session ends at ' + when(me.expires) : ''}.`;
  },

  async bots(main, ctx) {
    const list = $('[data-list]', main);
    const load = async () => {
      const rows = items(await api('GET', '/bots'), 'bots');
      list.replaceChildren(table('Bots', [col('App id', 'id', 'app_id'), col('Name', 'name'), col('Endpoint', 'endpoint'),
        { label: 'Development (no auth)', get: (r) => first(r, 'insecure_no_auth') ? 'yes' : 'no' }, colWhen('Created', 'created_at', 'created')], rows,
      (r) => {
        const id = first(r, 'id', 'app_id');
        return [
          ...(ctx.can('bots.secrets') && !first(r, 'insecure_no_auth') ? [1, 2].map((slot) => button(`New secret ${slot}`, ctx, async () => {
            const [data, note] = await made('POST', `/bots/${enc(id)}/secret`, { slot });
            showOnce(main, `Client secret ${slot} of bot ${id}${note}`, secretsIn(data));
          }, { aria: `New client secret ${slot} for bot ${id}`, confirm: `Replace client secret ${slot} of ${id}? The old secret ${slot} stops working; the other slot keeps working.` })) : []),
          ctx.can('bots.write') ? button('Delete', ctx, async () => {
            await api('DELETE', `/bots/${enc(id)}?cascade=true`);
            ctx.say(`Bot ${id} deleted.`);
            await load();
          }, { aria: `Delete bot ${id}`, confirm: `Delete bot ${id} with its sites and conversations? This cannot be undone.` }) : null,
        ];
      }));
    };
    const form = $('#bot-form', main);
    onSubmit(form, ctx, async (v) => {
      const [data, note] = await made('POST', '/bots', { name: v.name, endpoint: v.endpoint });
      const id = first(val(data, 'bot') || data, 'id', 'app_id') || v.name;
      form.reset();
      await load();
      const secrets = secretsIn(data);
      if (secrets.length) showOnce(main, `Bot ${id} registered: its client secret${note}`, secrets);
      ctx.say(`Bot ${id} registered.`);
    });
    await load();
  },

  async sites(main, ctx) {
    const list = $('[data-list]', main);
    const load = async () => {
      const rows = items(await api('GET', '/sites'), 'sites');
      list.replaceChildren(table('Sites', [col('Site id', 'id'), col('Name', 'name'), col('Bot', 'bot_id', 'bot'),
        { label: 'Enhanced authentication', get: (r) => text(first(r, 'enhanced_auth')) },
        { label: 'Trusted origins', get: (r) => text(first(r, 'trusted_origins', 'origins')) },
        { label: 'Secret slots', get: (r) => (val(r, 'secret_slots') || []).map((x, i) => `${i + 1}: ${x ? 'set' : 'empty'}`).join(', ') }], rows,
      (r) => {
        const id = first(r, 'id');
        return [
          ...(ctx.can('sites.secrets') ? [1, 2].map((slot) => button(`New secret ${slot}`, ctx, async () => {
            const [data, note] = await made('POST', `/sites/${enc(id)}/secrets`, { slot });
            showOnce(main, `Secret ${slot} of site ${id}${note}`, secretsIn(data));
          }, { aria: `New secret ${slot} for site ${id}`, confirm: `Replace secret ${slot} of site ${id}? Clients using the old secret ${slot} stop working; the other slot keeps working.` })) : []),
          ctx.can('sites.write') ? button('Delete', ctx, async () => {
            await api('DELETE', `/sites/${enc(id)}`);
            ctx.say(`Site ${id} deleted.`);
            await load();
          }, { aria: `Delete site ${id}`, confirm: `Delete site ${id} and its conversations?` }) : null,
        ];
      }));
    };
    const form = $('#site-form', main);
    onSubmit(form, ctx, async (v) => {
      const [data, note] = await made('POST', '/sites', { bot: v.bot, name: v.name, trustedOrigins: lines(v.origins) });
      const id = first(val(data, 'site') || data, 'id') || v.name;
      form.reset();
      await load();
      const secrets = secretsIn(data);
      if (secrets.length) showOnce(main, `Site ${id} created: its Direct Line secrets${note}`, secrets);
      ctx.say(`Site ${id} created.`);
    });
    await load();
    if (!form.hidden) {
      const bots = items(await api('GET', '/bots'), 'bots');
      $('#site-bot', main).replaceChildren(...bots.map((b) => h('option', { value: first(b, 'id', 'app_id') }, `${first(b, 'name') || ''} (${first(b, 'id', 'app_id')})`)));
    }
  },

  async origins(main, ctx) {
    const sites = items(await api('GET', '/sites'), 'sites');
    const sel = $('#origins-site', main);
    const area = $('#origins-list', main);
    sel.replaceChildren(...sites.map((s) => h('option', { value: first(s, 'id') }, `${first(s, 'name') || ''} (${first(s, 'id')})`)));
    const fill = () => {
      const s = sites.find((x) => first(x, 'id') === sel.value);
      area.value = (first(s || {}, 'trusted_origins', 'origins') || []).join('\n');
    };
    sel.addEventListener('change', fill);
    fill();
    onSubmit($('#origins-form', main), ctx, async (v) => {
      const origins = lines(v.origins);
      const data = await api('PUT', `/sites/${enc(v.site)}/origins`, { origins });
      const i = sites.findIndex((x) => first(x, 'id') === v.site);
      if (i >= 0) sites[i] = data && first(data, 'id') ? data : { ...sites[i], trustedOrigins: origins };
      ctx.say(`Origins of ${v.site} saved.`);
    });
  },

  async conversations(main, ctx) {
    const list = $('[data-list]', main);
    const load = async (bot = '', site = '') => {
      const q = new URLSearchParams();
      if (bot) q.set('bot', bot);
      if (site) q.set('site', site);
      const rows = items(await api('GET', '/conversations' + (q.size ? '?' + q : '')), 'conversations');
      list.replaceChildren(table('Conversations', [col('Conversation', 'id', 'conversation_id'), col('Bot', 'bot_id'), col('Site', 'site_id'),
        col('Activities', 'activities'), col('Queued deliveries', 'queued_deliveries', 'pending_deliveries'), col('Dead letters', 'dead_letters'),
        colWhen('Created', 'created_at'), colWhen('Last activity', 'last_activity_at'), colWhen('Ended', 'ended_at')], rows,
      ctx.can('conversations.erase') ? (r) => {
        const id = first(r, 'id', 'conversation_id');
        return [button('Erase', ctx, async () => {
          await api('DELETE', `/conversations/${enc(id)}`);
          ctx.say(`Conversation ${id} erased.`);
          await load(bot, site);
        }, { aria: `Erase conversation ${id}`, confirm: `Erase conversation ${id}? Its activities and attachments are destroyed for good.` })];
      } : null));
    };
    onSubmit($('#conv-filter', main), ctx, (v) => load(v.bot.trim(), v.site.trim()));
    await load();
  },

  async 'dead-letters'(main, ctx) {
    const list = $('[data-list]', main);
    const load = async () => {
      const rows = items(await api('GET', '/dead-letters'), 'dead_letters', 'deadLetters');
      list.replaceChildren(table('Dead letters', [col('Id', 'id'), col('Bot', 'bot_id'), col('Conversation', 'conversation_id'),
        col('Activity', 'activity_id'), col('Attempts', 'attempts'), col('Last status', 'last_status'), col('Last error', 'last_error'),
        colWhen('Dead since', 'dead_at')], rows,
      ctx.can('deadletters.redeliver') ? (r) => {
        const id = first(r, 'id');
        return [
          button('Redeliver', ctx, async () => {
            await api('POST', `/dead-letters/${enc(id)}/redeliver`, {});
            ctx.say(`Dead letter ${id} put back in the outbox.`);
            await load();
          }, { aria: `Redeliver dead letter ${id}` }),
          button('Drop', ctx, async () => {
            await api('DELETE', `/dead-letters/${enc(id)}`);
            ctx.say(`Dead letter ${id} dropped.`);
            await load();
          }, { aria: `Drop dead letter ${id}`, confirm: `Drop dead letter ${id}? It will not be delivered.` }),
        ];
      } : null));
    };
    await load();
  },

  async keys(main, ctx) {
    const list = $('[data-list]', main);
    const state = (k) => first(k, 'state', 'status') || (first(k, 'destroyed_at') && when(first(k, 'destroyed_at')) ? 'destroyed'
      : first(k, 'retired_at') && when(first(k, 'retired_at')) ? 'retired' : first(k, 'activated_at') && when(first(k, 'activated_at')) ? 'active' : 'next');
    const purposes = $('#keys-purpose', main);
    const load = async () => {
      const rows = items(await api('GET', '/keys'), 'keys');
      // Offer every purpose the server lists, beside the known ones.
      for (const p of new Set(rows.map((k) => first(k, 'purpose')).filter(Boolean))) {
        if (![...purposes.options].some((o) => o.value === p)) purposes.append(h('option', { value: p }, p));
      }
      list.replaceChildren(table('Keys', [col('Key id', 'id', 'kid'), col('Purpose', 'purpose'), { label: 'State', get: state },
        colWhen('Created', 'created_at'), colWhen('Activated', 'activated_at'), colWhen('Retired', 'retired_at'), colWhen('Destroyed', 'destroyed_at')], rows,
      ctx.can('keys.manage') ? (r) => {
        const id = first(r, 'id', 'kid');
        if (!['retired', 'expired'].includes(state(r))) return [];
        return [button('Destroy', ctx, async () => {
          await api('POST', `/keys/${enc(id)}/destroy`, { confirm: true });
          ctx.say(`Key ${id} destroyed.`);
          await load();
        }, { aria: `Destroy key ${id}`, confirm: `Destroy key ${id}? Everything sealed or signed with it becomes unreadable. This cannot be undone.` })];
      } : null));
    };
    onSubmit($('#keys-rotate', main), ctx, async (v) => {
      const data = await api('POST', '/keys/rotate', v.force ? { purpose: v.purpose, force: true } : { purpose: v.purpose });
      ctx.say(`Keys of ${v.purpose} rotated${first(data || {}, 'activated') ? ': ' + text(first(data, 'activated')) + ' is active' : ''}.`);
      await load();
    });
    await load();
  },

  async audit(main, ctx) {
    const list = $('[data-list]', main);
    const verify = $('#audit-verify', main);
    const more = $('#audit-more', main);
    const page = 100;
    let entries = [];
    const seqOf = (e) => Number(first(e, 'seq', 'position'));
    const render = () => list.replaceChildren(table('Audit log entries, newest first', [col('Seq', 'seq'), colWhen('Time (UTC)', 'time'),
      col('Actor', 'actor'), col('Role', 'role'), col('Action', 'action'), col('Target', 'target'),
      { label: 'Outcome', get: (r) => h('span', { class: 'outcome ' + String(first(r, 'outcome') || '') }, text(first(r, 'outcome'))) },
      col('Client', 'client'), col('Detail', 'detail')], entries));
    // GET /audit reads the entries after a position (?after=SEQ&limit=N):
    // the newest page starts at the head (from the verification) less a page.
    const fetchAfter = async (after, limit) => items(await api('GET', `/audit?after=${after}&limit=${limit}`), 'entries');
    const add = (got) => {
      const known = new Set(entries.map(seqOf));
      entries = entries.concat(got.filter((e) => !known.has(seqOf(e)))).sort((x, y) => seqOf(y) - seqOf(x));
      render();
      more.hidden = !entries.length || Math.min(...entries.map(seqOf)) <= 1;
    };
    let head = 0;
    try {
      const v = await api('GET', '/audit/verify');
      head = Number(first(v, 'head_seq', 'head') || 0);
      const ok = first(v, 'ok') === true;
      const p = val(v, 'problem');
      verify.className = 'verify ' + (ok ? 'good' : 'bad');
      const cp = Number(first(v, 'checkpoints') || 0);
      verify.textContent = ok
        ? `The chain verifies: ${first(v, 'entries') ?? 0} entries, head at ${head}; ${cp} signed checkpoint${cp === 1 ? '' : 's'}${first(v, 'anchored') ? ', anchored outside the store' : ''}${Number(first(v, 'unanchored') || 0) ? `; the last ${first(v, 'unanchored')} entries are not anchored yet` : ''}.`
        : `The chain does NOT verify${p ? `: ${first(p, 'kind') || ''} at entry ${first(p, 'seq') ?? '?'}: ${first(p, 'detail') || ''}` : ''}.`;
    } catch (e) {
      if (e.status === 403 || e.status === 401) throw e;
      verify.className = 'verify bad';
      verify.textContent = `The chain could not be verified: ${e.message}`;
    }
    if (head > 0) {
      add(await fetchAfter(Math.max(0, head - page), page));
    } else {
      // No head known: read from the start.
      let after = 0;
      for (let i = 0; i < 50; i++) {
        const got = await fetchAfter(after, page);
        add(got);
        if (got.length < page) break;
        after = Math.max(...got.map(seqOf));
      }
    }
    more.addEventListener('click', async () => {
      const oldest = Math.min(...entries.map(seqOf));
      try { add(await fetchAfter(Math.max(0, oldest - 1 - page), Math.min(page, oldest - 1))); } catch (e) { ctx.showError(e); }
    });
  },

  async security(main, ctx) {
    const list = $('[data-list]', main);
    const load = async (since) => {
      const rep = await api('GET', '/security/report?since=' + enc(since));
      const offenders = items(val(rep, 'offenders') || [], 'offenders');
      $('#security-total', main).textContent = `${first(rep, 'failures') ?? 0} authentication failures since ${when(first(rep, 'since'))} (generated ${when(first(rep, 'generated'))}).`;
      const hours = Number.parseInt(since, 10) || 24;
      drawChart($('#security-chart', main), rep, { since: Date.parse(first(rep, 'since')) || Date.now() - hours * 3600e3 });
      list.replaceChildren(table('Top offenders', [{ label: 'Offender', get: offenderLabel }, col('Failures', 'failures'),
        col('By status', 'by_status'), col('By reason', 'by_reason'), colWhen('First seen', 'first_seen'), colWhen('Last seen', 'last_seen')], offenders));
    };
    onSubmit($('#security-form', main), ctx, (v) => load(v.since));
    await load('24h');
  },

  async operators(main, ctx) {
    const list = $('[data-list]', main);
    const load = async () => {
      const rows = items(await api('GET', '/operators'), 'operators');
      list.replaceChildren(table('Operators', [col('Name', 'name'), col('Id', 'id'), col('Role', 'role'),
        { label: 'Bots', get: (r) => text(first(r, 'bots')) || 'every bot' },
        { label: 'State', get: (r) => (first(r, 'disabled') ? 'disabled' : first(r, 'mfa') ? 'enrolled' : 'enrolling') + (when(first(r, 'locked_until')) ? ', locked until ' + when(first(r, 'locked_until')) : '') },
        colWhen('Created', 'created_at'), colWhen('Updated', 'updated_at')], rows,
      ctx.can('operators.manage') ? (r) => {
        const id = first(r, 'id');
        const name = first(r, 'name') || id;
        if (id === ctx.state.me.id) return [];
        const disabled = !!first(r, 'disabled');
        return [button(disabled ? 'Enable' : 'Disable', ctx, async () => {
          await api('PATCH', `/operators/${enc(id)}`, { disabled: !disabled });
          ctx.say(`Operator ${name} ${disabled ? 'enabled' : 'disabled'}.`);
          await load();
        }, { aria: `${disabled ? 'Enable' : 'Disable'} operator ${name}` }), button('Remove', ctx, async () => {
          await api('DELETE', `/operators/${enc(id)}`);
          ctx.say(`Operator ${name} removed.`);
          await load();
        }, { aria: `Remove operator ${name}`, confirm: `Remove operator ${name}? Their sessions and tokens end.` })];
      } : null));
    };
    const form = $('#operator-form', main);
    onSubmit(form, ctx, async (v) => {
      const body = { role: v.role, ttlHours: Number(v.ttl_hours) };
      if (lines(v.bots).length) body.bots = lines(v.bots);
      const data = await api('POST', '/operators', body);
      form.reset();
      await load();
      showOnce(main, `Enrollment code for the new ${v.role}${first(data, 'expires_at') ? ' (expires ' + when(first(data, 'expires_at')) + ')' : ''}`, secretsIn(data));
      ctx.say(`Invitation for a new ${v.role} made.`);
    });
    await load();
  },

  async tokens(main, ctx) {
    const list = $('[data-list]', main);
    const load = async () => {
      const rows = items(await api('GET', '/tokens'), 'tokens');
      list.replaceChildren(table('API tokens', [col('Name', 'name'), col('Id', 'id'), col('Role', 'role'),
        { label: 'Bots', get: (r) => text(first(r, 'bots')) || 'every bot' }, colWhen('Expires', 'expires_at'),
        colWhen('Last used', 'last_used_at'), colWhen('Revoked', 'revoked_at')], rows,
      (r) => {
        const id = first(r, 'id');
        if (first(r, 'revoked_at') && when(first(r, 'revoked_at'))) return [];
        return [button('Revoke', ctx, async () => {
          await api('DELETE', `/tokens/${enc(id)}`);
          ctx.say(`Token ${first(r, 'name') || id} revoked.`);
          await load();
        }, { aria: `Revoke token ${first(r, 'name') || id}`, confirm: `Revoke token ${first(r, 'name') || id}? Programs using it stop working.` })];
      }));
    };
    const role = $('#token-role', main);
    for (const o of [...role.options]) {
      const rank = ['owner', 'admin', 'operator', 'auditor'];
      if (rank.indexOf(o.value) < rank.indexOf(ctx.state.me.role)) o.remove();
    }
    const form = $('#token-form', main);
    onSubmit(form, ctx, async (v) => {
      const days = Number(v.days);
      const body = { name: v.name, role: v.role, expiresInDays: days };
      if (lines(v.bots).length) body.bots = lines(v.bots);
      const data = await api('POST', '/tokens', body);
      form.reset();
      await load();
      showOnce(main, `API token ${v.name}`, [['token', first(data, 'token')]]);
      ctx.say(`Token ${v.name} created.`);
    });
    await load();
  },

  async account(main, ctx) {
    const me = ctx.state.me;
    $('#account-who', main).textContent = `${me.name}, role ${me.role}.`;
    const pw = $('#password-form', main);
    onSubmit(pw, ctx, async (v) => {
      if (v.password !== v.password2) throw new Error('The two passwords differ.');
      await api('POST', '/me/password', { newPassword: v.password });
      pw.reset();
      ctx.say('Password changed.');
    });
    onSubmit($('#recovery-form', main), ctx, async () => {
      const data = await api('POST', '/me/recovery-codes', {});
      showOnce(main, 'New recovery codes', items(data, 'recovery_codes', 'codes').map((c, i) => [`recovery code ${i + 1}`, c]));
    });
    $('#signout', main).addEventListener('click', async () => {
      try { await api('DELETE', '/session'); } catch (e) { ctx.showError(e); return; }
      ctx.setMe(null);
      ctx.go('/signin');
    });
  },
};
