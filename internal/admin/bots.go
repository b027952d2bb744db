package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/store"
)

// Bot is a bot as the admin API and the CLI's --json show it. The
// endpoint is redacted (connector.RedactURL): function keys live in its
// query, and output ends up in tickets and CI logs.
type Bot struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Endpoint       string    `json:"endpoint"`
	InsecureNoAuth bool      `json:"insecureNoAuth"`
	CreatedAt      time.Time `json:"createdAt"`
	// DeliveryTimeout is the bot's own per-attempt timeout ("" when it
	// uses the gateway's default).
	DeliveryTimeout string `json:"deliveryTimeout,omitempty"`
	// Shown once, at creation (or switching to authentication): the
	// client secret and the bot's settings.
	ClientSecret string            `json:"clientSecret,omitempty"`
	Settings     map[string]string `json:"settings,omitempty"`
	Snippet      string            `json:"snippet,omitempty"`
	AgentsSDK    map[string]string `json:"agentsSdkSettings,omitempty"`
	// Warnings are said once, with the answer.
	Warnings []string `json:"warnings,omitempty"`
}

// ToBot is b as shown.
func ToBot(b store.Bot) Bot {
	j := Bot{ID: b.ID, Name: b.Name, Endpoint: connector.RedactURL(b.Endpoint), InsecureNoAuth: b.InsecureNoAuth, CreatedAt: b.CreatedAt}
	if b.DeliveryTimeout > 0 {
		j.DeliveryTimeout = b.DeliveryTimeout.String()
	}
	return j
}

// BotCreate is what a new bot needs.
type BotCreate struct {
	Name, Endpoint string
	// PublicURL overrides the configured public URL in the settings.
	PublicURL       string
	InsecureNoAuth  bool
	DeliveryTimeout time.Duration
}

// BotSecretResult is a bot with the client secret just made (shown once)
// and the public URL its settings use.
type BotSecretResult struct {
	Bot          store.Bot
	ClientSecret string
	PublicURL    string
	Warnings     []string
	// AuthChanged: an update switched authentication on or off.
	AuthChanged bool
}

// View is the bot as shown, with the secret and its settings when one
// was made (agentsSdkSettings and the snippet are the CLI's).
func (r BotSecretResult) View() Bot {
	out := ToBot(r.Bot)
	out.Warnings = r.Warnings
	if r.ClientSecret != "" {
		out.ClientSecret, out.Settings = r.ClientSecret, map[string]string{}
		for _, st := range botauth.BotSettings(r.PublicURL, r.Bot.ID, r.ClientSecret) {
			out.Settings[st.Name] = st.Value
		}
	}
	return out
}

func botTarget(id string) string { return "bot:" + id }

// ListBots lists the bots in p's scope.
func (s *Service) ListBots(ctx context.Context, p Principal) ([]store.Bot, error) {
	o := s.op(p, BotsRead, "list", "bots")
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	bots, err := s.d.Store.ListBots(ctx)
	if err != nil {
		return nil, o.done(ctx, err)
	}
	out := []store.Bot{}
	for _, b := range bots {
		if p.Scoped(b.ID) {
			out = append(out, b)
		}
	}
	return out, o.done(ctx, nil)
}

// bot loads bot id for o, in p's scope.
func (o *op) bot(ctx context.Context, id string) (store.Bot, error) {
	b, err := o.s.d.Store.GetBot(ctx, id)
	if err != nil {
		return b, o.done(ctx, asNotFound(err, "bot", id))
	}
	if err := o.scope(ctx, b.ID, "bot", id); err != nil {
		return store.Bot{}, err
	}
	return b, nil
}

// GetBot returns bot id.
func (s *Service) GetBot(ctx context.Context, p Principal, id string) (store.Bot, error) {
	o := s.op(p, BotsRead, "get", botTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Bot{}, err
	}
	b, err := o.bot(ctx, id)
	if err != nil {
		return b, err
	}
	return b, o.done(ctx, nil)
}

// errInsecureProduction refuses an insecure bot under a production
// configuration.
func (s *Service) errInsecureProduction(what string) error {
	return invalidf("--insecure-no-auth: %s serves TLS (production), where 'parley serve' refuses insecure bots and a running server would call this one without authentication: %s. For development, use a configuration with insecure_http: true on loopback", s.d.ConfigName, what)
}

// CreateBot registers a bot. A new bot is a gateway-wide object: a
// principal scoped to some bots may not create one (it would be outside
// its own scope); an unscoped owner, admin or operator may.
func (s *Service) CreateBot(ctx context.Context, p Principal, in BotCreate) (BotSecretResult, error) {
	o := s.op(p, BotsWrite, "create", "bots")
	if err := o.allow(ctx); err != nil {
		return BotSecretResult{}, err
	}
	if len(p.Bots) > 0 {
		_ = o.record(ctx, audit.Denied, "scope")
		return BotSecretResult{}, &Error{Kind: KindForbidden, Err: fmt.Errorf("%w: a principal scoped to some bots may not register a new bot", ErrForbidden),
			Public: "your bot scope does not allow registering a new bot: ask an unscoped operator"}
	}
	r, err := s.createBot(ctx, in)
	if err == nil {
		o.target = botTarget(r.Bot.ID)
	}
	return r, o.done(ctx, err)
}

func (s *Service) createBot(ctx context.Context, in BotCreate) (BotSecretResult, error) {
	var r BotSecretResult
	if err := checkName(in.Name); err != nil {
		return r, err
	}
	if in.InsecureNoAuth && s.d.ConfigName != "" && !s.d.Config.InsecureHTTP {
		return r, s.errInsecureProduction("nothing was created")
	}
	if err := CheckEndpointHost(in.Endpoint); err != nil {
		return r, err
	}
	w, err := s.checkEndpoint(ctx, in.Endpoint)
	if err != nil {
		return r, err
	}
	if w != "" {
		r.Warnings = append(r.Warnings, w)
	}
	if err := ValidEndpoint(in.Endpoint, in.InsecureNoAuth); err != nil {
		return r, err
	}
	if err := CheckDeliveryTimeout(in.DeliveryTimeout); err != nil {
		return r, err
	}
	st := s.d.Store
	if err := botNameFree(ctx, st, "", in.Name); err != nil {
		return r, err
	}
	// The settings carry Parley's public URL: never a guessed one (the
	// secret is shown once; wrong settings with it would need a new one).
	if !in.InsecureNoAuth {
		if r.PublicURL, err = s.d.PublicURL(in.PublicURL, s.d.Config.PublicURL); err != nil {
			return r, invalid(err)
		}
	}
	// One write (the delivery timeout with the rest): a create that failed
	// half-way would have stored a bot whose secret was never shown.
	b := store.Bot{ID: s.d.NewAppID(), Name: in.Name, Endpoint: in.Endpoint, InsecureNoAuth: in.InsecureNoAuth, CreatedAt: s.d.Now().UTC(),
		DeliveryTimeout: in.DeliveryTimeout}
	if !in.InsecureNoAuth {
		if r.ClientSecret, err = identity.NewSecret(); err != nil {
			return r, err
		}
		b.SecretHashes[0] = botauth.HashClientSecret(r.ClientSecret)
	}
	if err := st.CreateBot(ctx, b); err != nil {
		return r, NameTakenHint(err, "bot")
	}
	if in.InsecureNoAuth {
		r.Warnings = append(r.Warnings, "WARNING: this bot is INSECURE: Parley calls it without a token and accepts its replies without one (loopback development only; 'parley serve' refuses to run with it unless insecure_http is set).")
	}
	r.Bot = b
	return r, nil
}

// BotUpdate is a change to a bot: nil fields stay.
type BotUpdate struct {
	Name, Endpoint *string
	// Auth switches an insecure bot to authentication (a new client
	// secret); InsecureNoAuth switches a loopback bot to none.
	Auth, InsecureNoAuth bool
	// DeliveryTimeout: 0 puts the gateway's default back.
	DeliveryTimeout *time.Duration
	PublicURL       string
}

// ErrNothingToChange is an update that changes nothing.
var ErrNothingToChange = errors.New("nothing to change")

// UpdateBot changes bot id.
func (s *Service) UpdateBot(ctx context.Context, p Principal, id string, in BotUpdate) (BotSecretResult, error) {
	o := s.op(p, BotsWrite, "update", botTarget(id))
	if err := o.allow(ctx); err != nil {
		return BotSecretResult{}, err
	}
	if in.Name == nil && in.Endpoint == nil && !in.Auth && !in.InsecureNoAuth && in.DeliveryTimeout == nil {
		return BotSecretResult{}, o.done(ctx, invalidf("%w: give --name, --endpoint, --auth, --insecure-no-auth or --delivery-timeout", ErrNothingToChange))
	}
	if in.DeliveryTimeout != nil {
		if err := CheckDeliveryTimeout(*in.DeliveryTimeout); err != nil {
			return BotSecretResult{}, o.done(ctx, err)
		}
	}
	if in.Auth && in.InsecureNoAuth {
		return BotSecretResult{}, o.done(ctx, invalidf("--auth and --insecure-no-auth contradict each other: give one"))
	}
	if in.Name != nil {
		if err := checkName(*in.Name); err != nil {
			return BotSecretResult{}, o.done(ctx, err)
		}
	}
	if in.InsecureNoAuth && s.d.ConfigName != "" && !s.d.Config.InsecureHTTP {
		return BotSecretResult{}, o.done(ctx, s.errInsecureProduction("nothing changed"))
	}
	b, err := o.bot(ctx, id)
	if err != nil {
		return BotSecretResult{}, err
	}
	r, err := s.updateBot(ctx, b, in)
	return r, o.done(ctx, err)
}

func (s *Service) updateBot(ctx context.Context, b store.Bot, in BotUpdate) (BotSecretResult, error) {
	var r BotSecretResult
	id, st := b.ID, s.d.Store
	if in.Auth && !b.InsecureNoAuth {
		return r, invalidf("bot %s already uses authentication: nothing changed. To replace a client secret, use 'parley bot secret regenerate --bot %s --slot 1' (or 2)", id, id)
	}
	was := b
	if in.Name != nil {
		if err := botNameFree(ctx, st, id, *in.Name); err != nil {
			return r, err
		}
		b.Name = *in.Name
	}
	if in.Endpoint != nil {
		b.Endpoint = *in.Endpoint
	}
	switch {
	case in.Auth:
		b.InsecureNoAuth = false
	case in.InsecureNoAuth:
		b.InsecureNoAuth = true
	}
	r.AuthChanged = b.InsecureNoAuth != was.InsecureNoAuth
	if in.Endpoint != nil || r.AuthChanged {
		if in.Endpoint != nil {
			if err := CheckEndpointHost(b.Endpoint); err != nil {
				return r, err
			}
			w, err := s.checkEndpoint(ctx, b.Endpoint)
			if err != nil {
				return r, err
			}
			if w != "" {
				r.Warnings = append(r.Warnings, w)
			}
		}
		if err := ValidEndpoint(b.Endpoint, b.InsecureNoAuth); err != nil {
			switch {
			case in.Endpoint == nil:
				return r, invalidf("%w (the bot's current endpoint; give a loopback --endpoint too)", err)
			case b.InsecureNoAuth && !in.InsecureNoAuth:
				return r, invalidf("%w; the bot is registered with --insecure-no-auth: add --auth to switch it to authentication", err)
			}
			return r, err
		}
	}
	var err error
	if r.AuthChanged && !b.InsecureNoAuth {
		if r.PublicURL, err = s.d.PublicURL(in.PublicURL, s.d.Config.PublicURL); err != nil {
			return r, invalid(err)
		}
		if r.ClientSecret, err = identity.NewSecret(); err != nil {
			return r, err
		}
		b.SecretHashes = [2][]byte{botauth.HashClientSecret(r.ClientSecret), nil}
	} else if r.AuthChanged {
		b.SecretHashes = [2][]byte{}
	}
	if in.DeliveryTimeout != nil {
		b.DeliveryTimeout = *in.DeliveryTimeout // 0 puts the gateway's default back
	}
	// A switch of authentication is one write, the delivery timeout with
	// it: a failure half-way would have left a bot whose new secret nobody
	// saw. Otherwise the timeout follows the row (a failure there leaves
	// the other changes made, and says so).
	if r.AuthChanged {
		err = st.UpdateBotAuth(ctx, b)
	} else {
		err = st.UpdateBot(ctx, b)
	}
	if err != nil {
		return r, asNotFound(NameTakenHint(err, "bot"), "bot", id)
	}
	if in.DeliveryTimeout != nil && !r.AuthChanged {
		if err := st.SetBotDeliveryTimeout(ctx, id, *in.DeliveryTimeout); err != nil {
			return r, asNotFound(fmt.Errorf("the other changes were made; set the delivery timeout: %w", err), "bot", id)
		}
	}
	if b.InsecureNoAuth && r.AuthChanged {
		r.Warnings = append(r.Warnings, "WARNING: this bot is now INSECURE: Parley calls it without a token and accepts its replies without one; its client secrets are revoked (loopback development only; 'parley serve' refuses to run with it unless insecure_http is set).")
	}
	r.Bot = b
	return r, nil
}

// RotateBotSecret replaces the client secret in slot (1 or 2) with a new
// one, returned once; the other slot keeps working.
func (s *Service) RotateBotSecret(ctx context.Context, p Principal, id string, slot int) (string, error) {
	o := s.op(p, BotsSecrets, "rotate_secret", botTarget(id))
	o.detail = map[string]string{"slot": fmt.Sprint(slot)}
	if err := o.allow(ctx); err != nil {
		return "", err
	}
	if slot != 1 && slot != 2 {
		return "", o.done(ctx, invalidf("--slot must be 1 or 2"))
	}
	b, err := o.bot(ctx, id)
	if err != nil {
		return "", err
	}
	if b.InsecureNoAuth {
		return "", o.done(ctx, invalidf("the bot is registered without authentication; it has no client secrets. Switch it to authentication with 'parley bot update %s --auth' (prints a new client secret)", id))
	}
	secret, err := identity.NewSecret()
	if err != nil {
		return "", o.done(ctx, err)
	}
	if err := s.d.Store.SetBotSecret(ctx, id, slot-1, botauth.HashClientSecret(secret)); err != nil {
		return "", o.done(ctx, asNotFound(err, "bot", id))
	}
	return secret, o.done(ctx, nil)
}

// Deletion is what deleting a bot or a site removed.
type Deletion struct {
	Deleted   string    `json:"deleted"` // "bot" or "site"
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	DeletedAt time.Time `json:"deletedAt"`
	Removed   Removal   `json:"removed"`
	Scrubbed  bool      `json:"scrubbed"`
	Backups   string    `json:"backups"`
	// Plan is what would go (dry run): nothing was deleted.
	Plan  *Removal      `json:"plan,omitempty"`
	Store store.Removal `json:"-"`
	// ScrubErr is why scrubbing the store's files failed, if it did.
	ScrubErr error `json:"-"`
}

// Removal is what a bot or site deletion removes (plan) or removed.
type Removal struct {
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

// ToRemoval is r as shown.
func ToRemoval(r store.Removal) Removal {
	sites := r.SiteIDs
	if sites == nil {
		sites = []string{}
	}
	return Removal{Bot: r.BotID, Sites: sites, Conversations: r.Conversations, Activities: r.Activities, Attachments: r.Attachments,
		Sessions: r.Sessions, DataKeys: r.DataKeys, Deliveries: r.OutboxItems, DeadLetters: r.DeadLetters, SecretsRevoked: r.SecretSlots,
		OAuthConnections: r.OAuthConnections, UserTokens: r.UserTokens}
}

// DeletionBackups says what a deletion cannot reach.
const DeletionBackups = "Database backups taken before now keep copies until the key-encryption keys are rotated and destroyed ('parley keys'); see 'parley erase' for what backups hold."

// ErrHasSites refuses deleting a bot that has sites without cascade.
type ErrHasSites struct {
	BotID string
	Sites []string
}

func (e *ErrHasSites) Error() string {
	return fmt.Sprintf("bot %s still has %d site(s) (%s): nothing deleted. Delete them first ('parley site delete ID'), or delete the bot with its sites: 'parley bot delete %s --cascade'",
		e.BotID, len(e.Sites), strings.Join(e.Sites, ", "), e.BotID)
}

// PlanDeleteBot says what deleting bot id (with its sites) would remove,
// changing nothing.
func (s *Service) PlanDeleteBot(ctx context.Context, p Principal, id string) (store.Bot, store.Removal, error) {
	o := s.op(p, BotsWrite, "plan_delete", botTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Bot{}, store.Removal{}, err
	}
	b, err := o.bot(ctx, id)
	if err != nil {
		return b, store.Removal{}, err
	}
	plan, err := s.d.Store.PlanDeleteBot(ctx, id)
	if err != nil {
		return b, plan, o.done(ctx, asNotFound(err, "bot", id))
	}
	return b, plan, o.done(ctx, nil)
}

// DeleteBot deletes bot id, its client secrets and everything stored for
// it in one transaction; a bot with sites only with cascade (which deletes
// them too). Then the store's files are scrubbed.
func (s *Service) DeleteBot(ctx context.Context, p Principal, id string, cascade bool) (Deletion, error) {
	o := s.op(p, BotsWrite, "delete", botTarget(id))
	o.detail = map[string]string{"cascade": fmt.Sprint(cascade)}
	if err := o.allow(ctx); err != nil {
		return Deletion{}, err
	}
	b, err := o.bot(ctx, id)
	if err != nil {
		return Deletion{}, err
	}
	if !Grants(p.Role, ConversationsErase) {
		plan, err := s.d.Store.PlanDeleteBot(ctx, id)
		if err != nil {
			return Deletion{}, o.done(ctx, asNotFound(err, "bot", id))
		}
		if err := o.erases(ctx, plan.Conversations); err != nil {
			return Deletion{}, err
		}
	}
	now := s.d.Now().UTC()
	r, err := s.d.Store.DeleteBot(ctx, id, now, store.DeleteOptions{Cascade: cascade, EmptyOnly: !Grants(p.Role, ConversationsErase)})
	if errors.Is(err, store.ErrHasConversations) { // started since the check above
		return Deletion{}, o.erases(ctx, 1)
	}
	if errors.Is(err, store.ErrHasSites) {
		return Deletion{}, o.done(ctx, conflict(&ErrHasSites{BotID: id, Sites: r.SiteIDs}))
	}
	if err != nil {
		return Deletion{}, o.done(ctx, asNotFound(err, "bot", id))
	}
	d := Deletion{Deleted: "bot", ID: id, Name: b.Name, DeletedAt: now, Removed: ToRemoval(r), Store: r, Backups: DeletionBackups}
	d.ScrubErr = s.d.Store.Scrub(ctx)
	d.Scrubbed = d.ScrubErr == nil
	return d, o.done(ctx, nil)
}
