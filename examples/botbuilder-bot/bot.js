// The bot's behaviour: echo, plus commands that exercise the Bot Connector
// API through Parley (update, delete, members, attachment upload, a
// proactive message).
const { ActivityHandler, TurnContext, MessageFactory, CardFactory } = require('botbuilder');
const { describeAttachment } = require('./attachments');

class ExampleBot extends ActivityHandler {
  constructor(adapter, appId) {
    super();
    this.onMembersAdded(async (context, next) => {
      for (const m of context.activity.membersAdded || []) {
        if (m.id !== context.activity.recipient.id) {
          await context.sendActivity(`Hello ${m.id}, I am a botbuilder bot behind Parley. Try: update, delete, members, upload, proactive, card.`);
        }
      }
      await next();
    });

    this.onMessage(async (context, next) => {
      const text = (context.activity.text || '').trim();
      const conversationId = context.activity.conversation.id;
      const connector = () => context.turnState.get(context.adapter.ConnectorClientKey);
      switch (text) {
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
}

module.exports = { ExampleBot };
