package connector

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// BotAuthenticator identifies the bot behind a Bot Connector call from its
// bearer token. The Bot Connector authentication work plugs in here.
type BotAuthenticator interface {
	AuthenticateBot(ctx context.Context, authorization string) (botID string, err error)
}

// API serves the Bot Connector REST API under /v3/conversations and
// /v3/attachments.
type API struct {
	st        store.Store
	log       *conversation.Log
	issuer    *identity.Issuer
	auth      BotAuthenticator // nil: only insecure development bots
	limits    conversation.Limits
	maxUpload int64
	channelID string
	logger    *slog.Logger
	proxies   Proxies      // nil: no trusted proxies
	signIn    SignInLinker // nil: OAuthCards get no sign-in link
	replies   ReplyRecorder
	failures  *guard.AuthFailures
}

// ReplyRecorder learns which activity a bot's activity replies to
// (Delivery.BotReplied): the evidence that the bot received it.
type ReplyRecorder interface {
	BotReplied(conv, replyToID, activityType string)
}

// Proxies tells the trusted reverse proxies (trusted_proxies) and the
// client address behind them; guard.Proxies implements it.
type Proxies interface {
	// Trusted reports whether a (a TCP peer) is a trusted proxy.
	Trusted(a netip.Addr) bool
	// ClientAddr is the client that made r: from X-Forwarded-For when the
	// peer is a trusted proxy, else the peer.
	ClientAddr(r *http.Request) netip.Addr
}

// APIConfig configures the Bot Connector API.
type APIConfig struct {
	Limits    conversation.Limits
	MaxUpload int64
	ChannelID string
	// Proxies judges where a request came from, for insecure development
	// bots (loopback only). Nil: no proxy is trusted.
	Proxies Proxies
	// SignIn fills the OAuthCards bots send with Parley's sign-in links.
	SignIn SignInLinker
	// Replies, when set, is told of every stored bot activity that
	// replies to another (the delivery worker: issue 14).
	Replies ReplyRecorder
	// Failures logs (rate-limited) and counts failed bot authentications
	// (nil: noted for the threat detector only).
	Failures *guard.AuthFailures
}

// NewAPI builds the Bot Connector API.
func NewAPI(st store.Store, lg *conversation.Log, issuer *identity.Issuer, auth BotAuthenticator, cfg APIConfig, logger *slog.Logger) *API {
	return &API{st: st, log: lg, issuer: issuer, auth: auth, limits: cfg.Limits, maxUpload: cfg.MaxUpload, channelID: cfg.ChannelID, logger: logger, proxies: cfg.Proxies, signIn: cfg.SignIn, replies: cfg.Replies, failures: cfg.Failures}
}

// Register adds the routes.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v3/conversations/{cid}/activities", a.send)
	mux.HandleFunc("POST /v3/conversations/{cid}/activities/{aid}", a.send)
	mux.HandleFunc("PUT /v3/conversations/{cid}/activities/{aid}", a.update)
	mux.HandleFunc("DELETE /v3/conversations/{cid}/activities/{aid}", a.remove)
	mux.HandleFunc("GET /v3/conversations/{cid}/members", a.members)
	mux.HandleFunc("GET /v3/conversations/{cid}/members/{mid}", a.member)
	mux.HandleFunc("GET /v3/conversations/{cid}/pagedmembers", a.pagedMembers)
	mux.HandleFunc("GET /v3/conversations/{cid}/activities/{aid}/members", a.members)
	mux.HandleFunc("POST /v3/conversations/{cid}/attachments", a.uploadAttachment)
	mux.HandleFunc("GET /v3/attachments/{id}", a.attachmentInfo)
	mux.HandleFunc("GET /v3/attachments/{id}/views/{view}", a.attachmentView)
	mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "BadArgument", "no such Bot Connector endpoint or method")
	})
}

// storeFailed answers a write the store did not commit: 503 when the
// storage cannot take writes now (full, or its database file gone: the
// bot may retry later, as for any 503), 500 otherwise.
func storeFailed(w http.ResponseWriter, err error, msg string) {
	if errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrStoreReplaced) {
		writeErr(w, http.StatusServiceUnavailable, "ServiceError", msg+": the storage cannot take writes right now; try again later")
		return
	}
	writeErr(w, http.StatusInternalServerError, "ServiceError", msg)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"ServiceError","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// fromLoopback reports whether r came from this host, for insecure
// development bots. Behind a reverse proxy on the same host (nginx, ngrok)
// every request's TCP peer is loopback, so the peer alone says nothing:
//   - from a trusted proxy, the client is the one X-Forwarded-For names
//     (read as everywhere else in the gateway, from the right);
//   - from any other peer, a request carrying a forwarding header
//     (X-Forwarded-For, Forwarded, X-Real-IP) was forwarded for someone
//     else by a proxy Parley was not told to trust, and is not loopback.
//     A bot calling Parley directly sends none of them.
func (a *API) fromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer := ap.Addr().Unmap()
	h := r.Header
	if a.proxies != nil && a.proxies.Trusted(peer) && len(h.Values("X-Forwarded-For")) > 0 {
		client := a.proxies.ClientAddr(r)
		return client.IsValid() && client.Unmap().IsLoopback()
	}
	for _, k := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if len(h.Values(k)) > 0 {
			return false
		}
	}
	return peer.IsLoopback()
}

// authorize authenticates the calling bot and checks it owns the
// conversation. It answers the client itself on failure.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) (store.Conversation, store.Bot, bool) {
	ctx := r.Context()
	cid := r.PathValue("cid")
	conv, err := a.st.GetConversation(ctx, cid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.logger.Error("conversation lookup failed", "err", err)
		writeErr(w, http.StatusInternalServerError, "ServiceError", "the gateway could not complete the request")
		return conv, store.Bot{}, false
	}
	authz := r.Header.Get("Authorization")
	var botID string
	switch {
	case authz != "" && a.auth != nil:
		if botID, err = a.auth.AuthenticateBot(ctx, authz); err != nil {
			// Rate-limited: a caller sends as many bad tokens as it likes;
			// the route pattern, never the path (it may be the caller's text).
			a.failures.Record(r, "connector", "invalid_bot_token", "route", r.Pattern, "err", err.Error())
			writeErr(w, http.StatusUnauthorized, "Unauthorized", "invalid bot credentials")
			return conv, store.Bot{}, false
		}
	case authz == "" && conv.ID != "":
		// Development bots registered with the insecure flag call back
		// without a token, from loopback only (judged behind proxies too).
		bot, berr := a.st.GetBot(ctx, conv.BotID)
		if berr != nil || !bot.InsecureNoAuth || !a.fromLoopback(r) {
			a.failures.CountedFor(r, "connector", "missing_bot_token")
			writeErr(w, http.StatusUnauthorized, "Unauthorized", "a bearer token is required")
			return conv, store.Bot{}, false
		}
		botID = bot.ID
	default:
		a.failures.CountedFor(r, "connector", "missing_bot_token")
		writeErr(w, http.StatusUnauthorized, "Unauthorized", "a valid bearer token is required")
		return conv, store.Bot{}, false
	}
	if conv.ID == "" || conv.BotID != botID {
		// Same answer for unknown and foreign conversations.
		writeErr(w, http.StatusForbidden, "Forbidden", "the conversation does not belong to this bot")
		return conv, store.Bot{}, false
	}
	bot, err := a.st.GetBot(ctx, botID)
	if err != nil {
		writeErr(w, http.StatusForbidden, "Forbidden", "unknown bot")
		return conv, store.Bot{}, false
	}
	return conv, bot, true
}

func (a *API) readActivity(w http.ResponseWriter, r *http.Request, conv store.Conversation, bot store.Bot) (conversation.Activity, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(a.limits.MaxBytes)))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeErr(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig", fmt.Sprintf("activity is larger than %d bytes", a.limits.MaxBytes))
		return nil, false
	}
	if timedOut(err) {
		writeErr(w, http.StatusRequestTimeout, "BadArgument", "request body was not received in time")
		return nil, false
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BadArgument", "could not read request body")
		return nil, false
	}
	act, err := conversation.Parse(body, a.limits)
	if err != nil {
		code := "BadArgument"
		var ve *conversation.ValidationError
		if errors.As(err, &ve) && ve.Missing {
			code = "MissingProperty"
		}
		writeErr(w, http.StatusBadRequest, code, err.Error())
		return nil, false
	}
	if c := act.Object("conversation"); c != nil {
		var id string
		_ = json.Unmarshal(c["id"], &id)
		if id != "" && id != conv.ID {
			writeErr(w, http.StatusBadRequest, "BadArgument", "conversation.id does not match the path")
			return nil, false
		}
	}
	if from := act.From(); from.ID != "" && from.ID != bot.ID {
		writeErr(w, http.StatusForbidden, "Forbidden", "from.id must be the bot's own id")
		return nil, false
	}
	name := act.From().Name
	if name == "" {
		name = bot.Name
	}
	act.Set("from", conversation.Account{ID: bot.ID, Name: name, Role: "bot"})
	act.Set("channelId", a.channelID)
	delete(act, "serviceUrl")
	delete(act, "recipient")
	delete(act, "callerId")
	a.fillOAuthCards(r.Context(), act, conv, bot)
	return act, true
}

// send: POST .../activities and .../activities/{aid} (reply). The reply
// target is a hint: an unknown id is treated as a plain send.
func (a *API) send(w http.ResponseWriter, r *http.Request) {
	conv, bot, ok := a.authorize(w, r)
	if !ok {
		return
	}
	act, ok := a.readActivity(w, r, conv, bot)
	if !ok {
		return
	}
	if aid := r.PathValue("aid"); aid != "" && act.Str("replyToId") == "" {
		if _, known := conversation.ParseActivityID(conv.ID, aid); known {
			act.Set("replyToId", aid)
		}
	}
	vis := store.VisibleAll
	if act.Type() == "typing" {
		vis = store.VisibleStream
	}
	ids, err := a.log.Append(r.Context(), conv.ID, []conversation.Item{{Activity: act, Visibility: vis}})
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile (retention, erasure)
		writeErr(w, http.StatusNotFound, "BadArgument", "conversation not found")
		return
	}
	if ve := (*conversation.ValidationError)(nil); errors.As(err, &ve) { // a streamed reply's metadata
		writeErr(w, http.StatusBadRequest, "BadArgument", ve.Error())
		return
	}
	if err != nil {
		a.logger.Error("append bot activity failed", "conversation", conv.ID, "err", err)
		storeFailed(w, err, "the gateway could not store the activity")
		return
	}
	if a.replies != nil {
		a.replies.BotReplied(conv.ID, act.Str("replyToId"), act.Type())
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": ids[0]})
}

// ownActivity loads an activity of conv that the bot itself sent.
func (a *API) ownActivity(w http.ResponseWriter, r *http.Request, conv store.Conversation) (int64, conversation.Activity, bool) {
	aid := r.PathValue("aid")
	seq, ok := conversation.ParseActivityID(conv.ID, aid)
	if !ok {
		writeErr(w, http.StatusNotFound, "BadArgument", "activity not found")
		return 0, nil, false
	}
	e, err := a.log.Get(r.Context(), conv.ID, seq)
	if err != nil || e.Visibility == store.VisibleNone {
		writeErr(w, http.StatusNotFound, "BadArgument", "activity not found")
		return 0, nil, false
	}
	var old conversation.Activity
	if err := json.Unmarshal(e.JSON, &old); err != nil {
		writeErr(w, http.StatusInternalServerError, "ServiceError", "stored activity unreadable")
		return 0, nil, false
	}
	if old.From().Role != "bot" {
		writeErr(w, http.StatusForbidden, "Forbidden", "a bot can only change its own activities")
		return 0, nil, false
	}
	return seq, old, true
}

// update: PUT .../activities/{aid}. Same id and timestamp, new content.
func (a *API) update(w http.ResponseWriter, r *http.Request) {
	conv, bot, ok := a.authorize(w, r)
	if !ok {
		return
	}
	seq, old, ok := a.ownActivity(w, r, conv)
	if !ok {
		return
	}
	// A stream's chunks (and typing activities) are transient: the next
	// chunk or the final message supersedes them. An update would make one
	// permanent in the history beside the final, outside the stream's
	// checks.
	if e, err := a.log.Get(r.Context(), conv.ID, seq); err == nil && e.Visibility == store.VisibleStream {
		writeErr(w, http.StatusBadRequest, "BadArgument", "a typing activity or a streamed reply's chunk cannot be updated: send the stream's next chunk or its final message")
		return
	}
	act, ok := a.readActivity(w, r, conv, bot)
	if !ok {
		return
	}
	for _, k := range []string{"id", "timestamp", "conversation"} {
		act[k] = old[k]
	}
	if err := a.log.Replace(r.Context(), conv.ID, seq, act); err != nil {
		a.logger.Error("update activity failed", "conversation", conv.ID, "err", err)
		storeFailed(w, err, "the gateway could not update the activity")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("aid")})
}

// remove: DELETE .../activities/{aid}.
func (a *API) remove(w http.ResponseWriter, r *http.Request) {
	conv, _, ok := a.authorize(w, r)
	if !ok {
		return
	}
	seq, _, ok := a.ownActivity(w, r, conv)
	if !ok {
		return
	}
	if err := a.log.Delete(r.Context(), conv.ID, seq); err != nil {
		a.logger.Error("delete activity failed", "conversation", conv.ID, "err", err)
		storeFailed(w, err, "the gateway could not delete the activity")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func memberList(conv store.Conversation, bot store.Bot) []conversation.Account {
	out := []conversation.Account{}
	if conv.UserID != "" {
		out = append(out, conversation.Account{ID: conv.UserID, Role: "user"})
	}
	return append(out, conversation.Account{ID: bot.ID, Name: bot.Name, Role: "bot"})
}

func (a *API) members(w http.ResponseWriter, r *http.Request) {
	conv, bot, ok := a.authorize(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, memberList(conv, bot))
}

// pagedMembers: a Direct Line conversation has two members, so one page.
func (a *API) pagedMembers(w http.ResponseWriter, r *http.Request) {
	conv, bot, ok := a.authorize(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": memberList(conv, bot)})
}

func (a *API) member(w http.ResponseWriter, r *http.Request) {
	conv, bot, ok := a.authorize(w, r)
	if !ok {
		return
	}
	for _, m := range memberList(conv, bot) {
		if m.ID == r.PathValue("mid") {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	writeErr(w, http.StatusNotFound, "BadArgument", "member not found")
}

// uploadAttachment: POST .../attachments with AttachmentData (base64).
func (a *API) uploadAttachment(w http.ResponseWriter, r *http.Request) {
	conv, _, ok := a.authorize(w, r)
	if !ok {
		return
	}
	limit := a.maxUpload*4/3 + 64<<10
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if timedOut(err) {
		writeErr(w, http.StatusRequestTimeout, "BadArgument", "request body was not received in time")
		return
	}
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "attachment is too large")
		return
	}
	var in struct {
		Type           string `json:"type"`
		Name           string `json:"name"`
		OriginalBase64 string `json:"originalBase64"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeErr(w, http.StatusBadRequest, "BadArgument", "body must be AttachmentData JSON")
		return
	}
	data, err := base64.StdEncoding.DecodeString(in.OriginalBase64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BadArgument", "originalBase64 is not valid base64")
		return
	}
	if int64(len(data)) > a.maxUpload {
		writeErr(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "attachment is too large")
		return
	}
	if in.Type == "" || len(in.Type) > 256 || len(in.Name) > 256 {
		writeErr(w, http.StatusBadRequest, "BadArgument", "type is required; type and name are at most 256 bytes")
		return
	}
	id := conversation.NewID()
	if err := a.log.PutAttachment(r.Context(), store.Attachment{ID: id, ConversationID: conv.ID, ContentType: in.Type, Name: in.Name, Data: data, CreatedAt: time.Now().UTC()}); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, keyring.ErrNoDataKey) { // erased meanwhile
			writeErr(w, http.StatusNotFound, "BadArgument", "Conversation not found")
			return
		}
		a.logger.Error("store attachment failed", "err", err)
		storeFailed(w, err, "could not store the attachment")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// attachmentAccess allows a download with the capability in ?t= (what the
// bot's copy of an upload carries) or the owning bot's credentials.
func (a *API) attachmentAccess(w http.ResponseWriter, r *http.Request) (store.Attachment, bool) {
	id := r.PathValue("id")
	if !conversation.ValidID(id) {
		writeErr(w, http.StatusNotFound, "BadArgument", "File not found")
		return store.Attachment{}, false
	}
	att, err := a.st.GetAttachment(r.Context(), id)
	if err != nil {
		writeErr(w, http.StatusNotFound, "BadArgument", "File not found")
		return store.Attachment{}, false
	}
	if t := r.URL.Query().Get("t"); t != "" {
		c, err := a.issuer.Verify(t, identity.ScopeAttachment)
		if err != nil || c.Attachment != id || c.Conv != att.ConversationID {
			writeErr(w, http.StatusForbidden, "BadArgument", "invalid or expired download link")
			return store.Attachment{}, false
		}
		return a.openAttachment(w, r, att)
	}
	r.SetPathValue("cid", att.ConversationID)
	if _, _, ok := a.authorize(w, r); !ok {
		return store.Attachment{}, false
	}
	return a.openAttachment(w, r, att)
}

// openAttachment decrypts a file once access is granted.
func (a *API) openAttachment(w http.ResponseWriter, r *http.Request, att store.Attachment) (store.Attachment, bool) {
	opened, err := a.log.OpenAttachment(r.Context(), att)
	if errors.Is(err, keyring.ErrNoDataKey) {
		writeErr(w, http.StatusNotFound, "BadArgument", "File not found")
		return store.Attachment{}, false
	}
	if err != nil {
		// att, not opened (zero on error): the line names the file.
		a.logger.Error("open attachment failed", "attachment", att.ID, "conversation", att.ConversationID, "err", err)
		writeErr(w, http.StatusInternalServerError, "ServiceError", "could not read the attachment")
		return store.Attachment{}, false
	}
	return opened, true
}

func (a *API) attachmentInfo(w http.ResponseWriter, r *http.Request) {
	att, ok := a.attachmentAccess(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": att.Name, "type": att.ContentType,
		"views": []map[string]any{{"viewId": "original", "size": len(att.Data)}}})
}

func (a *API) attachmentView(w http.ResponseWriter, r *http.Request) {
	att, ok := a.attachmentAccess(w, r)
	if !ok {
		return
	}
	if r.PathValue("view") != "original" {
		writeErr(w, http.StatusNotFound, "BadArgument", "view not found")
		return
	}
	h := w.Header()
	h.Set("Content-Type", att.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(att.Data)))
	h.Set("Content-Disposition", "attachment")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, bytes.NewReader(att.Data))
}

// timedOut reports whether a body read failed because the body did not
// arrive in time (the server's body deadline): 408, not a size or format
// problem.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
