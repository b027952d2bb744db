package directline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
)

// tokenParams is TokenParameters; encoding/json matches member names
// case-insensitively, so the PascalCase of the official samples binds too.
type tokenParams struct {
	User *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"user"`
	TrustedOrigins []string `json:"trustedOrigins"`
	Locale         string   `json:"locale"`
	// ConversationID (generate only, a Parley extension) asks for a token
	// for an existing conversation of the site and its bound user: resuming
	// it later, within its retention (see resumable).
	ConversationID string `json:"conversationId"`
}

// maxParamsBody bounds token and start request bodies.
const maxParamsBody = 16 << 10

func parseParams(w http.ResponseWriter, r *http.Request) (tokenParams, *apiError) {
	var p tokenParams
	body, e := readBody(w, r, maxParamsBody)
	if e != nil {
		return p, e
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, errf(http.StatusBadRequest, "BadArgument", "request body must be a JSON TokenParameters object")
	}
	if len(p.Locale) > 64 {
		return p, errf(http.StatusBadRequest, "BadArgument", "locale is too long")
	}
	return p, nil
}

// validUserID: printable, no spaces or controls, at most 128 bytes.
func validUserID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// reservedUserID reports whether a client-chosen user id reads as one
// Parley binds in tokens ("dl_…"): exactly, or to a bot or back end that
// compares ids ignoring case or after Unicode normalization ("DL_x",
// fullwidth "ｄｌ_x").
func reservedUserID(id string) bool {
	n := norm.NFKC.String(id)
	return len(n) >= 3 && strings.EqualFold(n[:3], "dl_")
}

// bindUser decides the user id a new token or conversation binds.
func bindUser(site store.Site, p tokenParams) (id, name string, e *apiError) {
	if p.User == nil || p.User.ID == "" {
		if site.EnhancedAuth {
			return "", "", errf(http.StatusBadRequest, "BadArgument", "tokenParameters is missing User.")
		}
		return "", "", nil
	}
	if !validUserID(p.User.ID) {
		return "", "", errf(http.StatusBadRequest, "BadArgument", "user id must be 1-128 printable characters without spaces")
	}
	if site.EnhancedAuth && !strings.HasPrefix(p.User.ID, "dl_") {
		return "", "", errf(http.StatusBadRequest, "BadArgument", "user id must start with dl_ when enhanced authentication is on")
	}
	if len(p.User.Name) > 256 {
		return "", "", errf(http.StatusBadRequest, "BadArgument", "user name is too long")
	}
	return p.User.ID, p.User.Name, nil
}

// bindOrigins: a site's static list wins; otherwise the caller's list.
func bindOrigins(site store.Site, p tokenParams) ([]string, *apiError) {
	if len(site.TrustedOrigins) > 0 {
		return site.TrustedOrigins, nil
	}
	if len(p.TrustedOrigins) > 32 {
		return nil, errf(http.StatusBadRequest, "BadArgument", "at most 32 trusted origins")
	}
	out := make([]string, 0, len(p.TrustedOrigins))
	for _, o := range p.TrustedOrigins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "BadArgument", "trustedOrigins: %v", err)
		}
		out = append(out, n)
	}
	return out, nil
}

type tokenResponse struct {
	ConversationID     string `json:"conversationId"`
	Token              string `json:"token"`
	ExpiresIn          int    `json:"expires_in"`
	StreamURL          string `json:"streamUrl,omitempty"`
	ReferenceGrammarID string `json:"referenceGrammarId,omitempty"`
}

func (a *API) issueConversationToken(c identity.Claims) (string, *apiError) {
	c.Scope = identity.ScopeConversation
	tok, exp, err := a.issuer.Issue(c, a.cfg.TokenTTL)
	if err != nil {
		return "", errf(http.StatusInternalServerError, "ServiceError", "token issuance failed")
	}
	a.rememberOrigins(c.Origins, exp) // their preflights are granted
	return tok, nil
}

// generate: POST /tokens/generate, secret only.
func (a *API) generate(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteGenerate) {
		return
	}
	p, e := a.authenticate(r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	if !p.secret {
		a.fail(w, r, errf(http.StatusForbidden, "BadArgument", "Cannot use a token to generate a token; a secret is required"))
		return
	}
	if !a.allowIn(w, r, RouteGenerate, p.site.ID) {
		return
	}
	if e := checkOrigin(r, p.site, identity.Claims{}); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	params, e := parseParams(w, r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	user, _, e := bindUser(p.site, params)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	origins, e := bindOrigins(p.site, params)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	conv := conversation.NewID()
	if params.ConversationID != "" {
		if e := a.resumable(r.Context(), p.site, params.ConversationID, user); e != nil {
			a.fail(w, r, e)
			return
		}
		conv = params.ConversationID
	}
	tok, e := a.issueConversationToken(identity.Claims{Bot: p.site.BotID, Site: p.site.ID, Conv: conv, User: user, Origins: origins})
	if e != nil {
		a.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{ConversationID: conv, Token: tok, ExpiresIn: int(a.cfg.TokenTTL.Seconds())})
}

// resumable checks that the site's backend may mint a token for the
// existing conversation id for user: the conversation exists (within its
// retention), belongs to this site, and is bound to this very user (an
// unbound conversation only to a request that names no user). Another
// site's conversation is answered like a missing one.
func (a *API) resumable(ctx context.Context, site store.Site, id, user string) *apiError {
	if !conversation.ValidID(id) {
		return errf(http.StatusBadRequest, "BadArgument", "conversationId is not a valid conversation id")
	}
	c, err := a.st.GetConversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.SiteID != site.ID || c.BotID != site.BotID)) {
		return errf(http.StatusNotFound, "BadArgument", "Conversation not found")
	}
	if err != nil {
		return errf(http.StatusInternalServerError, "ServiceError", "conversation lookup failed")
	}
	if c.UserID != user {
		return errf(http.StatusForbidden, "BadArgument", "the conversation belongs to another user")
	}
	return nil
}

// refresh: POST /tokens/refresh, token only.
func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteRefresh) {
		return
	}
	p, e := a.authenticate(r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	if p.secret {
		a.fail(w, r, errf(http.StatusForbidden, "BadArgument", "A token is required to refresh; secrets do not expire"))
		return
	}
	if !a.allowIn(w, r, RouteRefresh, p.claims.Conv) {
		return
	}
	// A deleted conversation's tokens are not renewed: none outlives its
	// tombstone (retention.tombstones_for >= the longest token lifetime).
	if deleted, err := a.st.ConversationDeleted(r.Context(), p.claims.Conv); err != nil {
		a.internal(w, r, err)
		return
	} else if deleted {
		a.fail(w, r, errf(http.StatusNotFound, "BadArgument", "Conversation not found"))
		return
	}
	if e := checkOrigin(r, p.site, p.claims); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	tok, e := a.issueConversationToken(p.claims)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{ConversationID: p.claims.Conv, Token: tok, ExpiresIn: int(a.cfg.TokenTTL.Seconds())})
}

// streamURL mints a stream URL for conv starting after watermark wm.
func (a *API) streamURL(c identity.Claims, wm int64, wmParam string) (string, *apiError) {
	sc := c
	sc.Scope = identity.ScopeStream
	sc.Watermark = &wm
	tok, _, err := a.issuer.Issue(sc, a.cfg.StreamTokenTTL)
	if err != nil {
		return "", errf(http.StatusInternalServerError, "ServiceError", "token issuance failed")
	}
	base := a.cfg.PublicURL
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return strings.TrimRight(base, "/") + "/v3/directline/conversations/" + c.Conv + "/stream?watermark=" + url.QueryEscape(wmParam) + "&t=" + tok, nil
}

// start: POST /conversations.
func (a *API) start(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteStart) {
		return
	}
	p, e := a.authenticate(r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	// A secret starts a new conversation each time: the site's budget. A
	// token starts (then resumes) its own conversation only, so it is
	// counted by that conversation: a visitor resuming its conversation
	// must not spend the site's budget for everyone else.
	startKey := p.site.ID
	if !p.secret {
		startKey = p.site.ID + "/" + p.claims.Conv
	}
	if !a.allowIn(w, r, RouteStart, startKey) {
		return
	}
	if e := checkOrigin(r, p.site, p.claims); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	params, e := parseParams(w, r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	var claims identity.Claims
	if p.secret {
		user, _, e := bindUser(p.site, params)
		if e != nil {
			a.fail(w, r, e)
			return
		}
		origins, e := bindOrigins(p.site, params)
		if e != nil {
			a.fail(w, r, e)
			return
		}
		claims = identity.Claims{Bot: p.site.BotID, Site: p.site.ID, Conv: conversation.NewID(), User: user, Origins: origins}
	} else {
		// The token's binding wins over anything in the body.
		claims = p.claims
	}
	ctx := r.Context()
	created, err := a.st.CreateConversation(ctx, store.Conversation{ID: claims.Conv, BotID: claims.Bot, SiteID: claims.Site, UserID: claims.User, CreatedAt: time.Now().UTC()})
	if errors.Is(err, store.ErrExists) {
		a.fail(w, r, errf(http.StatusConflict, "BadArgument", "conversation already exists with another binding"))
		return
	}
	if errors.Is(err, store.ErrNotFound) { // deleted (retention, erasure): its tokens are void
		a.fail(w, r, errf(http.StatusNotFound, "BadArgument", "Conversation not found"))
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	wm := conversation.NoWatermark
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		if wm, err = a.st.Head(ctx, claims.Conv); err != nil {
			a.internal(w, r, err)
			return
		}
	} else if err := a.conversationUpdate(ctx, claims, params.Locale); err != nil {
		a.internal(w, r, err)
		return
	}
	// The user id and the address go through the redacting handler as
	// keyed pseudonyms (never in the clear).
	if a.logger.Enabled(ctx, slog.LevelDebug) {
		a.logger.Debug("conversation started", "conversation", claims.Conv, "site", claims.Site, "resumed", !created,
			redact.User(claims.User), redact.Client(a.clientAddr(r).String()))
	}
	tok, e := a.issueConversationToken(claims)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	su, e := a.streamURL(claims, wm, "-")
	if e != nil {
		a.fail(w, r, e)
		return
	}
	writeJSON(w, status, tokenResponse{ConversationID: claims.Conv, Token: tok, ExpiresIn: int(a.cfg.TokenTTL.Seconds()),
		StreamURL: su, ReferenceGrammarID: referenceGrammarID})
}

// referenceGrammarID is a fixed GUID: Parley has no speech grammar.
const referenceGrammarID = "00000000-0000-0000-0000-000000000000"

// conversationUpdate enqueues the start notification for the bot:
// membersAdded [bot, user] when the user is known, as the live service does.
func (a *API) conversationUpdate(ctx context.Context, c identity.Claims, locale string) error {
	bot, err := a.st.GetBot(ctx, c.Bot)
	if err != nil {
		return err
	}
	botAcc := conversation.Account{ID: bot.ID, Name: bot.Name, Role: "bot"}
	members := []conversation.Account{{ID: bot.ID, Name: bot.Name}}
	from := conversation.Account{ID: c.Conv}
	if c.User != "" {
		members = append(members, conversation.Account{ID: c.User})
		from = conversation.Account{ID: c.User, Role: "user"}
	}
	act := conversation.Activity{}
	act.Set("type", "conversationUpdate")
	act.Set("membersAdded", members)
	act.Set("from", from)
	act.Set("recipient", botAcc)
	act.Set("channelId", a.cfg.ChannelID)
	act.Set("serviceUrl", a.cfg.ServiceURL())
	if locale != "" {
		act.Set("locale", locale)
	}
	// The store hands the committed item to the delivery worker.
	return a.log.Deliver(ctx, c.Conv, bot.ID, act)
}

// reconnect: GET /conversations/{id}?watermark=.
func (a *API) reconnect(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteReconnect) {
		return
	}
	p, e := a.authenticate(r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	if p.secret && p.site.EnhancedAuth {
		a.fail(w, r, errf(http.StatusBadRequest, "MissingProperty", "Missing user ID"))
		return
	}
	id := r.PathValue("id")
	c, e := a.conversationFor(r.Context(), p, id)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	claims := p.claims
	if p.secret {
		claims = identity.Claims{Bot: c.BotID, Site: c.SiteID, Conv: c.ID, User: c.UserID, Origins: p.site.TrustedOrigins}
	}
	if e := checkOrigin(r, p.site, claims); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	if !a.allowIn(w, r, RouteReconnect, c.ID) {
		return
	}
	wmParam := r.URL.Query().Get("watermark")
	wm, err := conversation.ParseWatermark(wmParam)
	if err != nil {
		a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "%v", err))
		return
	}
	tok, e := a.issueConversationToken(claims)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	if wmParam == "" {
		wmParam = "-"
	}
	su, e := a.streamURL(claims, wm, wmParam)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{ConversationID: c.ID, Token: tok, ExpiresIn: int(a.cfg.TokenTTL.Seconds()),
		StreamURL: su, ReferenceGrammarID: referenceGrammarID})
}

// authorized runs the common checks of the per-conversation routes.
func (a *API) authorized(w http.ResponseWriter, r *http.Request) (principal, store.Conversation, bool) {
	p, e := a.authenticate(r)
	if e != nil {
		a.fail(w, r, e)
		return p, store.Conversation{}, false
	}
	c, e := a.conversationFor(r.Context(), p, r.PathValue("id"))
	if e != nil {
		a.fail(w, r, e)
		return p, c, false
	}
	claims := p.claims
	if p.secret {
		claims.Origins = p.site.TrustedOrigins
	}
	if e := checkOrigin(r, p.site, claims); e != nil {
		a.refuseOrigin(w, r, e)
		return p, c, false
	}
	return p, c, true
}

// postActivity: POST /conversations/{id}/activities.
func (a *API) postActivity(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RoutePost) {
		return
	}
	p, c, ok := a.authorized(w, r)
	if !ok || !a.allowIn(w, r, RoutePost, c.ID) {
		return
	}
	body, e := readBody(w, r, int64(a.cfg.Limits.MaxBytes))
	if e != nil {
		a.fail(w, r, e)
		return
	}
	act, err := conversation.Parse(body, a.cfg.Limits)
	if err != nil {
		a.fail(w, r, validationError(err))
		return
	}
	if e := checkClientLinks(p.site, act); e != nil {
		a.fail(w, r, e)
		return
	}
	a.submit(w, r, p, c, act, nil)
}

func validationError(err error) *apiError {
	var ve *conversation.ValidationError
	if errors.As(err, &ve) && ve.Missing {
		return errf(http.StatusBadRequest, "MissingProperty", "%s", ve.Error())
	}
	return errf(http.StatusBadRequest, "BadArgument", "%s", err.Error())
}

// botFile is an uploaded file as the bot will fetch it.
type botFile struct {
	index int // position in attachments
	url   string
	// file is stored with the activity, in the append's transaction.
	file store.Attachment
}

// submit is the common send path of POST activities and upload: enhance,
// append durably with the bot delivery, wait (bounded) for the bot.
func (a *API) submit(w http.ResponseWriter, r *http.Request, p principal, c store.Conversation, act conversation.Activity, files []botFile) {
	ctx := r.Context()
	// Enhanced authentication: the sender is the bound user, whatever the
	// client claims.
	from := act.From()
	switch {
	case c.UserID != "":
		from.ID = c.UserID
	case from.ID == "":
		a.fail(w, r, errf(http.StatusBadRequest, "MissingProperty", "from.id is required when the token binds no user"))
		return
	case reservedUserID(from.ID):
		a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "dl_ user ids are reserved for ids bound in a token"))
		return
	case !validUserID(from.ID):
		a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "from.id is not a valid user id"))
		return
	}
	from.Role = "user"
	act.Set("from", from)
	// After from is set: its name is masked too.
	if e := maskActivity(p.site.Masking, act); e != nil {
		a.fail(w, r, e)
		return
	}
	act.Set("channelId", a.cfg.ChannelID)
	act.Set("serviceUrl", a.cfg.ServiceURL())
	delete(act, "recipient")
	delete(act, "callerId")
	bot, err := a.st.GetBot(ctx, c.BotID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	vis := store.VisibleAll
	if act.Type() == "typing" {
		vis = store.VisibleStream
	}
	item := conversation.Item{Activity: act, Visibility: vis, BotID: bot.ID, ToBot: func(s conversation.Activity) (conversation.Activity, error) {
		s.Set("recipient", conversation.Account{ID: bot.ID, Name: bot.Name, Role: "bot"})
		if len(files) > 0 {
			if err := setBotURLs(s, files); err != nil {
				return nil, err
			}
		}
		if err := markClientLinks(s, files); err != nil {
			return nil, err
		}
		return s, nil
	}}
	for _, f := range files {
		item.Attachments = append(item.Attachments, f.file)
	}
	ids, err := a.log.Append(ctx, c.ID, []conversation.Item{item})
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile (retention, erasure)
		a.fail(w, r, errf(http.StatusNotFound, "BadArgument", "Conversation not found"))
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	id := ids[0]
	result, cancel := a.delivery.Watch(id)
	defer cancel()
	timer := time.NewTimer(a.cfg.BotWait)
	defer timer.Stop()
	select {
	case err := <-result:
		var refused interface{ ParleyRefused() bool }
		var unreachable interface{ BotUnreachable() string }
		if errors.As(err, &unreachable) {
			a.fail(w, r, errf(http.StatusBadGateway, "BotRejectedActivity", "Failed to send activity: the bot is unreachable: %s; the activity is stored and will be delivered when the bot can be reached", unreachable.BotUnreachable()))
			return
		}
		if errors.As(err, &refused) {
			a.fail(w, r, errf(http.StatusBadGateway, "ServiceError", "Failed to send activity: Parley refused to connect to the bot's endpoint (its address or scheme is not allowed; the gateway's log says why)"))
			return
		}
		if err != nil {
			a.fail(w, r, errf(http.StatusBadGateway, "BotRejectedActivity", "Failed to send activity: bot returned an error"))
			return
		}
	case <-timer.C:
		a.fail(w, r, errf(http.StatusBadGateway, "BotRejectedActivity", "Failed to send activity: bot timed out"))
		return
	case <-ctx.Done():
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// setBotURLs points the bot's copy of uploaded attachments at their
// download URLs.
func setBotURLs(a conversation.Activity, files []botFile) error {
	var atts []map[string]json.RawMessage
	if err := json.Unmarshal(a["attachments"], &atts); err != nil {
		return err
	}
	for _, f := range files {
		if f.index < len(atts) {
			u, _ := json.Marshal(f.url)
			atts[f.index]["contentUrl"] = u
		}
	}
	a.Set("attachments", atts)
	return nil
}

// pageSize bounds the activities of one GET page.
const pageSize = 500

// getActivities: GET /conversations/{id}/activities?watermark=.
func (a *API) getActivities(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteHistory) {
		return
	}
	_, c, ok := a.authorized(w, r)
	if !ok || !a.allowIn(w, r, RouteHistory, c.ID) {
		return
	}
	wmParam := r.URL.Query().Get("watermark")
	after, err := conversation.ParseWatermark(wmParam)
	if err != nil {
		a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "%v", err))
		return
	}
	// Many users may share one address (a corporate NAT) and polling
	// clients stop polling on a 429, so a read past the address's cap
	// waits for one of its reads to end before it is refused.
	leave, ok := a.enter(w, r, a.reads, "history reads")
	if !ok {
		return
	}
	defer leave()
	a.writePage(w, r, c.ID, after, wmParam)
}

// writePage writes one history page after the watermark: at most pageSize
// activities and maxSetBytes bytes, read from the store in chunks and
// written as they are read. The page's watermark is its last activity, so
// the client continues from there.
func (a *API) writePage(w http.ResponseWriter, r *http.Request, conv string, after int64, wmParam string) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	sw := &setWriter{w: w}
	last, consumed, headerSent := after, 0, false
	for consumed < pageSize {
		entries, err := a.readChunk(ctx, conv, last, pageSize-consumed)
		if err != nil {
			if !headerSent {
				a.internal(w, r, err)
				return
			}
			a.logger.Error("history read failed mid-page", "conversation", conv, "err", err)
			panic(http.ErrAbortHandler) // the client sees a cut, not a short page
		}
		if !headerSent {
			headerSent = true
			h := w.Header()
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(a.writeBudget(setSize(entries))))
		full := false
		for _, e := range entries {
			if !sw.fits(e) {
				full = true
				break
			}
			sw.add(e)
			last = e.Seq
			consumed++
		}
		if sw.err != nil {
			return // the client is gone or too slow; the deadline cut it
		}
		if full || len(entries) == 0 {
			break // a chunk is bounded by bytes too: only an empty one ends the log
		}
	}
	wm := wmParam
	if wm == "-" {
		wm = ""
	}
	if consumed > 0 {
		wm = conversation.FormatWatermark(last)
	}
	_ = sw.finish(wm)
}
