// A Microsoft 365 Agents SDK agent (@microsoft/agents-hosting 1.8.x:
// AgentApplication + CloudAdapter, express), UNMODIFIED for Parley: it is
// configured only by the SDK's own environment variables, exactly the
// block `parley bot create` prints (agentsSdkSettings in its --json
// output). Nothing below names Parley.
const express = require('express');
const { AgentApplication, CloudAdapter, MemoryStorage, MessageFactory, CardFactory, authorizeJWT, loadAuthConfigFromEnv } = require('@microsoft/agents-hosting');

const authConfig = loadAuthConfigFromEnv();
const adapter = new CloudAdapter(authConfig);
// startTypingTimer: typing activities (replies to the user's message)
// while a turn runs, so the channel sees the turn is alive.
// longRunningMessages (recommended in production, LONG_RUNNING_MESSAGES=true
// here): the SDK answers the channel's POST at once and runs the turn
// proactively, so no turn outlasts a delivery attempt.
const app = new AgentApplication({ adapter, storage: new MemoryStorage(), startTypingTimer: true,
  longRunningMessages: process.env.LONG_RUNNING_MESSAGES === 'true' });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

app.onConversationUpdate('membersAdded', async (context) => {
  for (const m of context.activity.membersAdded || []) {
    if (m.id !== context.activity.recipient.id) {
      await context.sendActivity(`Hello ${m.id}, I am an Agents SDK agent behind Parley. Try: card, stream, proactive, slow.`);
    }
  }
});

app.onMessage('card', async (context) => {
  await context.sendActivity(MessageFactory.attachment(CardFactory.heroCard('Parley', 'A hero card from an Agents SDK agent', [], ['Say hi'])));
});

// A reply streamed in five chunks (StreamingResponse: an informative
// update, growing text chunks, then the final message).
app.onMessage('stream', async (context) => {
  const stream = context.streamingResponse;
  stream.queueInformativeUpdate('thinking…');
  for (const word of ['Streamed ', 'replies ', 'arrive ', 'in ', 'chunks.']) {
    await sleep(800); // the SDK sends a chunk at most every 500 ms on Direct Line
    stream.queueTextChunk(word);
  }
  await stream.endStream();
});

app.onMessage('proactive', async (context) => {
  const reference = context.activity.getConversationReference();
  await context.sendActivity('a proactive message follows');
  setTimeout(() => {
    adapter.continueConversation(authConfig.clientId, reference, async (ctx) => {
      await ctx.sendActivity('proactive hello');
    }).catch((err) => console.error('proactive failed:', err));
  }, 200);
});

// A turn longer than Parley's per-attempt delivery timeout: the inbound
// POST is answered only when the turn ends (no longRunningMessages).
app.onMessage(/^slow \d+$/, async (context) => {
  const ms = Math.min(Number(context.activity.text.split(' ')[1]), 60000);
  await sleep(ms);
  await context.sendActivity(`slow reply after ${ms} ms (${context.activity.id})`);
});

app.onActivity('message', async (context) => {
  const a = context.activity;
  await context.sendActivity(`agent heard: ${a.text} (from ${a.from.id})${a.deliveryMode ? ` deliveryMode=${a.deliveryMode}` : ''}`);
});

app.onError(async (context, error) => {
  console.error('turn error:', error);
});

const server = express();
server.use(express.json({ limit: '1mb' }));
server.use(authorizeJWT(authConfig));
server.post('/api/messages', (req, res) => adapter.process(req, res, (context) => app.run(context)).catch((err) => {
  console.error('process failed:', err);
  if (!res.headersSent) res.status(500).end();
}));
const port = Number(process.env.PORT || 3978);
server.listen(port, '127.0.0.1', () => console.log(`agent listening on http://127.0.0.1:${port}/api/messages`));
