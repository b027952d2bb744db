package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// newAppID is a bot's app id: a random UUID, the shape the SDKs expect.
func newAppID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random app id: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func botPublicURL(flag, configured string) (string, error) {
	u := flag
	if u == "" {
		u = configured
	}
	if u == "" {
		u = "http://127.0.0.1:8080"
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" {
		return "", fmt.Errorf("--public-url %q must be a base URL such as https://chat.example.com", u)
	}
	return strings.TrimRight(u, "/"), nil
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
				return errors.New("the bot is registered without authentication; it has no client secrets")
			}
			return st.SetBotSecret(ctx, id, slot, botauth.HashClientSecret(secret))
		},
	}))
	return cmd
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Bot authentication signing keys (channel tokens and the bots' token service)"}
	var lf storeFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys and their state",
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openAdminStore(cmd.Context(), lf.config, lf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			type keyJSON struct {
				Purpose     string     `json:"purpose"`
				Kid         string     `json:"kid"`
				State       string     `json:"state"`
				CreatedAt   time.Time  `json:"createdAt"`
				ActivatedAt *time.Time `json:"activatedAt,omitempty"`
				RetiredAt   *time.Time `json:"retiredAt,omitempty"`
			}
			out := []keyJSON{}
			var text strings.Builder
			for _, p := range []string{botauth.PurposeChannel, botauth.PurposeSTS} {
				keys, err := st.ListKeys(cmd.Context(), p)
				if err != nil {
					return err
				}
				for _, k := range keys {
					j := keyJSON{Purpose: p, Kid: k.ID, State: "next", CreatedAt: k.CreatedAt}
					if !k.ActivatedAt.IsZero() {
						t := k.ActivatedAt
						j.ActivatedAt, j.State = &t, "signing"
					}
					if !k.RetiredAt.IsZero() {
						t := k.RetiredAt
						j.RetiredAt, j.State = &t, "retired"
					}
					out = append(out, j)
					fmt.Fprintf(&text, "%s\t%s\t%s\tcreated %s\n", p, k.ID, j.State, k.CreatedAt.Format(time.RFC3339))
				}
			}
			return a.print(lf.json, out, text.String())
		},
	}
	lf.add(list)

	var rf storeFlags
	var purpose string
	var force, purge bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Sign with the next key (published since the last rotation), retire the current one, publish a new next key",
		Long: "Rotation switches signing to the key that has been published as 'next' since the previous rotation,\n" +
			"so bots already have it. Retired keys stay published (and accepted) for 25 hours, then disappear.\n" +
			"A running Parley picks the change up within 30 seconds. Without --force, rotation is refused while the\n" +
			"next key is less than 24 hours old (a bot refreshes its key cache every 24 hours).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var purposes []string
			switch purpose {
			case "channel":
				purposes = []string{botauth.PurposeChannel}
			case "sts":
				purposes = []string{botauth.PurposeSTS}
			case "all":
				purposes = []string{botauth.PurposeChannel, botauth.PurposeSTS}
			default:
				return errors.New("--purpose must be channel, sts or all")
			}
			cfg, st, err := a.openAdmin(cmd.Context(), rf.config, rf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			master, err := keyring.LoadOrCreateFile(cfg.MasterKeyFile)
			if err != nil {
				return fmt.Errorf("master key: %w", err)
			}
			kr, err := keyring.New(master)
			if err != nil {
				return err
			}
			res := map[string]string{}
			var text strings.Builder
			for _, p := range purposes {
				// Proves the master key opens the keys (and creates them on
				// a store the server has not started on yet).
				if _, err := botauth.LoadKeySet(cmd.Context(), st, kr, p); err != nil {
					return err
				}
				kid, err := botauth.Rotate(cmd.Context(), st, kr, p, time.Now().UTC(), force, purge)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				res[p] = kid
				fmt.Fprintf(&text, "%s: now signing with %s\n", p, kid)
			}
			return a.print(rf.json, res, text.String())
		},
	}
	rf.add(rotate)
	rotate.Flags().StringVar(&purpose, "purpose", "all", "which keys: channel, sts or all")
	rotate.Flags().BoolVar(&force, "force", false, "rotate even if the next key is younger than 24 hours (bots that cached keys before it appeared refetch on the unknown kid, at most once an hour)")
	rotate.Flags().BoolVar(&purge, "purge-retired", false, "stop publishing and accepting every retired key at once (for a key that may be compromised)")
	cmd.AddCommand(list, rotate)
	return cmd
}
