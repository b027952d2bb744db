package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
)

// botPublicURL is admin.PublicURL in the command line's words (its flags).
func botPublicURL(flag, configured string) (string, error) {
	if flag == "" && configured == "" {
		return "", errors.New("no public URL for the bot's settings: give Parley's public base URL with --public-url https://chat.example.com, or the server's configuration with --config parley.yaml (its public_url), or set PARLEY_PUBLIC_URL; nothing was changed")
	}
	u, err := admin.PublicURL(flag, configured)
	if err != nil {
		return "", fmt.Errorf("--public-url %q must be a base URL such as https://chat.example.com", cmp.Or(flag, configured))
	}
	return u, nil
}

// botbuilderSnippet wires botbuilder 4.23.x to Parley's token service
// (MSAL needs the gateway host as a known authority).
const botbuilderSnippet = `const { ConfidentialClientApplication } = require('@azure/msal-node');
const { MsalServiceClientCredentialsFactory } = require('botframework-connector');
const { CloudAdapter, ConfigurationBotFrameworkAuthentication } = require('botbuilder');
const e = process.env;
const cca = new ConfidentialClientApplication({ auth: { clientId: e.MicrosoftAppId,
  clientSecret: e.MicrosoftAppPassword, authority: e.ToChannelFromBotLoginUrl,
  knownAuthorities: [new URL(e.ToChannelFromBotLoginUrl).host] } });
const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(
  e, new MsalServiceClientCredentialsFactory(e.MicrosoftAppId, cca)));
`

func botCreatedText(b store.Bot, settings []botauth.Setting) string {
	var t strings.Builder
	fmt.Fprintf(&t, "bot %s created (%s -> %s)\n\n", b.ID, b.Name, connector.RedactURL(b.Endpoint))
	fmt.Fprintf(&t, "Settings for the bot (environment variables or .env); the client secret is shown once,\nParley keeps only its hash:\n\n")
	loginURL := ""
	for _, st := range settings {
		fmt.Fprintf(&t, "%s=%s\n", st.Name, st.Value)
		if st.Name == "ToChannelFromBotLoginUrl" {
			loginURL = st.Value
		}
	}
	fmt.Fprintf(&t, "\nIn the bot (botbuilder 4.23.x), build the adapter like this:\n\n%s", botbuilderSnippet)
	if strings.HasPrefix(loginURL, "http://") {
		fmt.Fprintf(&t, "\nNote: MSAL only talks to an https authority; serve Parley over TLS (with NODE_EXTRA_CA_CERTS for a private CA) for a real bot.\n")
	}
	return t.String()
}

func (a *app) botSecretCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Manage a bot's client secrets"}
	cmd.AddCommand(a.secretRegenCmd(secretKind{
		short: "Replace one of a bot's two client secrets; the other keeps working", flag: "bot", help: "bot app id",
		secretKey: "clientSecret", label: "client secret",
		set: func(ctx context.Context, st store.Store, id string, slot int, secret string) error {
			b, err := st.GetBot(ctx, id)
			if err != nil {
				return err
			}
			if b.InsecureNoAuth {
				return fmt.Errorf("the bot is registered without authentication; it has no client secrets. Switch it to authentication with 'parley bot update %s --auth' (prints a new client secret)", id)
			}
			return st.SetBotSecret(ctx, id, slot, botauth.HashClientSecret(secret))
		},
	}))
	return cmd
}
