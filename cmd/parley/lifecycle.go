package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/store"
)

// This file is the day-two life of bots and sites (issue 11, item 1):
// bot update, bot delete, site update, site delete.

// oneID is the Args of a command that takes one object id, saying what to
// give when it is missing.
func oneID(kind, list string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return fmt.Errorf("give the %s's id: '%s ID' (ids: '%s')", kind, cmd.CommandPath(), list)
		case len(args) > 1:
			return fmt.Errorf("give one %s id, not %d: '%s ID'", kind, len(args), cmd.CommandPath())
		case strings.TrimSpace(args[0]) == "":
			return fmt.Errorf("the %s id is empty (ids: '%s')", kind, list)
		}
		return nil
	}
}

var endpointHost = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$`)

// checkEndpointHost refuses an endpoint whose host is no host name or IP
// address, a wildcard above all: the endpoint is the one URL Parley posts
// to, and "https://*.example.com/api" would be stored and never reached.
func checkEndpointHost(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil // validEndpoint says what is wrong
	}
	h := u.Hostname()
	if strings.Contains(h, "*") {
		return fmt.Errorf("--endpoint %q: wildcards are not endpoints; give the bot's exact messaging URL, e.g. https://bot.example.com/api/messages", connector.RedactURL(endpoint))
	}
	if _, err := netip.ParseAddr(h); err == nil || h == "" || endpointHost.MatchString(h) {
		return nil
	}
	return fmt.Errorf("--endpoint %q: %q is not a host name or IP address; e.g. https://bot.example.com/api/messages", connector.RedactURL(endpoint), h)
}

// unknownID says an id names nothing, and where the ids are.
func unknownID(kind, id, list string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no %s %q: nothing changed (list the ids with '%s')", kind, id, list)
	}
	return err
}

// botNameFreeFor is botNameFree that ignores bot self (a rename keeps
// its own name, in any case).
func botNameFreeFor(ctx context.Context, st store.Store, self, name string) error {
	bots, err := st.ListBots(ctx)
	if err != nil {
		return err
	}
	for _, b := range bots {
		if b.ID != self && strings.EqualFold(b.Name, name) {
			return nameTakenHint(&store.NameTakenError{Kind: "bot", Name: name, ExistingID: b.ID}, "bot")
		}
	}
	return nil
}

func (a *app) botUpdateCmd() *cobra.Command {
	var sf storeFlags
	var name, endpoint, publicURL string
	var auth, insecure bool
	var deliveryTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a bot's name, endpoint or authentication mode",
		Long: "Change a registered bot. --auth switches a bot registered with --insecure-no-auth to authentication:\n" +
			"it prints a new client secret (shown once) and the bot's settings, with Parley's public URL (--config's\n" +
			"public_url or --public-url). --insecure-no-auth switches a loopback bot to no authentication and revokes\n" +
			"its client secrets. A running Parley picks the change up within a few seconds.",
		Args: oneID("bot", "parley bot list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			f := cmd.Flags()
			if !f.Changed("name") && !f.Changed("endpoint") && !auth && !insecure && !f.Changed("delivery-timeout") {
				return errors.New("nothing to change: give --name, --endpoint, --auth, --insecure-no-auth or --delivery-timeout")
			}
			if err := checkDeliveryTimeout(deliveryTimeout); err != nil {
				return err
			}
			if auth && insecure {
				return errors.New("--auth and --insecure-no-auth contradict each other: give one")
			}
			if f.Changed("name") && !namePattern.MatchString(name) {
				return errors.New("--name must be 1-64 letters, digits, spaces or ._'-")
			}
			cfg, st, err := a.openAdmin(ctx, sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			if insecure && sf.config != "" && !cfg.InsecureHTTP {
				// serve refuses to start with such a bot; a running one
				// would call it without authentication from now on.
				return fmt.Errorf("--insecure-no-auth: %s serves TLS (production), where 'parley serve' refuses insecure bots and a running server would call this one without authentication: nothing changed. For development, use a configuration with insecure_http: true on loopback", sf.config)
			}
			b, err := st.GetBot(ctx, id)
			if err != nil {
				return unknownID("bot", id, "parley bot list", err)
			}
			if auth && !b.InsecureNoAuth {
				return fmt.Errorf("bot %s already uses authentication: nothing changed. To replace a client secret, use 'parley bot secret regenerate --bot %s --slot 1' (or 2)", id, id)
			}
			was := b
			if f.Changed("name") {
				if err := botNameFreeFor(ctx, st, id, name); err != nil {
					return err
				}
				b.Name = name
			}
			if f.Changed("endpoint") {
				b.Endpoint = endpoint
			}
			switch {
			case auth:
				b.InsecureNoAuth = false
			case insecure:
				b.InsecureNoAuth = true
			}
			authChanged := b.InsecureNoAuth != was.InsecureNoAuth
			if f.Changed("endpoint") || authChanged {
				if f.Changed("endpoint") {
					if err := checkEndpointHost(b.Endpoint); err != nil {
						return err
					}
					if err := a.checkBotEndpoint(ctx, cfg, b.Endpoint); err != nil {
						return err
					}
				}
				if err := validEndpoint(b.Endpoint, b.InsecureNoAuth); err != nil {
					switch {
					case !f.Changed("endpoint"):
						return fmt.Errorf("%w (the bot's current endpoint; give a loopback --endpoint too)", err)
					case b.InsecureNoAuth && !insecure:
						return fmt.Errorf("%w; the bot is registered with --insecure-no-auth: add --auth to switch it to authentication", err)
					}
					return err
				}
			}
			var secret, pub string
			if authChanged && !b.InsecureNoAuth {
				if pub, err = botPublicURL(publicURL, cfg.PublicURL); err != nil {
					return err
				}
				if secret, err = identity.NewSecret(); err != nil {
					return err
				}
				b.SecretHashes = [2][]byte{botauth.HashClientSecret(secret), nil}
			} else if authChanged {
				b.SecretHashes = [2][]byte{}
			}
			if authChanged {
				err = st.UpdateBotAuth(ctx, b)
			} else {
				err = st.UpdateBot(ctx, b)
			}
			if err != nil {
				return unknownID("bot", id, "parley bot list", nameTakenHint(err, "bot"))
			}
			if f.Changed("delivery-timeout") {
				// 0 puts the gateway's default back.
				if err := st.SetBotDeliveryTimeout(ctx, id, deliveryTimeout); err != nil {
					return fmt.Errorf("set delivery timeout: %w", err)
				}
				b.DeliveryTimeout = deliveryTimeout
			}
			out := toBotJSON(b)
			var text strings.Builder
			fmt.Fprintf(&text, "bot %s updated: %s -> %s, authentication %s\n", b.ID, b.Name, connector.RedactURL(b.Endpoint), authText(b.InsecureNoAuth))
			if b.InsecureNoAuth && authChanged {
				fmt.Fprintln(a.stderr, "WARNING: this bot is now INSECURE: Parley calls it without a token and accepts its replies without one; its client secrets are revoked (loopback development only; 'parley serve' refuses to run with it unless insecure_http is set).")
			}
			if secret != "" {
				settings := botauth.BotSettings(pub, b.ID, secret)
				out.ClientSecret, out.Snippet, out.Settings = secret, botbuilderSnippet, map[string]string{}
				text.Reset()
				fmt.Fprintf(&text, "bot %s now uses authentication (%s -> %s). Configure the bot with these settings before it talks to Parley again;\nthe client secret is shown once, Parley keeps only its hash:\n\n", b.ID, b.Name, connector.RedactURL(b.Endpoint))
				for _, s := range settings {
					out.Settings[s.Name] = s.Value
					fmt.Fprintf(&text, "%s=%s\n", s.Name, s.Value)
				}
				fmt.Fprintf(&text, "\nIn the bot (botbuilder 4.23.x), build the adapter like this:\n\n%s", botbuilderSnippet)
				out.AgentsSDK = agentsSettingsMap(pub, b.ID, secret)
				text.WriteString(agentsSettingsText(pub, b.ID, secret))
			}
			fmt.Fprintf(&text, "A running Parley picks this up within a few seconds.\n")
			return a.print(sf.json, out, text.String())
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&name, "name", "", "new display name")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "new messaging endpoint, e.g. https://bot.example.com/api/messages")
	cmd.Flags().BoolVar(&auth, "auth", false, "switch a bot registered with --insecure-no-auth to authentication (prints a new client secret once)")
	cmd.Flags().BoolVar(&insecure, "insecure-no-auth", false, "DEVELOPMENT ONLY: switch to no authentication (loopback endpoints only); revokes the client secrets")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "Parley's public base URL for the printed settings with --auth (default: the configuration's public_url)")
	cmd.Flags().DurationVar(&deliveryTimeout, "delivery-timeout", 0, "how long one delivery attempt waits for the bot's answer (1s to 5m; 0 puts the default, 15s, back)")
	return cmd
}

func authText(insecure bool) string {
	if insecure {
		return "OFF (--insecure-no-auth)"
	}
	return "on"
}

func (a *app) siteUpdateCmd() *cobra.Command {
	var sf storeFlags
	var name string
	var enhanced bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a site's name or enhanced authentication (origins: set-origins)",
		Args:  oneID("site", "parley site list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			f := cmd.Flags()
			if !f.Changed("name") && !f.Changed("enhanced-auth") {
				return errors.New("nothing to change: give --name or --enhanced-auth=true|false (trusted origins: 'parley site set-origins')")
			}
			if f.Changed("name") && !namePattern.MatchString(name) {
				return errors.New("--name must be 1-64 letters, digits, spaces or ._'-")
			}
			st, err := a.openAdminStore(ctx, sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			site, err := st.GetSite(ctx, id)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			if f.Changed("name") {
				sites, err := st.ListSites(ctx, site.BotID)
				if err != nil {
					return err
				}
				for _, s := range sites {
					if s.ID != id && strings.EqualFold(s.Name, name) {
						return nameTakenHint(&store.NameTakenError{Kind: "site", Name: name, ExistingID: s.ID}, "site")
					}
				}
				site.Name = name
			}
			if f.Changed("enhanced-auth") {
				site.EnhancedAuth = enhanced
			}
			if err := st.UpdateSite(ctx, id, site.Name, site.EnhancedAuth); err != nil {
				return unknownID("site", id, "parley site list", nameTakenHint(err, "site"))
			}
			if !site.EnhancedAuth {
				fmt.Fprintln(a.stderr, "WARNING: enhanced authentication is OFF for this site: clients may choose their own user ids.")
			}
			return a.print(sf.json, siteOut(site), fmt.Sprintf("site %s updated: name %s, enhanced authentication %v\nA running Parley picks this up within a few seconds.\n", site.ID, site.Name, site.EnhancedAuth))
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&name, "name", "", "new site name")
	cmd.Flags().BoolVar(&enhanced, "enhanced-auth", true, "enhanced authentication: true, or false to let clients choose their own user ids")
	return cmd
}

// removalJSON is what a bot or site deletion removes (plan) or removed.
type removalJSON struct {
	Bot            string   `json:"bot,omitempty"`
	Sites          []string `json:"sites"`
	Conversations  int      `json:"conversations"`
	Activities     int      `json:"activities"`
	Attachments    int      `json:"attachments"`
	Sessions       int      `json:"sessions"`
	DataKeys       int      `json:"dataKeys"`
	Deliveries     int      `json:"queuedDeliveries"`
	DeadLetters    int      `json:"deadLetters"`
	SecretsRevoked int      `json:"secretsRevoked"`
	// A bot's OAuth connections and its users' tokens (bot delete).
	OAuthConnections int `json:"oauthConnections"`
	UserTokens       int `json:"userTokens"`
}

func toRemovalJSON(r store.Removal) removalJSON {
	sites := r.SiteIDs
	if sites == nil {
		sites = []string{}
	}
	return removalJSON{Bot: r.BotID, Sites: sites, Conversations: r.Conversations, Activities: r.Activities, Attachments: r.Attachments,
		Sessions: r.Sessions, DataKeys: r.DataKeys, Deliveries: r.OutboxItems, DeadLetters: r.DeadLetters, SecretsRevoked: r.SecretSlots,
		OAuthConnections: r.OAuthConnections, UserTokens: r.UserTokens}
}

// deletionJSON is what bot delete and site delete print once done.
type deletionJSON struct {
	Deleted   string      `json:"deleted"` // "bot" or "site"
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	DeletedAt time.Time   `json:"deletedAt"`
	Removed   removalJSON `json:"removed"`
	Scrubbed  bool        `json:"scrubbed"`
	Backups   string      `json:"backups"`
}

// removalText says what a deletion removes, line by line.
func removalText(r store.Removal, verb string) string {
	var b strings.Builder
	if len(r.SiteIDs) > 0 && r.BotID != "" {
		fmt.Fprintf(&b, "  %d site(s): %s\n", len(r.SiteIDs), strings.Join(r.SiteIDs, ", "))
	}
	fmt.Fprintf(&b, "  %d secret(s) %s: they stop working at once (tokens already issued within a few seconds)\n", r.SecretSlots, verb+" revoked")
	fmt.Fprintf(&b, "  %d conversation(s) and their content: %d activities, %d uploads, %d sign-in sessions\n", r.Conversations, r.Activities, r.Attachments, r.Sessions)
	fmt.Fprintf(&b, "  %d data key(s) destroyed (crypto-shredding)\n", r.DataKeys)
	fmt.Fprintf(&b, "  %d queued delivery(ies) dropped: the bot never receives them\n", r.OutboxItems)
	fmt.Fprintf(&b, "  %d dead letter(s) dropped\n", r.DeadLetters)
	if r.BotID != "" {
		fmt.Fprintf(&b, "  %d OAuth connection(s) and %d user token(s) deleted: users sign in again if the bot comes back\n", r.OAuthConnections, r.UserTokens)
	}
	return b.String()
}

const deletionBackups = "Database backups taken before now keep copies until the key-encryption keys are rotated and destroyed ('parley keys'); see 'parley erase' for what backups hold."

// confirmDeletion asks on a terminal (unless yes); off a terminal it
// refuses without --yes.
func (a *app) confirmDeletion(yes bool, what string) error {
	if yes {
		return nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return &exitError{exitRefused, fmt.Errorf("refusing to delete %s without --yes: stdin is not a terminal. Nothing was deleted; read what would go above, then run again with --yes", what)}
	}
	fmt.Fprintf(a.stderr, "Delete %s? This cannot be undone. Type yes: ", what)
	line, err := bufio.NewReader(io.LimitReader(f, 64)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(a.stderr)
	}
	if strings.TrimSpace(line) != "yes" {
		if line == "" {
			return &exitError{exitRefused, errors.New("no answer (stdin closed): nothing deleted; pass --yes to delete without a terminal")}
		}
		return &exitError{exitRefused, errors.New("not confirmed: nothing deleted")}
	}
	return nil
}

func (a *app) botDeleteCmd() *cobra.Command {
	var sf storeFlags
	var yes, cascade bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a bot, its client secrets and everything stored for it (asks first)",
		Long: "Delete a bot in one transaction: its client secrets, every conversation with its content and data key\n" +
			"(crypto-shredding), its queued deliveries and dead letters. A bot that still has sites is refused unless\n" +
			"--cascade is given, which deletes its sites (their secrets) too. Prints what goes first, and asks on a\n" +
			"terminal; elsewhere it needs --yes. Works while the server runs: the bot stops being called at once, and\n" +
			"tokens already issued stop working within a few seconds.\n" +
			"Exit codes: 0 deleted, 1 failed (unknown id, sites without --cascade), 2 refused (confirmation).",
		Args: oneID("bot", "parley bot list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			st, err := a.openAdminStore(ctx, sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			b, err := st.GetBot(ctx, id)
			if err != nil {
				return unknownID("bot", id, "parley bot list", err)
			}
			plan, err := st.PlanDeleteBot(ctx, id)
			if err != nil {
				return unknownID("bot", id, "parley bot list", err)
			}
			hasSites := func(sites []string) error {
				return fmt.Errorf("bot %s still has %d site(s) (%s): nothing deleted. Delete them first ('parley site delete ID'), or delete the bot with its sites: 'parley bot delete %s --cascade'",
					id, len(sites), strings.Join(sites, ", "), id)
			}
			what := "bot " + id
			if len(plan.SiteIDs) > 0 {
				if !cascade {
					fmt.Fprintf(a.stderr, "With --cascade, deleting bot %s (%s) would remove, in one transaction:\n%s", id, b.Name, removalText(plan, "would be"))
					return hasSites(plan.SiteIDs)
				}
				what = fmt.Sprintf("bot %s with its %d site(s)", id, len(plan.SiteIDs))
			}
			fmt.Fprintf(a.stderr, "Deleting bot %s (%s) removes, in one transaction:\n%s", id, b.Name, removalText(plan, "are"))
			if err := a.confirmDeletion(yes, what); err != nil {
				return err
			}
			now := time.Now().UTC()
			r, err := st.DeleteBot(ctx, id, cascade, now)
			if errors.Is(err, store.ErrHasSites) {
				return hasSites(r.SiteIDs) // a site was created meanwhile
			}
			if err != nil {
				return unknownID("bot", id, "parley bot list", err)
			}
			return a.printDeletion(ctx, st, sf.json, deletionJSON{Deleted: "bot", ID: id, Name: b.Name, DeletedAt: now, Removed: toRemovalJSON(r)}, r)
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also delete the bot's sites, with their secrets and conversations")
	return cmd
}

func (a *app) siteDeleteCmd() *cobra.Command {
	var sf storeFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a site, its secrets and its conversations (asks first)",
		Long: "Delete a site in one transaction: its two secrets, every conversation with its content and data key\n" +
			"(crypto-shredding), their queued deliveries and dead letters. Prints what goes first, and asks on a\n" +
			"terminal; elsewhere it needs --yes. Works while the server runs: the secrets stop working at once, tokens\n" +
			"already issued within a few seconds.\n" +
			"Exit codes: 0 deleted, 1 failed (unknown id), 2 refused (confirmation).",
		Args: oneID("site", "parley site list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			st, err := a.openAdminStore(ctx, sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			site, err := st.GetSite(ctx, id)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			plan, err := st.PlanDeleteSite(ctx, id)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			fmt.Fprintf(a.stderr, "Deleting site %s (%s, bot %s) removes, in one transaction:\n%s", id, site.Name, site.BotID, removalText(plan, "are"))
			if err := a.confirmDeletion(yes, "site "+id); err != nil {
				return err
			}
			now := time.Now().UTC()
			r, err := st.DeleteSite(ctx, id, now)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			return a.printDeletion(ctx, st, sf.json, deletionJSON{Deleted: "site", ID: id, Name: site.Name, DeletedAt: now, Removed: toRemovalJSON(r)}, r)
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return cmd
}

// printDeletion scrubs the store's files and prints what was deleted.
func (a *app) printDeletion(ctx context.Context, st store.Store, asJSON bool, d deletionJSON, r store.Removal) error {
	d.Backups = deletionBackups
	serr := st.Scrub(ctx)
	d.Scrubbed = serr == nil
	text := fmt.Sprintf("%s %s (%s) deleted at %s:\n%sscrubbed: %v\n%s\n", d.Deleted, d.ID, d.Name, d.DeletedAt.Format(time.RFC3339), removalText(r, "were"), d.Scrubbed, d.Backups)
	if err := a.print(asJSON, d, text); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("deleted, but scrubbing the store's files failed (old page versions stay in the WAL until its next checkpoint; a restart of the server checkpoints it): %w", serr)
	}
	return nil
}
