package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/store"
)

// Site is a site as the admin API and the CLI's --json show it: every
// policy, never a secret (but the two made at creation, shown once).
type Site struct {
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
	// Retention is the site's retention policy.
	Retention *Retention `json:"retention,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
}

// Retention is a site's retention policy as shown.
type Retention struct {
	// Mode is default, after, end-of-conversation or ephemeral.
	Mode string `json:"mode"`
	// After is the period (after; end-of-conversation's cap), as 90d.
	After string `json:"after,omitempty"`
}

// ToRetention is r as shown.
func ToRetention(r store.Retention) *Retention {
	out := &Retention{Mode: string(r.Mode)}
	if r.Mode == store.RetentionDefault {
		out.Mode = "default"
	}
	if r.After > 0 {
		out.After = store.FormatPeriod(r.After)
	}
	return out
}

// MaskingOf is a site's masking policy as shown (the zero value is off).
func MaskingOf(s store.Site) store.MaskingPolicy {
	if s.Masking == "" {
		return store.MaskingOff
	}
	return s.Masking
}

// ToSite is s as shown: every policy.
func ToSite(s store.Site) Site {
	origins := s.TrustedOrigins
	if origins == nil {
		origins = []string{}
	}
	return Site{ID: s.ID, BotID: s.BotID, Name: s.Name, EnhancedAuth: s.EnhancedAuth, TrustedOrigins: origins,
		ClientAttachmentURLs: string(s.ClientAttachmentURLs), Masking: string(MaskingOf(s)), Retention: ToRetention(s.Retention)}
}

func siteTarget(id string) string { return "site:" + id }

// site loads site id for o, in p's scope.
func (o *op) site(ctx context.Context, id string) (store.Site, error) {
	st, err := o.s.d.Store.GetSite(ctx, id)
	if err != nil {
		return st, o.done(ctx, asNotFound(err, "site", id))
	}
	if err := o.scope(ctx, st.BotID, "site", id); err != nil {
		return store.Site{}, err
	}
	return st, nil
}

// SiteBot returns the bot site id belongs to (for the API's scope check).
func (s *Service) SiteBot(ctx context.Context, id string) (string, error) {
	st, err := s.d.Store.GetSite(ctx, id)
	return st.BotID, err
}

// ListSites lists the sites in p's scope (of botID, when given).
func (s *Service) ListSites(ctx context.Context, p Principal, botID string) ([]store.Site, error) {
	o := s.op(p, SitesRead, "list", "sites")
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	if botID != "" && !p.Scoped(botID) {
		return nil, o.scope(ctx, botID, "bot", botID)
	}
	sites, err := s.d.Store.ListSites(ctx, botID)
	if err != nil {
		return nil, o.done(ctx, err)
	}
	out := []store.Site{}
	for _, st := range sites {
		if p.Scoped(st.BotID) {
			out = append(out, st)
		}
	}
	return out, o.done(ctx, nil)
}

// GetSite returns site id.
func (s *Service) GetSite(ctx context.Context, p Principal, id string) (store.Site, error) {
	o := s.op(p, SitesRead, "get", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Site{}, err
	}
	st, err := o.site(ctx, id)
	if err != nil {
		return st, err
	}
	return st, o.done(ctx, nil)
}

// SiteCreate is what a new site needs.
type SiteCreate struct {
	BotID, Name string
	Origins     []string
	// NoEnhancedAuth turns enhanced authentication off.
	NoEnhancedAuth       bool
	ClientAttachmentURLs string
	Masking              string
}

// SiteCreated is a new site and its two secrets (shown once).
type SiteCreated struct {
	Site     store.Site
	Secrets  [2]string
	Warnings []string
}

// View is the new site as shown, with its secrets.
func (c SiteCreated) View() Site {
	out := ToSite(c.Site)
	out.Secrets = []string{c.Secrets[0], c.Secrets[1]}
	out.Warnings = c.Warnings
	return out
}

// CreateSite creates a site of in.BotID with two fresh secrets; the bot
// must be in p's scope.
func (s *Service) CreateSite(ctx context.Context, p Principal, in SiteCreate) (SiteCreated, error) {
	o := s.op(p, SitesWrite, "create", botTarget(in.BotID))
	if err := o.allow(ctx); err != nil {
		return SiteCreated{}, err
	}
	if err := checkName(in.Name); err != nil {
		return SiteCreated{}, o.done(ctx, err)
	}
	norm, err := NormalizeOrigins(in.Origins)
	if err != nil {
		return SiteCreated{}, o.done(ctx, err)
	}
	policy, err := store.ParseAttachmentURLPolicy(in.ClientAttachmentURLs)
	if err != nil {
		return SiteCreated{}, o.done(ctx, invalidf("--client-attachment-urls: %w", err))
	}
	masking := store.MaskingOff
	if in.Masking != "" {
		if masking, err = ParseMasking(in.Masking); err != nil {
			return SiteCreated{}, o.done(ctx, err)
		}
	}
	if _, err := s.d.Store.GetBot(ctx, in.BotID); err != nil {
		return SiteCreated{}, o.done(ctx, &Error{Kind: KindNotFound, Err: fmt.Errorf("--bot %q: %w", in.BotID, err), Public: fmt.Sprintf("no bot %q", in.BotID)})
	}
	if err := o.scope(ctx, in.BotID, "bot", in.BotID); err != nil {
		return SiteCreated{}, err
	}
	var c SiteCreated
	st := s.d.Store
	if err := siteNameFree(ctx, st, in.BotID, "", in.Name); err != nil {
		return c, o.done(ctx, err)
	}
	// One write (the masking policy with the rest): a create that failed
	// half-way would have stored a site whose secrets were never shown.
	site := store.Site{ID: conversation.NewID(), BotID: in.BotID, Name: in.Name, EnhancedAuth: !in.NoEnhancedAuth, TrustedOrigins: norm, CreatedAt: s.d.Now().UTC(),
		ClientAttachmentURLs: policy, Masking: masking}
	for i := range 2 {
		sec, err := identity.NewSecret()
		if err != nil {
			return c, o.done(ctx, err)
		}
		c.Secrets[i] = sec
		site.SecretHashes[i] = identity.HashSecret(sec)
	}
	if err := st.CreateSite(ctx, site); err != nil {
		return c, o.done(ctx, NameTakenHint(err, "site"))
	}
	o.target = siteTarget(site.ID)
	if in.NoEnhancedAuth {
		c.Warnings = append(c.Warnings, "WARNING: enhanced authentication is OFF for this site: clients may choose their own user ids.")
	}
	if !in.NoEnhancedAuth && len(norm) == 0 {
		c.Warnings = append(c.Warnings, "note: no trusted origins: browsers can only use tokens whose generate call listed origins.")
	}
	if policy.Untrusted() {
		c.Warnings = append(c.Warnings, "note: attachment links from clients reach the bot marked \"parleyUntrusted\": true; the bot must not fetch them.")
	}
	c.Site = site
	return c, o.done(ctx, nil)
}

// ParseMasking checks a masking policy name: off, cards or all-pii.
func ParseMasking(v string) (store.MaskingPolicy, error) {
	switch p := store.MaskingPolicy(v); p {
	case store.MaskingOff, store.MaskingCards, store.MaskingAllPII:
		return p, nil
	}
	return "", invalidf("masking %q: use off, cards or all-pii", v)
}

// SiteUpdate is a change to a site: nil fields stay.
type SiteUpdate struct {
	Name                 *string
	EnhancedAuth         *bool
	ClientAttachmentURLs *string
	Masking              *string
}

// UpdateSite changes site id.
func (s *Service) UpdateSite(ctx context.Context, p Principal, id string, in SiteUpdate) (store.Site, error) {
	o := s.op(p, SitesWrite, "update", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Site{}, err
	}
	if in.Name == nil && in.EnhancedAuth == nil && in.ClientAttachmentURLs == nil && in.Masking == nil {
		return store.Site{}, o.done(ctx, invalidf("%w: give --name or --enhanced-auth=true|false (trusted origins: 'parley site set-origins')", ErrNothingToChange))
	}
	if in.Name != nil {
		if err := checkName(*in.Name); err != nil {
			return store.Site{}, o.done(ctx, err)
		}
	}
	var policy store.AttachmentURLPolicy
	if in.ClientAttachmentURLs != nil {
		var err error
		if policy, err = store.ParseAttachmentURLPolicy(*in.ClientAttachmentURLs); err != nil {
			return store.Site{}, o.done(ctx, invalidf("--client-attachment-urls: %w", err))
		}
	}
	var masking store.MaskingPolicy
	if in.Masking != nil {
		var err error
		if masking, err = ParseMasking(*in.Masking); err != nil {
			return store.Site{}, o.done(ctx, err)
		}
	}
	site, err := o.site(ctx, id)
	if err != nil {
		return site, err
	}
	st := s.d.Store
	if in.Name != nil || in.EnhancedAuth != nil {
		if in.Name != nil {
			if err := siteNameFree(ctx, st, site.BotID, id, *in.Name); err != nil {
				return site, o.done(ctx, err)
			}
			site.Name = *in.Name
		}
		if in.EnhancedAuth != nil {
			site.EnhancedAuth = *in.EnhancedAuth
		}
		if err := st.UpdateSite(ctx, id, site.Name, site.EnhancedAuth); err != nil {
			return site, o.done(ctx, asNotFound(NameTakenHint(err, "site"), "site", id))
		}
	}
	if in.ClientAttachmentURLs != nil {
		if err := st.SetSiteClientAttachmentURLs(ctx, id, policy); err != nil {
			return site, o.done(ctx, asNotFound(err, "site", id))
		}
		site.ClientAttachmentURLs = policy
	}
	if in.Masking != nil {
		if err := st.SetSiteMasking(ctx, id, masking); err != nil {
			return site, o.done(ctx, asNotFound(err, "site", id))
		}
		site.Masking = masking
	}
	return site, o.done(ctx, nil)
}

// SetOrigins replaces site id's trusted origins (validated as
// NormalizeOrigins: exact origins, no wildcards). An empty, non-nil list
// clears them; nil is refused (say which, explicitly).
func (s *Service) SetOrigins(ctx context.Context, p Principal, id string, origins []string) (store.Site, error) {
	o := s.op(p, SitesOrigins, "set_origins", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Site{}, err
	}
	if origins == nil {
		return store.Site{}, o.done(ctx, invalidf("no origins given: list every trusted origin, or give an empty list to clear them"))
	}
	norm, err := NormalizeOrigins(origins)
	if err != nil {
		return store.Site{}, o.done(ctx, err)
	}
	site, err := o.site(ctx, id)
	if err != nil {
		return site, err
	}
	if err := s.d.Store.UpdateSitePolicy(ctx, id, site.EnhancedAuth, norm); err != nil {
		return site, o.done(ctx, asNotFound(err, "site", id))
	}
	site.TrustedOrigins = norm
	return site, o.done(ctx, nil)
}

// SetClientAttachmentURLs sets site id's policy for attachment links from
// clients (refuse or untrusted).
func (s *Service) SetClientAttachmentURLs(ctx context.Context, p Principal, id, policy string) (store.Site, error) {
	return s.UpdateSite(ctx, p, id, SiteUpdate{ClientAttachmentURLs: &policy})
}

// SetMasking sets what site id masks in user activities.
func (s *Service) SetMasking(ctx context.Context, p Principal, id string, m store.MaskingPolicy) (store.Site, error) {
	v := string(m)
	return s.UpdateSite(ctx, p, id, SiteUpdate{Masking: &v})
}

// GetRetention returns site id's retention policy.
func (s *Service) GetRetention(ctx context.Context, p Principal, id string) (store.Retention, error) {
	o := s.op(p, RetentionRead, "get", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Retention{}, err
	}
	site, err := o.site(ctx, id)
	if err != nil {
		return store.Retention{}, err
	}
	return site.Retention, o.done(ctx, nil)
}

// RetentionInput is a retention policy as asked: a mode and a period.
type RetentionInput struct {
	// Mode is default, after, end-of-conversation or ephemeral ("" with
	// After: after).
	Mode  string
	After string
}

// ParseRetention checks a retention policy.
func ParseRetention(in RetentionInput) (store.Retention, error) {
	var r store.Retention
	switch in.Mode {
	case "default":
		r.Mode = store.RetentionDefault
	case string(store.RetentionAfter), "":
		r.Mode = store.RetentionAfter
		if in.After == "" {
			return r, invalidf("say how long: --after 30m|12h|90d|2y, --on-end-of-conversation, --ephemeral or --default")
		}
	case string(store.RetentionOnEnd):
		r.Mode = store.RetentionOnEnd
	case string(store.RetentionEphemeral):
		r.Mode = store.RetentionEphemeral
	default:
		return r, invalidf("retention mode %q: use default, after, end-of-conversation or ephemeral", in.Mode)
	}
	if (r.Mode == store.RetentionEphemeral || r.Mode == store.RetentionDefault) && in.After != "" {
		return r, invalidf("--after does not apply to --ephemeral or --default")
	}
	if in.After != "" {
		d, err := store.ParsePeriod(in.After)
		if err != nil {
			return r, invalidf("--after: %w", err)
		}
		r.After = d
	}
	return r, nil
}

// SetRetention sets site id's retention policy (the running server's
// sweeper applies it).
func (s *Service) SetRetention(ctx context.Context, p Principal, id string, r store.Retention) (store.Site, error) {
	o := s.op(p, RetentionWrite, "set", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Site{}, err
	}
	if _, err := o.site(ctx, id); err != nil {
		return store.Site{}, err
	}
	if err := s.d.Store.SetSiteRetention(ctx, id, r); err != nil {
		return store.Site{}, o.done(ctx, &Error{Kind: kindOf(err), Err: err})
	}
	site, err := s.d.Store.GetSite(ctx, id)
	return site, o.done(ctx, asNotFound(err, "site", id))
}

func kindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, store.ErrNotFound) {
		return KindNotFound
	}
	return KindInvalid
}

// SecretSlot says whether a site's secret slot holds a secret, never
// the secret.
type SecretSlot struct {
	Slot int  `json:"slot"`
	Set  bool `json:"set"`
}

// ListSiteSecrets lists site id's two secret slots without their values.
func (s *Service) ListSiteSecrets(ctx context.Context, p Principal, id string) ([]SecretSlot, error) {
	o := s.op(p, SitesSecrets, "list", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	site, err := o.site(ctx, id)
	if err != nil {
		return nil, err
	}
	return []SecretSlot{{1, site.SecretHashes[0] != nil}, {2, site.SecretHashes[1] != nil}}, o.done(ctx, nil)
}

// RotateSiteSecret puts a fresh secret in slot (1 or 2) of site id,
// returned once; the other slot keeps working.
func (s *Service) RotateSiteSecret(ctx context.Context, p Principal, id string, slot int) (string, error) {
	o := s.op(p, SitesSecrets, "create", siteTarget(id))
	o.detail = map[string]string{"slot": fmt.Sprint(slot)}
	if err := o.allow(ctx); err != nil {
		return "", err
	}
	if slot != 1 && slot != 2 {
		return "", o.done(ctx, invalidf("--slot must be 1 or 2"))
	}
	if _, err := o.site(ctx, id); err != nil {
		return "", err
	}
	sec, err := identity.NewSecret()
	if err != nil {
		return "", o.done(ctx, err)
	}
	if err := s.d.Store.SetSiteSecret(ctx, id, slot-1, identity.HashSecret(sec)); err != nil {
		return "", o.done(ctx, &Error{Kind: kindOf(err), Err: fmt.Errorf("--site %q: %w", id, err)})
	}
	return sec, o.done(ctx, nil)
}

// RevokeSiteSecret empties slot (1 or 2) of site id: that secret stops
// working at once (tokens already issued within a few seconds).
func (s *Service) RevokeSiteSecret(ctx context.Context, p Principal, id string, slot int) error {
	o := s.op(p, SitesSecrets, "revoke", siteTarget(id))
	o.detail = map[string]string{"slot": fmt.Sprint(slot)}
	if err := o.allow(ctx); err != nil {
		return err
	}
	if slot != 1 && slot != 2 {
		return o.done(ctx, invalidf("the secret slot must be 1 or 2"))
	}
	if _, err := o.site(ctx, id); err != nil {
		return err
	}
	return o.done(ctx, asNotFound(s.d.Store.SetSiteSecret(ctx, id, slot-1, nil), "site", id))
}

// PlanDeleteSite says what deleting site id would remove, changing
// nothing.
func (s *Service) PlanDeleteSite(ctx context.Context, p Principal, id string) (store.Site, store.Removal, error) {
	o := s.op(p, SitesWrite, "plan_delete", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Site{}, store.Removal{}, err
	}
	site, err := o.site(ctx, id)
	if err != nil {
		return site, store.Removal{}, err
	}
	plan, err := s.d.Store.PlanDeleteSite(ctx, id)
	return site, plan, o.done(ctx, asNotFound(err, "site", id))
}

// DeleteSite deletes site id, its secrets and its conversations in one
// transaction, then scrubs the store's files.
func (s *Service) DeleteSite(ctx context.Context, p Principal, id string) (Deletion, error) {
	o := s.op(p, SitesWrite, "delete", siteTarget(id))
	if err := o.allow(ctx); err != nil {
		return Deletion{}, err
	}
	site, err := o.site(ctx, id)
	if err != nil {
		return Deletion{}, err
	}
	if !Grants(p.Role, ConversationsErase) {
		plan, err := s.d.Store.PlanDeleteSite(ctx, id)
		if err != nil {
			return Deletion{}, o.done(ctx, asNotFound(err, "site", id))
		}
		if err := o.erases(ctx, plan.Conversations); err != nil {
			return Deletion{}, err
		}
	}
	now := s.d.Now().UTC()
	r, err := s.d.Store.DeleteSite(ctx, id, now, store.DeleteOptions{EmptyOnly: !Grants(p.Role, ConversationsErase)})
	if errors.Is(err, store.ErrHasConversations) { // started since the check above
		return Deletion{}, o.erases(ctx, 1)
	}
	if err != nil {
		return Deletion{}, o.done(ctx, asNotFound(err, "site", id))
	}
	d := Deletion{Deleted: "site", ID: id, Name: site.Name, DeletedAt: now, Removed: ToRemoval(r), Store: r, Backups: DeletionBackups}
	d.ScrubErr = s.d.Store.Scrub(ctx)
	d.Scrubbed = d.ScrubErr == nil
	return d, o.done(ctx, nil)
}
