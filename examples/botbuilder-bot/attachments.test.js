// node --test: the bot downloads only Parley's own attachment links.
const test = require('node:test');
const assert = require('node:assert');
const { isParleyAttachmentUrl, describeAttachment } = require('./attachments');

const svc = 'https://parley.example/';
const own = 'https://parley.example/v3/attachments/abc_DEF-1/views/original?t=cap';

test('Parley links and nothing else', () => {
  assert.ok(isParleyAttachmentUrl(svc, own));
  assert.ok(isParleyAttachmentUrl('https://parley.example/base/', 'https://parley.example/base/v3/attachments/x/views/original?t=c'));
  for (const bad of [
    'https://parley.example/metrics',
    'http://169.254.169.254/latest/meta-data/',
    'http://parley.example/v3/attachments/abc/views/original?t=cap',
    'https://parley.example:8443/v3/attachments/abc/views/original?t=cap',
    'https://evil.example/v3/attachments/abc/views/original?t=cap',
    'https://u:p@parley.example/v3/attachments/abc/views/original?t=cap',
    'https://parley.example/v3/attachments/../../metrics?t=cap',
    'https://parley.example/v3/attachments/a%2F..%2Fmetrics/views/original?t=cap',
    'https://parley.example/v3/attachments/abc/views/original',
    'https://parley.example/v3/attachments/abc/views/original/x?t=cap',
    'data:text/plain,hi',
    'not a url',
  ]) {
    assert.equal(isParleyAttachmentUrl(svc, bad), false, bad);
  }
});

test('describeAttachment fetches only Parley links, without redirects', async () => {
  const fetched = [];
  const fake = async (u, opts) => {
    fetched.push([u, opts.redirect]);
    return { status: 200, arrayBuffer: async () => new TextEncoder().encode('hello').buffer };
  };
  assert.match(await describeAttachment(svc, { name: 'm', contentType: 'text/plain', contentUrl: 'https://parley.example/metrics' }, fake), /only download files/);
  assert.match(await describeAttachment(svc, { name: 'm', contentType: 'text/plain', contentUrl: own, parleyUntrusted: true }, fake), /only download files/);
  assert.deepEqual(fetched, []);
  assert.equal(await describeAttachment(svc, { name: 'a.txt', contentType: 'text/plain', contentUrl: own }, fake), 'You sent a.txt (text/plain, 5 bytes).');
  assert.deepEqual(fetched, [[own, 'manual']]);
});
