package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/directline"
	"github.com/parley-gw/parley/internal/identity"
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

var namePattern = regexp.MustCompile(`^[\p{L}\p{N} ._'-]{1,64}$`)

type botJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Endpoint       string    `json:"endpoint"`
	InsecureNoAuth bool      `json:"insecureNoAuth"`
	CreatedAt      time.Time `json:"createdAt"`
	// DeliveryTimeout is the bot's own per-attempt timeout ("" when it
	// uses the gateway's default).
	DeliveryTimeout string `json:"deliveryTimeout,omitempty"`
	// Shown once, at creation: the client secret and the bot's settings.
	ClientSecret string            `json:"clientSecret,omitempty"`
	Settings     map[string]string `json:"settings,omitempty"`
	Snippet      string            `json:"snippet,omitempty"`
	AgentsSDK    map[string]string `json:"agentsSdkSettings,omitempty"` // agentsettings.go
}

// toBotJSON shows the endpoint redacted (connector.RedactURL): function
// keys live in its query, and CLI output ends up in tickets and CI logs.
func toBotJSON(b store.Bot) botJSON {
	j := botJSON{ID: b.ID, Name: b.Name, Endpoint: connector.RedactURL(b.Endpoint), InsecureNoAuth: b.InsecureNoAuth, CreatedAt: b.CreatedAt}
	if b.DeliveryTimeout > 0 {
		j.DeliveryTimeout = b.DeliveryTimeout.String()
	}
	return j
}

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
			if !namePattern.MatchString(name) {
				return errors.New("--name must be 1-64 letters, digits, spaces or ._'-")
			}
			cfg, st, err := a.openAdmin(cmd.Context(), sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			if insecure && sf.config != "" && !cfg.InsecureHTTP {
				// serve refuses to start with such a bot; a running one
				// would call it without authentication.
				return fmt.Errorf("--insecure-no-auth: %s serves TLS (production), where 'parley serve' refuses insecure bots and a running server would call this one without authentication: nothing was created. For development, use a configuration with insecure_http: true on loopback", sf.config)
			}
			if err := checkEndpointHost(endpoint); err != nil {
				return err
			}
			if err := a.checkBotEndpoint(cmd.Context(), cfg, endpoint); err != nil {
				return err
			}
			if err := validEndpoint(endpoint, insecure); err != nil {
				return err
			}
			if err := checkDeliveryTimeout(deliveryTimeout); err != nil {
				return err
			}
			if err := botNameFree(cmd.Context(), st, name); err != nil {
				return err
			}
			// The settings printed carry Parley's public URL: never a
			// guessed one (the secret is shown once; wrong settings with it
			// would need a new secret).
			var pub string
			if !insecure {
				if pub, err = botPublicURL(publicURL, cfg.PublicURL); err != nil {
					return err
				}
			}
			b := store.Bot{ID: newAppID(), Name: name, Endpoint: endpoint, InsecureNoAuth: insecure, CreatedAt: time.Now().UTC()}
			var secret string
			if !insecure {
				if secret, err = identity.NewSecret(); err != nil {
					return err
				}
				b.SecretHashes[0] = botauth.HashClientSecret(secret)
			}
			if err := st.CreateBot(cmd.Context(), b); err != nil {
				return nameTakenHint(err, "bot")
			}
			if err := applyDeliveryTimeout(cmd.Context(), st, b.ID, deliveryTimeout); err != nil {
				return err
			}
			out := toBotJSON(b)
			if insecure {
				fmt.Fprintln(a.stderr, "WARNING: this bot is INSECURE: Parley calls it without a token and accepts its replies without one (loopback development only; 'parley serve' refuses to run with it unless insecure_http is set).")
				return a.print(sf.json, out, fmt.Sprintf("bot %s created (%s -> %s)\n", b.ID, b.Name, connector.RedactURL(b.Endpoint)))
			}
			settings := botauth.BotSettings(pub, b.ID, secret)
			out.ClientSecret, out.Snippet, out.Settings = secret, botbuilderSnippet, map[string]string{}
			for _, st := range settings {
				out.Settings[st.Name] = st.Value
			}
			out.AgentsSDK = agentsSettingsMap(pub, b.ID, secret)
			return a.print(sf.json, out, botCreatedText(b, settings)+agentsSettingsText(pub, b.ID, secret))
		},
	}
	sf.add(create)
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&endpoint, "endpoint", "", "messaging endpoint, e.g. https://bot.example.com/api/messages")
	create.Flags().StringVar(&publicURL, "public-url", "", "Parley's public base URL for the printed settings (default: the configuration's public_url or PARLEY_PUBLIC_URL; required without them)")
	create.Flags().DurationVar(&deliveryTimeout, "delivery-timeout", 0, "how long one delivery attempt waits for the bot's answer (1s to 5m; default: 15s)")
	create.Flags().BoolVar(&insecure, "insecure-no-auth", false, "DEVELOPMENT ONLY: no channel JWT to the bot, no bearer token from it; loopback endpoints only")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("endpoint")

	cmd.AddCommand(a.botSecretCmd())
	var lf storeFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List bots",
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openAdminStore(cmd.Context(), lf.config, lf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			bots, err := st.ListBots(cmd.Context())
			if err != nil {
				return err
			}
			out := []botJSON{}
			var text strings.Builder
			for _, b := range bots {
				out = append(out, toBotJSON(b))
				fmt.Fprintf(&text, "%s\t%s\t%s\tinsecure=%v\n", b.ID, b.Name, connector.RedactURL(b.Endpoint), b.InsecureNoAuth)
			}
			return a.print(lf.json, out, text.String())
		},
	}
	lf.add(list)
	cmd.AddCommand(create, list, a.botUpdateCmd(), a.botDeleteCmd())
	return cmd
}

type siteJSON struct {
	ID             string   `json:"id"`
	BotID          string   `json:"botId"`
	Name           string   `json:"name"`
	EnhancedAuth   bool     `json:"enhancedAuth"`
	TrustedOrigins []string `json:"trustedOrigins"`
	Secrets        []string `json:"secrets,omitempty"`
	// ClientAttachmentURLs is the site's policy for attachment links from
	// clients: refuse or untrusted.
	ClientAttachmentURLs string `json:"clientAttachmentUrls,omitempty"`
	// Masking is what the site masks in user activities before storage
	// and the bot: off, cards or all-pii.
	Masking string `json:"masking,omitempty"`
	// Retention is the site's retention policy (siteretention.go).
	Retention *retentionJSON `json:"retention,omitempty"`
}

// normalizeOrigins checks and normalizes --origin values: each must be
// exactly scheme://host[:port] (http or https; no path other than a
// trailing "/", no query, fragment or user info), written as a browser
// sends it in the Origin header. Wildcards are refused: origins are
// matched exactly, so "*" or "https://*.example.com" would be stored and
// never match. Repeats are dropped.
func normalizeOrigins(in []string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, o := range in {
		if strings.Contains(o, "*") {
			return nil, fmt.Errorf("--origin %q: wildcards are not supported (origins match exactly); list each origin, e.g. --origin https://www.example.com --origin https://app.example.com", o)
		}
		n, err := directline.NormalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("--origin: %w; e.g. --origin https://www.example.com", err)
		}
		u, err := url.Parse(n)
		if err != nil || !validOriginHost(u.Hostname()) {
			return nil, fmt.Errorf("--origin %q: %q is not a host name or IP address; e.g. --origin https://www.example.com", o, u.Hostname())
		}
		if p := u.Port(); p != "" {
			if v, err := strconv.Atoi(p); err != nil || v < 1 || v > 65535 {
				return nil, fmt.Errorf("--origin %q: port %q is not 1-65535", o, p)
			}
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func originsText(o []string) string {
	if len(o) == 0 {
		return "(none)"
	}
	return strings.Join(o, ", ")
}

var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validOriginHost accepts an IP address or a DNS name of letters, digits
// and hyphens (as browsers send it: IDNs in their xn-- form).
func validOriginHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// botNameFree refuses a bot name another bot has, compared with Unicode
// case folding (the store also refuses it, for ASCII, against races).
func botNameFree(ctx context.Context, st store.Store, name string) error {
	bots, err := st.ListBots(ctx)
	if err != nil {
		return err
	}
	for _, b := range bots {
		if strings.EqualFold(b.Name, name) {
			return nameTakenHint(&store.NameTakenError{Kind: "bot", Name: name, ExistingID: b.ID}, "bot")
		}
	}
	return nil
}

// siteNameFree refuses a site name another site of the same bot has.
func siteNameFree(ctx context.Context, st store.Store, botID, name string) error {
	sites, err := st.ListSites(ctx, botID)
	if err != nil {
		return err
	}
	for _, s := range sites {
		if strings.EqualFold(s.Name, name) {
			return nameTakenHint(&store.NameTakenError{Kind: "site", Name: name, ExistingID: s.ID}, "site")
		}
	}
	return nil
}

// nameTakenHint says what to do about a taken name.
func nameTakenHint(err error, kind string) error {
	if !errors.Is(err, store.ErrNameTaken) {
		return err
	}
	var taken *store.NameTakenError
	if errors.As(err, &taken) {
		err = taken
	}
	return fmt.Errorf("--name: %w (names are compared ignoring case); choose another --name, or use the existing %s", err, kind)
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
			if !namePattern.MatchString(name) {
				return errors.New("--name must be 1-64 letters, digits, spaces or ._'-")
			}
			norm, err := normalizeOrigins(origins)
			if err != nil {
				return err
			}
			policy, err := store.ParseAttachmentURLPolicy(linkPolicy)
			if err != nil {
				return fmt.Errorf("--client-attachment-urls: %w", err)
			}
			st, err := a.openAdminStore(cmd.Context(), sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.GetBot(cmd.Context(), botID); err != nil {
				return fmt.Errorf("--bot %q: %w", botID, err)
			}
			if err := siteNameFree(cmd.Context(), st, botID, name); err != nil {
				return err
			}
			site := store.Site{ID: conversation.NewID(), BotID: botID, Name: name, EnhancedAuth: !noEnhanced, TrustedOrigins: norm, CreatedAt: time.Now().UTC(), ClientAttachmentURLs: policy}
			var secrets []string
			for i := range 2 {
				s, err := identity.NewSecret()
				if err != nil {
					return err
				}
				secrets = append(secrets, s)
				site.SecretHashes[i] = identity.HashSecret(s)
			}
			if err := st.CreateSite(cmd.Context(), site); err != nil {
				return nameTakenHint(err, "site")
			}
			if noEnhanced {
				fmt.Fprintln(a.stderr, "WARNING: enhanced authentication is OFF for this site: clients may choose their own user ids.")
			}
			if !noEnhanced && len(norm) == 0 {
				fmt.Fprintln(a.stderr, "note: no trusted origins: browsers can only use tokens whose generate call listed origins.")
			}
			if policy.Untrusted() {
				fmt.Fprintln(a.stderr, "note: attachment links from clients reach the bot marked \"parleyUntrusted\": true; the bot must not fetch them.")
			}
			out := siteOut(site)
			out.Secrets = secrets
			return a.print(sf.json, out, fmt.Sprintf("site %s created for bot %s\nsecret 1: %s\nsecret 2: %s\nStore them now: Parley keeps only their hashes.\n", site.ID, botID, secrets[0], secrets[1]))
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
			norm, err := normalizeOrigins(setOrigins)
			if err != nil {
				return err
			}
			st, err := a.openAdminStore(cmd.Context(), of.config, of.data)
			if err != nil {
				return err
			}
			defer st.Close()
			site, err := st.GetSite(cmd.Context(), siteID)
			if err != nil {
				return fmt.Errorf("--site %q: %w", siteID, err)
			}
			if err := st.UpdateSitePolicy(cmd.Context(), siteID, site.EnhancedAuth, norm); err != nil {
				return err
			}
			site.TrustedOrigins = norm
			return a.print(of.json, siteJSON{ID: site.ID, BotID: site.BotID, Name: site.Name, EnhancedAuth: site.EnhancedAuth, TrustedOrigins: norm},
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
			policy, err := store.ParseAttachmentURLPolicy(setPolicy)
			if err != nil {
				return fmt.Errorf("--client-attachment-urls: %w", err)
			}
			st, err := a.openAdminStore(cmd.Context(), pf.config, pf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.SetSiteClientAttachmentURLs(cmd.Context(), policySite, policy); err != nil {
				return fmt.Errorf("--site %q: %w", policySite, err)
			}
			site, err := st.GetSite(cmd.Context(), policySite)
			if err != nil {
				return err
			}
			return a.print(pf.json, siteOut(site), fmt.Sprintf("site %s client attachment URLs: %s\n", site.ID, site.ClientAttachmentURLs))
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
			st, err := a.openAdminStore(cmd.Context(), lf.config, lf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			sites, err := st.ListSites(cmd.Context(), listBot)
			if err != nil {
				return err
			}
			out := []siteJSON{}
			var text strings.Builder
			for _, s := range sites {
				out = append(out, siteOut(s))
				fmt.Fprintf(&text, "%s\tbot=%s\t%s\tenhanced=%v\torigins=%s\tclient-attachment-urls=%s\tmasking=%s\tretention=%s\n", s.ID, s.BotID, s.Name, s.EnhancedAuth, strings.Join(s.TrustedOrigins, ","), s.ClientAttachmentURLs, maskingOf(s), s.Retention)
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
			st, err := a.openAdminStore(cmd.Context(), sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			s, err := identity.NewSecret()
			if err != nil {
				return err
			}
			if err := k.set(cmd.Context(), st, id, slot-1, s); err != nil {
				return fmt.Errorf("--%s %q: %w", k.flag, id, err)
			}
			return a.print(sf.json, map[string]any{k.flag: id, "slot": slot, k.secretKey: s},
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
