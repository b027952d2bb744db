// The unmodified npm botframework-directlinejs, driven from Node against
// `parley demo`: token from the demo's own token endpoint (seed 004 flow),
// start, send, echo over the WebSocket, and a server restart across which
// the client reconnects with its watermark, losing and duplicating nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { freePort, tempDir, startDemo, waitFor } from './lib.mjs';

const require = createRequire(import.meta.url);
// DirectLineJS needs the browser's XMLHttpRequest and WebSocket.
globalThis.XMLHttpRequest = require('xhr2');
globalThis.WebSocket = require('ws');
const { DirectLine, ConnectionStatus } = require('botframework-directlinejs');

async function demoToken(page) {
  const res = await fetch(page + 'demo/token', { method: 'POST' });
  assert.equal(res.status, 200);
  return res.json();
}

function post(dl, activity) {
  return new Promise((resolve, reject) => {
    dl.postActivity(activity).subscribe({ next: resolve, error: reject });
  });
}

test('DirectLineJS: start, send, echo, reconnect across a restart', { timeout: 120000 }, async () => {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const data = tempDir();
  let demo = await startDemo({ listen, data });
  const { token, userId } = await demoToken(demo.info.page);
  assert.match(userId, /^dl_/);

  const dl = new DirectLine({ token, domain: demo.info.directline, webSocket: true });
  const received = [];
  const statuses = [];
  dl.connectionStatus$.subscribe((s) => statuses.push(s));
  const t0 = Date.now();
  const trace = [];
  dl.connectionStatus$.subscribe((s) => trace.push(`${Date.now() - t0}ms status ${s}`));
  dl.activity$.subscribe({
    next: (a) => received.push(a),
    error: (e) => trace.push(`${Date.now() - t0}ms activity$ error: ${e.message}`),
  });

  await waitFor('the welcome message', () => received.find((a) => a.from.role === 'bot' && /bound you to user id/.test(a.text)));
  const welcome = received.find((a) => /bound you to user id/.test(a.text));
  assert.ok(welcome.text.includes(userId), 'the bot saw the bound user id');

  // The client tries to speak as someone else; the gateway rewrites it.
  const id1 = await post(dl, { type: 'message', from: { id: 'dl_impostor', name: 'x' }, text: 'hello one', channelData: { clientActivityID: 'c-1' } });
  assert.match(id1, /\|\d{7}$/);
  const echo1 = await waitFor('echo of message one', () => received.find((a) => a.id === id1));
  assert.equal(echo1.from.id, userId);
  assert.equal(echo1.channelData.clientActivityID, 'c-1');
  await waitFor('reply to one', () => received.find((a) => a.replyToId === id1 && a.text.startsWith('You said: hello one')));
  const reply1 = received.find((a) => a.replyToId === id1);
  assert.ok(reply1.text.includes(`(from ${userId})`), 'the bot received the bound id, not the impostor');

  trace.push(`${Date.now() - t0}ms restarting`);
  // Restart the gateway on the same address and data.
  await demo.stop('SIGTERM');
  demo = await startDemo({ listen, data });
  // DirectLineJS notices the closed socket, waits 3-15 s, then reconnects
  // with GET /conversations/{id}?watermark=… and a new stream URL.
  trace.push(`${Date.now() - t0}ms restarted`);

  await waitFor('the client back online', () => statuses.length >= 2 && statuses[statuses.length - 1] === ConnectionStatus.Online, 45000);
  let id2;
  await waitFor('a post after the restart', async () => {
    try {
      id2 = await post(dl, { type: 'message', from: { id: userId }, text: 'hello two' });
      return id2 !== 'retry';
    } catch { return false; }
  }, 45000);
  await waitFor('reply to two', () => received.find((a) => a.replyToId === id2 && a.text.startsWith('You said: hello two')), 30000);

  // Every activity exactly once, in order, nothing lost.
  const ids = received.map((a) => a.id);
  assert.equal(new Set(ids).size, ids.length, 'duplicate activities: ' + ids.join(','));
  const seqs = ids.map((x) => Number(x.split('|')[1]));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'out of order');
  for (const want of [id1, id2]) assert.ok(ids.includes(want), `${want} missing`);
  assert.ok(!statuses.includes(ConnectionStatus.ExpiredToken) && !statuses.includes(ConnectionStatus.FailedToConnect), 'statuses ' + statuses);

  assert.ok(!trace.some((l) => l.includes('error')), 'stream errored:\n' + trace.join('\n'));
  dl.end(); // DirectLineJS then errors activity$ with "conversation ended" by design
  await demo.stop();
  const logs = demo.logs();
  assert.ok(!logs.includes(token), 'token in logs');
  assert.ok(!logs.includes('hello two'), 'message text in logs');
});
