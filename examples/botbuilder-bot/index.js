// A Bot Framework bot built with the unmodified botbuilder SDK (4.23.x,
// CloudAdapter), configured for Parley with only the settings that
// `parley bot create` prints. Everything Parley-specific is the eight-line
// credential block below (MSAL must be told that Parley is a known
// authority); the rest is an ordinary bot.
const http = require('node:http');
const { ConfidentialClientApplication } = require('@azure/msal-node');
const { MsalServiceClientCredentialsFactory } = require('botframework-connector');
const { CloudAdapter, ConfigurationBotFrameworkAuthentication } = require('botbuilder');
const { ExampleBot } = require('./bot');

const e = process.env;
for (const k of ['MicrosoftAppId', 'MicrosoftAppPassword', 'ToBotFromChannelOpenIdMetadataUrl', 'ToBotFromChannelTokenIssuer',
  'ToChannelFromBotLoginUrl', 'ToChannelFromBotOAuthScope', 'OAuthUrl']) {
  if (!e[k]) { console.error(`missing setting ${k} (see 'parley bot create')`); process.exit(2); }
}
const cca = new ConfidentialClientApplication({ auth: { clientId: e.MicrosoftAppId,
  clientSecret: e.MicrosoftAppPassword, authority: e.ToChannelFromBotLoginUrl,
  knownAuthorities: [new URL(e.ToChannelFromBotLoginUrl).host] } });
const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(
  e, new MsalServiceClientCredentialsFactory(e.MicrosoftAppId, cca)));

adapter.onTurnError = async (context, error) => {
  console.error('turn error:', error);
  await context.sendActivity('Sorry, the bot hit an error.');
};

const bot = new ExampleBot(adapter, e.MicrosoftAppId);

// Plain node:http: parse the JSON body and hand botbuilder the small
// request/response shape it expects (what express or restify would give).
const server = http.createServer((req, res) => {
  if (req.url !== '/api/messages') { res.statusCode = 404; res.end(); return; }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { size += c.length; if (size > 1 << 20) req.destroy(); else chunks.push(c); });
  req.on('end', () => {
    try { req.body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { req.body = undefined; }
    const response = {
      socket: res.socket,
      status(code) { res.statusCode = code; return response; },
      header(name, value) { res.setHeader(name, value); return response; },
      send(body) { if (body !== undefined) { res.setHeader('Content-Type', 'application/json'); res.write(typeof body === 'string' ? body : JSON.stringify(body)); } return response; },
      end() { res.end(); return response; },
    };
    adapter.process(req, response, (context) => bot.run(context)).catch((err) => {
      console.error('process failed:', err);
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  });
});

const port = Number(e.PORT || 3978);
server.listen(port, '127.0.0.1', () => console.log(`bot listening on http://127.0.0.1:${port}/api/messages`));
