// The admin API client: same-origin requests with the session cookie
// (HttpOnly: this script never sees it) and, on every state-changing
// request, the X-CSRF-Token the session gives.

export const PREFIX = '/admin/v1';

let csrf = '';

/** An admin API error: the HTTP status and the server's {error:{code,message}}. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || ('HTTP ' + status));
    this.status = status;
    this.code = code || '';
  }
}

/** Remembers the CSRF token from a session answer. */
export function setCSRF(token) { csrf = token || ''; }

let expiredHook = null;
/** Sets what runs when a signed-in request is answered 401 (the session ended). */
export function onExpired(fn) { expiredHook = fn; }

// Requests whose 401 means a wrong credential, not an ended session.
const credentialRoutes = new Set(['POST /session', 'POST /session/reauth', 'POST /enroll', 'POST /enroll/totp', 'GET /session']);

let reauthHook = null;
/** Sets what runs when the server asks to re-authenticate (returns true when done). */
export function onReauth(fn) { reauthHook = fn; }

/**
 * Calls the admin API. body, when given, is sent as JSON. Resolves with the
 * parsed JSON answer (null when empty); rejects with ApiError.
 */
export async function api(method, path, body, { retried = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (method !== 'GET' && method !== 'HEAD') {
    if (csrf) headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(PREFIX + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'The server could not be reached: ' + e.message);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    const e = new ApiError(res.status, err.code || '', err.message || (res.status + ' ' + res.statusText + (text && !data ? ': ' + text.slice(0, 200) : '')));
    // A change made whose audit event could not be recorded: what it
    // made (a secret shown once) comes beside the error.
    if (e.code === 'unrecorded' && data && data.result) e.result = data.result;
    if (res.status === 401 && expiredHook && !credentialRoutes.has(method + ' ' + path.split('?')[0])) expiredHook(e);
    if (e.code === 'reauth_required' && !retried && reauthHook && await reauthHook()) {
      return api(method, path, body, { retried: true });
    }
    throw e;
  }
  return data;
}

/** Reads a field by its snake_case name, also trying camelCase and Go's PascalCase (BotID). */
export function val(o, name) {
  if (o == null) return undefined;
  if (name in o) return o[name];
  const camel = name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  if (camel in o) return o[camel];
  const pascal = camel.charAt(0).toUpperCase() + camel.slice(1);
  if (pascal in o) return o[pascal];
  const goName = pascal.replace(/Id$/, 'ID').replace(/Url$/, 'URL').replace(/Ua$/, 'UA');
  if (goName in o) return o[goName];
  return undefined;
}

/** The first of several names that o has. */
export function first(o, ...names) {
  for (const n of names) {
    const v = val(o, n);
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return undefined;
}

/** The list in an answer: the answer itself, or its named list, or its first array. */
export function items(data, ...names) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== 'object') return [];
  for (const n of [...names, 'items', 'data', 'results', 'entries']) {
    if (Array.isArray(val(data, n))) return val(data, n);
  }
  for (const v of Object.values(data)) if (Array.isArray(v)) return v;
  return [];
}
