// The bot's behaviour: echo, plus commands that exercise the Bot Connector
// API through Parley (update, delete, members, attachment upload, a
// proactive message, a streamed reply), and a sign-in (login: botbuilder's
// OAuthPrompt with the OAuth connection OAUTH_CONNECTION, then token and
// logout through the bot's UserTokenClient).
const { ActivityHandler, TurnContext, MessageFactory, CardFactory, ConversationState, MemoryStorage } = require('botbuilder');
const { DialogSet, DialogTurnStatus, OAuthPrompt, WaterfallDialog } = require('botbuilder-dialogs');
const { describeAttachment } = require('./attachments');

class ExampleBot extends ActivityHandler {
  constructor(adapter, appId) {
    super();
    // Sign-in: an OAuthPrompt in a waterfall, state in memory.
    const connectionName = process.env.OAUTH_CONNECTION || 'idp';
    this.conversationState = new ConversationState(new MemoryStorage());
    const dialogs = new DialogSet(this.conversationState.createProperty('dialogState'));
    dialogs.add(new OAuthPrompt('oauth', { connectionName, title: 'Sign in', text: 'Please sign in to continue', timeout: 300000 }));
    dialogs.add(new WaterfallDialog('login', [
      (step) => step.beginDialog('oauth'),
      async (step) => {
        if (!step.result?.token) {
          await step.context.sendActivity('sign-in did not complete');
        } else {
          await step.context.sendActivity(`signed in as ${await whoIs(step.result.token)}`);
        }
        return step.endDialog();
      },
    ]));
    const userTokens = (context) => context.turnState.get(context.adapter.UserTokenClientKey);
    // A token response (sign-in without a magic code) continues the prompt.
    this.onTokenResponseEvent(async (context, next) => {
      const dc = await dialogs.createContext(context);
      await dc.continueDialog();
      await next();
    });

    this.onMembersAdded(async (context, next) => {
      for (const m of context.activity.membersAdded || []) {
        if (m.id !== context.activity.recipient.id) {
          await context.sendActivity(`Hello ${m.id}, I am a botbuilder bot behind Parley. Try: update, delete, members, upload, proactive, card, stream, login, token, logout.`);
        }
      }
      await next();
    });

    this.onMessage(async (context, next) => {
      const text = (context.activity.text || '').trim();
      const conversationId = context.activity.conversation.id;
      const connector = () => context.turnState.get(context.adapter.ConnectorClientKey);
      // A sign-in in progress reads the message (a magic code).
      const dc = await dialogs.createContext(context);
      if (dc.activeDialog) {
        const r = await dc.continueDialog();
        if (r.status !== DialogTurnStatus.empty) { await next(); return; }
      }
      const { from, channelId } = context.activity;
      switch (text) {
        case 'login': {
          await dc.beginDialog('login');
          break;
        }
        case 'token': {
          const t = await userTokens(context).getUserToken(from.id, connectionName, channelId);
          await context.sendActivity(t?.token ? `token: signed in as ${await whoIs(t.token)}` : 'token: none');
          break;
        }
        case 'logout': {
          await userTokens(context).signOutUser(from.id, connectionName, channelId);
          await context.sendActivity('signed out');
          break;
        }
        case 'update': {
          const sent = await context.sendActivity('draft message');
          await context.updateActivity({ type: 'message', id: sent.id, text: 'updated message' });
          break;
        }
        case 'delete': {
          const sent = await context.sendActivity('this message will be deleted');
          await context.deleteActivity(sent.id);
          await context.sendActivity('deleted a message');
          break;
        }
        case 'members': {
          const members = await connector().conversations.getConversationMembers(conversationId);
          await context.sendActivity(`members: ${members.map((m) => m.id).sort().join(', ')}`);
          break;
        }
        case 'upload': {
          const data = Buffer.from('hello from the bot\n');
          const up = await connector().conversations.uploadAttachment(conversationId, {
            type: 'text/plain', name: 'hello.txt', originalBase64: data, thumbnailBase64: data,
          });
          const info = await connector().attachments.getAttachmentInfo(up.id);
          await context.sendActivity(`uploaded ${info.name} (${info.views[0].size} bytes)`);
          break;
        }
        case 'proactive': {
          const ref = TurnContext.getConversationReference(context.activity);
          await context.sendActivity('a proactive message follows');
          setTimeout(() => {
            adapter.continueConversationAsync(appId, ref, async (ctx) => {
              await ctx.sendActivity('proactive hello');
            }).catch((err) => console.error('proactive failed:', err));
          }, 200);
          break;
        }
        case 'card': {
          await context.sendActivity({ type: 'typing' });
          await context.sendActivity(MessageFactory.attachment(CardFactory.heroCard('Parley', 'A hero card from a botbuilder bot', [], ['Say hi'])));
          break;
        }
        case 'stream': {
          await streamReply(context, STORY);
          break;
        }
        default: {
          // Files: only Parley's own download links are fetched (attachments.js).
          const parts = [];
          for (const att of context.activity.attachments || []) {
            parts.push(await describeAttachment(context.activity.serviceUrl, att));
          }
          await context.sendActivity([`bot heard: ${text} (from ${context.activity.from.id})`, ...parts].join('\n\n'));
        }
      }
      await next();
    });
  }

  async run(context) {
    await super.run(context);
    await this.conversationState.saveChanges(context, false);
  }
}

// whoIs names the token's user: the subject the provider's userinfo
// endpoint (OAUTH_USERINFO_URL) answers, or "someone" without one.
async function whoIs(token) {
  const url = process.env.OAUTH_USERINFO_URL;
  if (!url) return 'someone';
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) return `nobody (userinfo answered ${res.status})`;
  return (await res.json()).sub;
}

// The text the stream command sends, one word group per chunk.
const STORY = ['Streamed replies', 'arrive in Web Chat', 'a few words at a time,', 'through Parley,', 'and end as one message.'];

// The pause between chunks (Web Chat's livestreaming needs none; a pause
// lets a person, or a test, watch the text grow).
const CHUNK_MS = Number(process.env.STREAM_CHUNK_MS || 700);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// streamReply sends a reply in Web Chat's livestreaming form (channelData):
// an informative update, typing activities that each carry the whole text
// so far, then the final message. The first activity's id is the stream's
// id, which every later one names; Parley keeps only the final message in
// the conversation's history.
async function streamReply(context, parts) {
  let sequence = 1;
  const first = await context.sendActivity({
    type: 'typing', text: 'Thinking…', channelData: { streamType: 'informative', streamSequence: sequence },
  });
  const streamId = first.id;
  let text = '';
  for (const part of parts) {
    await sleep(CHUNK_MS);
    text = text ? `${text} ${part}` : part;
    sequence += 1;
    await context.sendActivity({ type: 'typing', text, channelData: { streamType: 'streaming', streamSequence: sequence, streamId } });
  }
  sequence += 1;
  await context.sendActivity({ type: 'message', text, channelData: { streamType: 'final', streamSequence: sequence, streamId } });
}

module.exports = { ExampleBot, streamReply, STORY };
