package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// storeFlags are shared by the admin commands.
type storeFlags struct {
	config, data string
	json         bool
}

func (f *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "configuration file (its data_dir is used)")
	cmd.Flags().StringVar(&f.data, "data", "./parley-data", "data directory, when no --config is given")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
}

func (a *app) print(asJSON bool, v any, text string) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprint(a.stdout, text)
	return err
}

// printThen prints a result, then returns err: a change made whose audit
// event could not be recorded (admin.Unrecorded) still shows what it made
// (a secret shown once would be lost otherwise), and the command fails
// with the audit error after it.
func (a *app) printThen(err error, asJSON bool, v any, text string) error {
	if perr := a.print(asJSON, v, text); perr != nil {
		return perr
	}
	return err
}

// The JSON shapes are the service layer's (the admin API answers the
// same); the old names stay for the tests.
type (
	botJSON  = admin.Bot
	siteJSON = admin.Site
)

func (a *app) botCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bot", Short: "Manage bots"}
	var sf storeFlags
	var name, endpoint, publicURL string
	var insecure bool
	var deliveryTimeout time.Duration // agentsettings.go
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a bot: its app id, a client secret and its messaging endpoint",
		Long: "Register a bot. Prints its app id, a client secret (shown once; Parley keeps only its hash)\n" +
			"and every setting the bot's developer must set, with Parley's real URLs, plus a botbuilder snippet.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !admin.NamePattern.MatchString(name) {
				return errors.New("--name must be " + admin.NameRule)
			}
			ctx := cmd.Context()
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			res, err := as.svc.CreateBot(ctx, as.p, admin.BotCreate{Name: name, Endpoint: endpoint, PublicURL: publicURL, InsecureNoAuth: insecure, DeliveryTimeout: deliveryTimeout})
			if err != nil && !admin.Unrecorded(err) {
				return err
			}
			a.warn(res.Warnings)
			b := res.Bot
			out := admin.ToBot(b)
			if insecure {
				return a.printThen(err, sf.json, out, fmt.Sprintf("bot %s created (%s -> %s)\n", b.ID, b.Name, connector.RedactURL(b.Endpoint)))
			}
			pub, secret := res.PublicURL, res.ClientSecret
			settings := botauth.BotSettings(pub, b.ID, secret)
			out.ClientSecret, out.Snippet, out.Settings = secret, botbuilderSnippet, map[string]string{}
			for _, st := range settings {
				out.Settings[st.Name] = st.Value
			}
			out.AgentsSDK = agentsSettingsMap(pub, b.ID, secret)
			return a.printThen(err, sf.json, out, botCreatedText(b, settings)+agentsSettingsText(pub, b.ID, secret))
		},
	}
	sf.add(create)
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&endpoint, "endpoint", "", "messaging endpoint, e.g. https://bot.example.com/api/messages")
	create.Flags().StringVar(&publicURL, "public-url", "", "Parley's public base URL for the printed settings (default: the configuration's public_url or PARLEY_PUBLIC_URL; required without them)")
	create.Flags().DurationVar(&deliveryTimeout, "delivery-timeout", 0, "how long one delivery attempt waits for the bot's answer (1s to 5m; 0 or absent: the default, 15s)")
	create.Flags().BoolVar(&insecure, "insecure-no-auth", false, "DEVELOPMENT ONLY: no channel JWT to the bot, no bearer token from it; loopback endpoints only")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("endpoint")

	cmd.AddCommand(a.botSecretCmd())
	var lf storeFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List bots",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.openService(cmd.Context(), lf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			bots, err := as.svc.ListBots(cmd.Context(), as.p)
			if err != nil {
				return err
			}
			out := []admin.Bot{}
			var text strings.Builder
			for _, b := range bots {
				out = append(out, admin.ToBot(b))
				fmt.Fprintf(&text, "%s\t%s\t%s\tinsecure=%v\n", b.ID, b.Name, connector.RedactURL(b.Endpoint), b.InsecureNoAuth)
			}
			return a.print(lf.json, out, text.String())
		},
	}
	lf.add(list)
	cmd.AddCommand(create, list, a.botUpdateCmd(), a.botDeleteCmd())
	return cmd
}

func originsText(o []string) string {
	if len(o) == 0 {
		return "(none)"
	}
	return strings.Join(o, ", ")
}

func (a *app) siteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "site", Short: "Manage Direct Line sites (secrets, enhanced authentication, trusted origins)"}
	var sf storeFlags
	var botID, name string
	var origins []string
	var noEnhanced bool
	var linkPolicy string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a Direct Line site with two fresh secrets (shown once)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !admin.NamePattern.MatchString(name) {
				return errors.New("--name must be " + admin.NameRule)
			}
			if _, err := admin.NormalizeOrigins(origins); err != nil {
				return err
			}
			if _, err := store.ParseAttachmentURLPolicy(linkPolicy); err != nil {
				return fmt.Errorf("--client-attachment-urls: %w", err)
			}
			ctx := cmd.Context()
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			c, err := as.svc.CreateSite(ctx, as.p, admin.SiteCreate{BotID: botID, Name: name, Origins: origins, NoEnhancedAuth: noEnhanced, ClientAttachmentURLs: linkPolicy})
			if err != nil && !admin.Unrecorded(err) {
				return err
			}
			a.warn(c.Warnings)
			out := c.View()
			out.Warnings = nil
			return a.printThen(err, sf.json, out, fmt.Sprintf("site %s created for bot %s\nsecret 1: %s\nsecret 2: %s\nStore them now: Parley keeps only their hashes.\n", c.Site.ID, botID, c.Secrets[0], c.Secrets[1]))
		},
	}
	sf.add(create)
	create.Flags().StringVar(&botID, "bot", "", "bot id")
	create.Flags().StringVar(&name, "name", "", "site name")
	create.Flags().StringSliceVar(&origins, "origin", nil, "trusted origin (repeatable), e.g. https://www.example.com")
	create.Flags().BoolVar(&noEnhanced, "insecure-disable-enhanced-auth", false, "turn enhanced authentication off (clients choose their own user ids)")
	create.Flags().StringVar(&linkPolicy, "client-attachment-urls", string(store.AttachmentURLsRefuse), clientLinksHelp)
	_ = create.MarkFlagRequired("bot")
	_ = create.MarkFlagRequired("name")

	var of storeFlags
	var siteID string
	var setOrigins []string
	var noOrigins bool
	originsCmd := &cobra.Command{
		Use:   "set-origins",
		Short: "Replace a site's trusted origins (--origin, repeatable), or clear them with --none",
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case noOrigins && len(setOrigins) > 0:
				return errors.New("--none clears the trusted origins: give either --none or --origin, not both")
			case !noOrigins && len(setOrigins) == 0:
				return errors.New("no --origin given: list every trusted origin (--origin https://www.example.com, repeatable), or pass --none to clear the list")
			}
			if _, err := admin.NormalizeOrigins(setOrigins); err != nil {
				return err
			}
			as, err := a.openService(cmd.Context(), of)
			if err != nil {
				return err
			}
			defer as.st.Close()
			if setOrigins == nil {
				setOrigins = []string{} // --none: an explicit empty list
			}
			site, err := as.svc.SetOrigins(cmd.Context(), as.p, siteID, setOrigins)
			if err != nil {
				return siteFlagError(siteID, err)
			}
			norm := site.TrustedOrigins
			return a.print(of.json, admin.Site{ID: site.ID, BotID: site.BotID, Name: site.Name, EnhancedAuth: site.EnhancedAuth, TrustedOrigins: norm},
				fmt.Sprintf("site %s trusted origins: %s\n", siteID, originsText(norm)))
		},
	}
	of.add(originsCmd)
	originsCmd.Flags().StringVar(&siteID, "site", "", "site id")
	originsCmd.Flags().StringSliceVar(&setOrigins, "origin", nil, "trusted origin (repeatable), e.g. https://www.example.com; replaces the whole list")
	originsCmd.Flags().BoolVar(&noOrigins, "none", false, "clear the site's trusted origins")
	_ = originsCmd.MarkFlagRequired("site")

	var pf storeFlags
	var policySite, setPolicy string
	policyCmd := &cobra.Command{
		Use:   "set-client-attachment-urls",
		Short: "Choose what a site does with attachment links from clients (refuse or untrusted)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := store.ParseAttachmentURLPolicy(setPolicy); err != nil {
				return fmt.Errorf("--client-attachment-urls: %w", err)
			}
			as, err := a.openService(cmd.Context(), pf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			site, err := as.svc.SetClientAttachmentURLs(cmd.Context(), as.p, policySite, setPolicy)
			if err != nil {
				return siteFlagError(policySite, err)
			}
			return a.print(pf.json, admin.ToSite(site), fmt.Sprintf("site %s client attachment URLs: %s\n", site.ID, site.ClientAttachmentURLs))
		},
	}
	pf.add(policyCmd)
	policyCmd.Flags().StringVar(&policySite, "site", "", "site id")
	policyCmd.Flags().StringVar(&setPolicy, "client-attachment-urls", "", clientLinksHelp)
	_ = policyCmd.MarkFlagRequired("site")
	_ = policyCmd.MarkFlagRequired("client-attachment-urls")

	var lf storeFlags
	var listBot string
	list := &cobra.Command{
		Use:   "list",
		Short: "List sites",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.openService(cmd.Context(), lf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			sites, err := as.svc.ListSites(cmd.Context(), as.p, listBot)
			if err != nil {
				return err
			}
			out := []admin.Site{}
			var text strings.Builder
			for _, s := range sites {
				out = append(out, siteOut(s))
				fmt.Fprintf(&text, "%s\tbot=%s\t%s\tenhanced=%v\torigins=%s\tclient-attachment-urls=%s\tmasking=%s\tretention=%s\n", s.ID, s.BotID, s.Name, s.EnhancedAuth, strings.Join(s.TrustedOrigins, ","), s.ClientAttachmentURLs, admin.MaskingOf(s), s.Retention)
			}
			return a.print(lf.json, out, text.String())
		},
	}
	lf.add(list)
	list.Flags().StringVar(&listBot, "bot", "", "only this bot's sites")
	cmd.AddCommand(create, originsCmd, policyCmd, a.siteMaskingCmd(), list, a.siteRetentionCmd(), a.siteUpdateCmd(), a.siteDeleteCmd())
	return cmd
}

const clientLinksHelp = "what to do with attachment links from clients (not uploads): refuse (400) or untrusted (passed to the bot marked \"parleyUntrusted\": true)"

func (a *app) secretCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Manage site secrets"}
	cmd.AddCommand(a.secretRegenCmd(secretKind{
		short: "Replace one of a site's two secrets; the other keeps working", flag: "site", help: "site id",
		secretKey: "secret", label: "secret",
		set: func(ctx context.Context, st store.Store, id string, slot int, secret string) error {
			return st.SetSiteSecret(ctx, id, slot, identity.HashSecret(secret))
		},
	}))
	return cmd
}

// secretKind describes a two-slot secret (a site's secret, a bot's client
// secret) for its regenerate command.
type secretKind struct {
	short, flag, help string
	secretKey, label  string // JSON key and text label of the new secret
	// set stores the new secret's hash in slot (0 or 1) of object id.
	set func(ctx context.Context, st store.Store, id string, slot int, secret string) error
}

// secretRegenCmd is "regenerate --<flag> ID --slot 1|2": a fresh 256-bit
// secret in one slot, shown once; the other slot keeps working.
func (a *app) secretRegenCmd(k secretKind) *cobra.Command {
	var sf storeFlags
	var id string
	var slot int
	regen := &cobra.Command{
		Use:   "regenerate",
		Short: k.short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if slot != 1 && slot != 2 {
				return errors.New("--slot must be 1 or 2")
			}
			as, err := a.openService(cmd.Context(), sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			var s string
			switch k.flag {
			case "bot":
				s, err = as.svc.RotateBotSecret(cmd.Context(), as.p, id, slot)
			case "site":
				s, err = as.svc.RotateSiteSecret(cmd.Context(), as.p, id, slot)
			default:
				if s, err = identity.NewSecret(); err == nil {
					err = k.set(cmd.Context(), as.st, id, slot-1, s)
				}
			}
			if err != nil && !admin.Unrecorded(err) {
				return fmt.Errorf("--%s %q: %w", k.flag, id, err)
			}
			return a.printThen(err, sf.json, map[string]any{k.flag: id, "slot": slot, k.secretKey: s},
				fmt.Sprintf("%s %s %s %d: %s\nStore it now: Parley keeps only its hash.\n", k.flag, id, k.label, slot, s))
		},
	}
	sf.add(regen)
	regen.Flags().StringVar(&id, k.flag, "", k.help)
	regen.Flags().IntVar(&slot, "slot", 0, "which secret to replace: 1 or 2")
	_ = regen.MarkFlagRequired(k.flag)
	_ = regen.MarkFlagRequired("slot")
	return regen
}

// The admin commands are clients of the service layer (internal/admin),
// as the admin API is: the same validation, rules and audit events. The
// CLI runs as the local principal: whoever can read the data directory
// and the master key, with the role owner, unscoped.

// localPrincipal is the CLI's principal: local:<OS user>, owner.
func localPrincipal() admin.Principal {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	} else if v := os.Getenv("USER"); v != "" {
		name = v
	}
	return admin.Principal{Kind: admin.KindLocal, ID: name, Name: name, Role: admin.RoleOwner}
}

// adminSession is an opened store and the service over it.
type adminSession struct {
	cfg config.Config
	st  store.Store
	svc *admin.Service
	p   admin.Principal
}

// openService opens the admin store of f and the service over it; close
// with st.Close().
func (a *app) openService(ctx context.Context, f storeFlags) (adminSession, error) {
	cfg, st, err := a.openAdmin(ctx, f.config, f.data)
	if err != nil {
		return adminSession{}, err
	}
	rec, st, err := a.cliRecorder(ctx, cfg, st)
	if err != nil {
		return adminSession{}, err
	}
	return adminSession{cfg: cfg, st: st, svc: a.newServiceRecording(cfg, st, f.config, rec), p: localPrincipal()}, nil
}

// cliRecorder is where the local commands record their audit events:
// the audit log in the store, each entry authenticated under the keys
// (so the command needs the master key, as the server does). A test may
// set app.recorder instead. The returned store closes the keys with it.
func (a *app) cliRecorder(ctx context.Context, cfg config.Config, st store.Store) (admin.Recorder, store.Store, error) {
	if a.recorder != nil {
		return a.recorder, st, nil
	}
	keys, err := server.OpenKeys(ctx, cfg, st)
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("open the keys (the audit log's entries are authenticated under them): %w", err)
	}
	l, err := newAuditLog(cfg, st, keys.Set, nil)
	if err != nil {
		_ = keys.Close()
		_ = st.Close()
		return nil, nil, err
	}
	return l, closingStore{Store: st, before: func() { _ = keys.Close() }}, nil
}

// closingStore runs before when the store closes.
type closingStore struct {
	store.Store
	before func()
}

func (c closingStore) Close() error {
	c.before()
	return c.Store.Close()
}

// newService is the service over st with the CLI's hooks: its endpoint
// check (warnings on stderr), its public URL rule and app ids.
func (a *app) newService(cfg config.Config, st store.Store, configName string) *admin.Service {
	return a.newServiceRecording(cfg, st, configName, a.recorder)
}

// newServiceRecording is newService recording to rec.
func (a *app) newServiceRecording(cfg config.Config, st store.Store, configName string, rec admin.Recorder) *admin.Service {
	return admin.NewService(admin.Deps{
		Store: st, Config: cfg, Recorder: rec, Resolver: a.resolver,
		KeyList: listKeySet(cfg, st),
		OpenKeys: func(ctx context.Context) (admin.KeyHandle, error) {
			keys, err := server.OpenKeys(ctx, cfg, st)
			if err != nil {
				return admin.KeyHandle{}, err
			}
			return admin.KeyHandle{Set: keys.Set, Envelope: keys.Envelope, Codec: keys.Codec, Close: func() { _ = keys.Close() }}, nil
		},
		CheckEndpoint: func(ctx context.Context, endpoint string) (string, error) {
			return "", a.checkBotEndpoint(ctx, cfg, endpoint)
		},
		PublicURL:  botPublicURL,
		ConfigName: configName,
	})
}

// warn prints the service's warnings and notes on stderr.
func (a *app) warn(lines []string) {
	for _, l := range lines {
		fmt.Fprintln(a.stderr, l)
	}
}

// siteFlagError names the --site flag in an error about its site.
func siteFlagError(id string, err error) error {
	return fmt.Errorf("--site %q: %w", id, err)
}
