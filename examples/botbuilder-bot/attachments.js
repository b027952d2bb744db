// Attachments from users: download only what Parley stored.
//
// A file a user sends through Web Chat's upload button reaches the bot as
// Parley's own download link, <serviceUrl>v3/attachments/{id}/views/{view}?t=…
// Any other URL in an attachment was typed by the client and may point
// anywhere (the gateway's /metrics, a cloud metadata address, your
// intranet); Parley refuses such links by default, or passes them marked
// "parleyUntrusted": true when the site allows them. Never fetch those.

const ID = /^[A-Za-z0-9_-]{1,64}$/;

function isParleyAttachmentUrl(serviceUrl, link) {
  let base;
  let u;
  try {
    base = new URL(serviceUrl);
    u = new URL(link);
  } catch {
    return false;
  }
  if (!['https:', 'http:'].includes(base.protocol)) return false;
  if (u.protocol !== base.protocol || u.host !== base.host || u.username || u.password || u.hash) return false;
  const prefix = base.pathname.replace(/\/+$/, '') + '/v3/attachments/';
  if (!u.pathname.startsWith(prefix)) return false;
  const seg = u.pathname.slice(prefix.length).split('/');
  return seg.length === 3 && ID.test(seg[0]) && seg[1] === 'views' && ID.test(seg[2]) && !!u.searchParams.get('t');
}

// describeAttachment says what the user sent, downloading it only when it
// is Parley's own link (no redirects followed).
async function describeAttachment(serviceUrl, att, fetchImpl = fetch) {
  const what = `${att.name || 'a file'} (${att.contentType || 'unknown type'})`;
  if (!att.contentUrl) return `You sent ${what}.`;
  if (att.parleyUntrusted || !isParleyAttachmentUrl(serviceUrl, att.contentUrl)) {
    return `You sent a link to ${what}; I only download files sent through the upload button.`;
  }
  try {
    const res = await fetchImpl(att.contentUrl, { redirect: 'manual' });
    if (res.status !== 200) return `You sent ${what}, but fetching it gave ${res.status}.`;
    const body = Buffer.from(await res.arrayBuffer());
    return `You sent ${att.name} (${att.contentType}, ${body.length} bytes).`;
  } catch {
    return `You sent ${what}, but I could not fetch it.`;
  }
}

module.exports = { isParleyAttachmentUrl, describeAttachment };
