package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/usertoken"
)

// oauthConnJSON is the service layer's shape: never the secret.
type oauthConnJSON = admin.OAuthConnection

func (a *app) oauthCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "oauth", Short: "User sign-in for bots: OAuth connections to identity providers"}
	conn := &cobra.Command{
		Use:   "connection",
		Short: "Manage a bot's OAuth connections (the connectionName of its OAuthPrompt)",
		Long: "A connection maps a name, which the bot's OAuthPrompt uses, to an identity provider:\n" +
			"  oidc    OpenID Connect, endpoints discovered from --issuer\n" +
			"  oauth2  generic OAuth 2.0, --auth-url and --token-url\n" +
			"  github  GitHub (OAuth app)\n" +
			"  entra   Microsoft Entra ID, --tenant\n" +
			"Register Parley's redirect URI (printed by create and list) at the provider.\n" +
			"The client secret is read from a file (--client-secret-file PATH, or - for stdin), never from\n" +
			"the command line (arguments are visible to every local user and end up in shell history). It is\n" +
			"stored encrypted under the bot's data key and never printed.",
	}
	conn.AddCommand(a.oauthCreateCmd(), a.oauthListCmd(), a.oauthUpdateCmd(), a.oauthDeleteCmd())
	cmd.AddCommand(conn)
	return cmd
}

// connFlags are the fields create and update take.
type connFlags struct {
	sf                                  storeFlags
	bot, name, provider, issuer         string
	authURL, tokenURL, tenant, clientID string
	secretFile                          string
	scopes                              []string
	maxLogin                            time.Duration
}

func (f *connFlags) add(cmd *cobra.Command) {
	f.sf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.bot, "bot", "", "the bot's app id (parley bot list)")
	fl.StringVar(&f.name, "name", "", "connection name, as the bot's OAuthPrompt names it (letters, digits, ._-)")
	fl.StringVar(&f.provider, "provider", "", "oidc, oauth2, github or entra")
	fl.StringVar(&f.issuer, "issuer", "", "oidc: the issuer URL (discovery at ISSUER/.well-known/openid-configuration)")
	fl.StringVar(&f.authURL, "auth-url", "", "oauth2: the authorization endpoint")
	fl.StringVar(&f.tokenURL, "token-url", "", "oauth2: the token endpoint")
	fl.StringVar(&f.tenant, "tenant", "", "entra: the tenant id or domain")
	fl.StringVar(&f.clientID, "client-id", "", "the client id registered at the provider")
	fl.StringVar(&f.secretFile, "client-secret-file", "", "file holding the client secret, or - to read it from stdin (never given as an argument)")
	fl.StringSliceVar(&f.scopes, "scopes", nil, "scopes to request, comma-separated (e.g. openid,profile,offline_access)")
	fl.DurationVar(&f.maxLogin, "max-login", usertoken.DefaultMaxLogin, "how long a user stays signed in (the token is deleted after it, refresh tokens or not)")
	_ = cmd.MarkFlagRequired("bot")
	_ = cmd.MarkFlagRequired("name")
}

// readSecret reads the client secret from a file or stdin: one line,
// its end trimmed.
func (a *app) readSecret(path string) (string, error) {
	var r io.Reader
	if path == "-" {
		if a.stdin == nil {
			return "", errors.New("--client-secret-file -: no stdin to read the secret from")
		}
		r = a.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("read client secret: %w (give a readable file, or - for stdin)", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 4097))
	if err != nil {
		return "", fmt.Errorf("read client secret: %w", err)
	}
	if len(b) > 4096 {
		return "", errors.New("the client secret file is larger than 4 KiB: give a file holding only the secret")
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", errors.New("the client secret file must hold the secret alone, on one line")
	}
	return s, nil
}

func (a *app) oauthCreateCmd() *cobra.Command {
	var f connFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Add an OAuth connection to a bot",
		Example: "  parley oauth connection create --bot APPID --name github --provider github --client-id Iv1.abc --client-secret-file gh.secret --scopes read:user\n" +
			"  printf %s \"$SECRET\" | parley oauth connection create --bot APPID --name sso --provider oidc --issuer https://login.example.com --client-id parley --client-secret-file - --scopes openid,profile,offline_access",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.secretFile == "" {
				return errors.New("--client-secret-file is required: a file holding the client secret, or - for stdin")
			}
			ctx := cmd.Context()
			as, err := a.openService(ctx, f.sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			in := f.input(cmd, true)
			in.Secret = func() (string, error) { return a.readSecret(f.secretFile) }
			c, err := as.svc.CreateOAuthConnection(ctx, as.p, f.bot, f.name, in)
			if admin.NotFoundObject(err) == "bot" {
				return fmt.Errorf("no bot %q (see 'parley bot list')", f.bot)
			}
			if err != nil {
				return err
			}
			out := admin.ToOAuthConnection(c, as.svc.RedirectURI())
			return a.print(f.sf.json, out, fmt.Sprintf("connection %s of bot %s created (%s)\nregister this redirect URI at the provider: %s\n", c.Name, c.BotID, c.Kind, out.RedirectURI))
		},
	}
	f.add(cmd)
	_ = cmd.MarkFlagRequired("provider")
	_ = cmd.MarkFlagRequired("client-id")
	return cmd
}

// input is the connection fields given on the command line (all of
// them for create; the flags given for update).
func (f *connFlags) input(cmd *cobra.Command, all bool) admin.OAuthInput {
	fl := cmd.Flags()
	str := func(name string, v string) *string {
		if all || fl.Changed(name) {
			return &v
		}
		return nil
	}
	in := admin.OAuthInput{Provider: str("provider", f.provider), Issuer: str("issuer", f.issuer), AuthURL: str("auth-url", f.authURL),
		TokenURL: str("token-url", f.tokenURL), Tenant: str("tenant", f.tenant), ClientID: str("client-id", f.clientID)}
	if all || fl.Changed("scopes") {
		in.Scopes = &f.scopes
	}
	if all || fl.Changed("max-login") {
		in.MaxLogin = &f.maxLogin
	}
	return in
}

func (a *app) oauthUpdateCmd() *cobra.Command {
	var f connFlags
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Change an OAuth connection (only the flags given); users' tokens are kept",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			as, err := a.openService(ctx, f.sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			in := f.input(cmd, false)
			if f.secretFile != "" {
				in.Secret = func() (string, error) { return a.readSecret(f.secretFile) }
			}
			c, err := as.svc.UpdateOAuthConnection(ctx, as.p, f.bot, f.name, in)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("bot %q has no connection named %q (see 'parley oauth connection list --bot %s')", f.bot, f.name, f.bot)
			} else if err != nil {
				return err
			}
			return a.print(f.sf.json, admin.ToOAuthConnection(c, as.svc.RedirectURI()), fmt.Sprintf("connection %s of bot %s updated\n", c.Name, c.BotID))
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) oauthListCmd() *cobra.Command {
	var sf storeFlags
	var bot string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a bot's OAuth connections (never their secrets)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			conns, err := as.svc.ListOAuthConnections(ctx, as.p, bot)
			if admin.NotFoundObject(err) == "bot" {
				return fmt.Errorf("no bot %q (see 'parley bot list')", bot)
			}
			if err != nil {
				return err
			}
			redirect := as.svc.RedirectURI()
			out := []oauthConnJSON{}
			var text strings.Builder
			tw := tabwriter.NewWriter(&text, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROVIDER\tCLIENT ID\tSCOPES\tMAX LOGIN")
			for _, c := range conns {
				out = append(out, admin.ToOAuthConnection(c, redirect))
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Kind, c.ClientID, strings.Join(c.Scopes, " "), c.MaxLogin)
			}
			_ = tw.Flush()
			fmt.Fprintf(&text, "redirect URI to register at each provider: %s\n", redirect)
			return a.print(sf.json, out, text.String())
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&bot, "bot", "", "the bot's app id")
	_ = cmd.MarkFlagRequired("bot")
	return cmd
}

func (a *app) oauthDeleteCmd() *cobra.Command {
	var sf storeFlags
	var bot, name string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete an OAuth connection and every user token obtained through it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			if err := as.svc.DeleteOAuthConnection(ctx, as.p, bot, name); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("bot %q has no connection named %q (see 'parley oauth connection list --bot %s')", bot, name, bot)
			} else if err != nil {
				return err
			}
			return a.print(sf.json, map[string]any{"deleted": true, "botId": bot, "name": name}, fmt.Sprintf("connection %s of bot %s deleted, with its users' tokens\n", name, bot))
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&bot, "bot", "", "the bot's app id")
	cmd.Flags().StringVar(&name, "name", "", "the connection name")
	_ = cmd.MarkFlagRequired("bot")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
