package usertoken

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/strictjson"
)

// link is what a sign-in link (the OAuthCard's button) signs in: a user
// of a conversation of a bot, to one of the bot's connections.
type link struct {
	botID, convID, userID, conn string
	exp                         time.Time
}

// flow is a redirect to the provider awaiting its callback.
type flow struct {
	link
	verifier string // PKCE
	// challenge is the Direct Line session id Web Chat appended to the
	// link ("" when none): the callback completes without a magic code
	// only in the browser holding that session's cookie.
	challenge string
	exp       time.Time
}

// pending is a provider token awaiting the magic code shown to the user.
type pending struct {
	code   string
	convID string
	tok    *oauth2.Token
	exp    time.Time
}

type failures struct {
	n     int
	since time.Time
}

func pendingKey(botID, userID, conn string) string { return botID + "\x00" + userID + "\x00" + conn }

func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sweep drops expired entries; callers hold s.mu.
func (s *Service) sweep() {
	now := s.now()
	for k, v := range s.links {
		if now.After(v.exp) {
			delete(s.links, k)
			delete(s.linkFlows, k)
		}
	}
	for k, ids := range s.userLinks {
		live := ids[:0]
		for _, id := range ids {
			if _, ok := s.links[id]; ok {
				live = append(live, id)
			}
		}
		if len(live) == 0 {
			delete(s.userLinks, k)
		} else {
			s.userLinks[k] = live
		}
	}
	for k, v := range s.flows {
		if now.After(v.exp) {
			delete(s.flows, k)
		}
	}
	for k, v := range s.codes {
		if now.After(v.exp) {
			delete(s.codes, k)
		}
	}
	for k, v := range s.fails {
		if now.After(v.since.Add(s.lim.LockoutFor)) {
			delete(s.fails, k)
		}
	}
}

// maxFlowsPerLink bounds the flows one sign-in link has in progress.
const maxFlowsPerLink = 5

// maxLinksPerUser bounds the live sign-in links of one user and
// connection of a bot.
const maxLinksPerUser = 5

// retireLinks forgets the links of a user and connection of a bot, with
// their flows: once the user is signed in, an old card's button (in the
// transcript, a forwarded message) starts nothing.
func (s *Service) retireLinks(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.userLinks[key] {
		s.dropLink(id)
	}
	delete(s.userLinks, key)
}

// dropLink forgets a link and its flows; callers hold s.mu.
func (s *Service) dropLink(id string) {
	for _, st := range s.linkFlows[id] {
		delete(s.flows, st)
	}
	delete(s.linkFlows, id)
	delete(s.links, id)
}

// errBusy: too many sign-ins in progress.
var errBusy = errors.New("too many sign-ins in progress")

// SignInLink is Parley's own sign-in URL for a user of conv (a
// conversation of botID, bound to a user) and the bot's connection
// name: what the OAuthCard's signin button opens.
func (s *Service) SignInLink(ctx context.Context, botID string, conv store.Conversation, connectionName string) (string, error) {
	if conv.BotID != botID || conv.UserID == "" {
		return "", errors.New("sign-in link: the conversation is not this bot's or has no bound user")
	}
	if !BoundUserID(conv.UserID) {
		return "", errors.New("sign-in link: " + errClaimable)
	}
	if _, err := s.st.GetOAuthConnection(ctx, botID, connectionName); err != nil {
		return "", fmt.Errorf("sign-in link: %w", err)
	}
	id, err := randomID(24)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.links) >= s.lim.MaxPending {
		s.sweep()
		if len(s.links) >= s.lim.MaxPending {
			return "", errBusy
		}
	}
	s.links[id] = link{botID: botID, convID: conv.ID, userID: conv.UserID, conn: connectionName, exp: s.now().Add(s.lim.LinkTTL)}
	// A user holds at most maxLinksPerUser links per connection (the
	// oldest is retired with its flows): each OAuthCard mints one, and a
	// user asking again and again must not fill the table for everyone.
	key := pendingKey(botID, conv.UserID, connectionName)
	ids := append(s.userLinks[key], id)
	for len(ids) > maxLinksPerUser {
		s.dropLink(ids[0])
		ids = ids[1:]
	}
	s.userLinks[key] = ids
	// signin is the last parameter: Web Chat appends
	// "&code_challenge=<session id>" percent-encoded to the URL.
	return s.cfg.PublicURL + "/api/oauth/signin?signin=" + id, nil
}

// tokenState is the bot's state parameter:
// base64(JSON{connectionName, conversation, relatesTo, msAppId}).
type tokenState struct {
	ConnectionName string `json:"connectionName"`
	Conversation   struct {
		ChannelID    string `json:"channelId"`
		ServiceURL   string `json:"serviceUrl"`
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Bot struct {
			ID string `json:"id"`
		} `json:"bot"`
	} `json:"conversation"`
	MsAppID string `json:"msAppId"`
}

// errState explains a refused state to the bot's developer.
type errState string

func (e errState) Error() string { return string(e) }

// parseState decodes and checks a bot's state: standard or URL-safe
// base64, JSON without duplicate keys, the caller's app id, a
// conversation of that bot whose bound user is the state's user.
func (s *Service) parseState(ctx context.Context, botID, raw string) (tokenState, store.Conversation, error) {
	var st tokenState
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(raw); err == nil {
			break
		}
	}
	if err != nil {
		return st, store.Conversation{}, errState("state is not base64")
	}
	if err := noDuplicateKeys(b); err != nil {
		return st, store.Conversation{}, errState("state is not valid JSON: " + err.Error())
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, store.Conversation{}, errState("state is not valid JSON")
	}
	if st.MsAppID != botID {
		return st, store.Conversation{}, errState("state.msAppId is not the calling bot's app id")
	}
	if st.ConnectionName == "" || st.Conversation.Conversation.ID == "" || st.Conversation.User.ID == "" {
		return st, store.Conversation{}, errState("state needs connectionName, conversation.conversation.id and conversation.user.id")
	}
	if ch := st.Conversation.ChannelID; ch != "" && ch != s.cfg.ChannelID {
		return st, store.Conversation{}, errState("state.conversation.channelId must be " + s.cfg.ChannelID)
	}
	if su := strings.TrimRight(st.Conversation.ServiceURL, "/"); su != "" && su != s.cfg.PublicURL {
		return st, store.Conversation{}, errState("state.conversation.serviceUrl is not this gateway's")
	}
	conv, err := s.st.GetConversation(ctx, st.Conversation.Conversation.ID)
	if err != nil || conv.BotID != botID {
		return st, store.Conversation{}, errState("state.conversation is not a conversation of this bot")
	}
	if conv.UserID == "" {
		return st, store.Conversation{}, errState("sign-in needs a conversation bound to a user (enhanced authentication: a token generated with a user id)")
	}
	if st.Conversation.User.ID != conv.UserID {
		return st, store.Conversation{}, errState("state.conversation.user is not the conversation's user")
	}
	if !BoundUserID(conv.UserID) {
		return st, store.Conversation{}, errState(errClaimable)
	}
	return st, conv, nil
}

// noDuplicateKeys refuses JSON with a key repeated in one object (two
// parsers could read different values) or nested more than 64 deep.
func noDuplicateKeys(b []byte) error {
	err := strictjson.Keys(b, strictjson.Options{MaxDepth: 64})
	if errors.Is(err, strictjson.ErrInvalid) {
		return errors.New("invalid JSON")
	}
	return err // nil, "duplicate key %q" or "nested too deep"
}

// SignInResource is the SDKs' SignInUrlResponse.
type SignInResource struct {
	SignInLink string `json:"signInLink"`
}

// signInResource authenticates the bot, checks its state and mints a
// link; it answers the client itself on failure.
func (s *Service) signInResource(w http.ResponseWriter, r *http.Request, botID, rawState string) (SignInResource, tokenState, bool) {
	st, conv, err := s.parseState(r.Context(), botID, rawState)
	var es errState
	if errors.As(err, &es) {
		s.logger.Warn("token service: state refused", "bot", botID, "reason", err.Error())
		writeErr(w, http.StatusBadRequest, "BadArgument", err.Error())
		return SignInResource{}, st, false
	}
	if _, ok := s.connection(w, r, botID, st.ConnectionName); !ok {
		return SignInResource{}, st, false
	}
	u, err := s.SignInLink(r.Context(), botID, conv, st.ConnectionName)
	if err != nil {
		s.logger.Error("token service: sign-in link failed", "err", err)
		writeErr(w, http.StatusServiceUnavailable, "ServiceError", "the gateway cannot start a sign-in now; try again")
		return SignInResource{}, st, false
	}
	return SignInResource{SignInLink: u}, st, true
}

// GET /api/botsignin/GetSignInResource?state[&code_challenge&emulatorUrl&finalRedirect]
func (s *Service) getSignInResource(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"state"}, "code_challenge", "emulatorUrl", "finalRedirect")
	if !ok {
		return
	}
	res, _, ok := s.signInResource(w, r, botID, q["state"])
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// GET /api/botsignin/GetSignInUrl: the same link, as text/plain.
func (s *Service) getSignInURL(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"state"}, "code_challenge", "emulatorUrl", "finalRedirect")
	if !ok {
		return
	}
	res, _, ok := s.signInResource(w, r, botID, q["state"])
	if !ok {
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(res.SignInLink))
}

// GET /api/usertoken/GetTokenOrSignInResource?userId&connectionName&channelId&state[&code&finalRedirect&fwdUrl]
func (s *Service) getTokenOrSignInResource(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"userId", "connectionName", "state"}, "channelId", "code", "finalRedirect", "fwdUrl")
	if !ok || !s.checkChannel(w, q["channelId"]) || !s.authorizeUser(w, r, botID, q["userId"]) {
		return
	}
	c, ok := s.connection(w, r, botID, q["connectionName"])
	if !ok {
		return
	}
	if code := q["code"]; code != "" {
		s.redeem(r.Context(), c, q["userId"], code)
	}
	if tr, ok := s.token(r.Context(), c, q["userId"]); ok {
		writeJSON(w, http.StatusOK, map[string]any{"tokenResponse": tr})
		return
	}
	res, st, ok := s.signInResource(w, r, botID, q["state"])
	if !ok {
		return
	}
	if st.Conversation.User.ID != q["userId"] || st.ConnectionName != q["connectionName"] {
		writeErr(w, http.StatusBadRequest, "BadArgument", "state names another user or connection than userId and connectionName")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"signInResource": res})
}

// GET /api/oauth/signin?signin=<id>[&code_challenge=<session id>]: the
// OAuthCard's button. It redirects to the provider with Parley's own
// state and PKCE.
func (s *Service) signin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("signin")
	// Web Chat appends "&code_challenge=..." percent-encoded: after
	// decoding it is part of the last parameter's value.
	id, rest, _ := strings.Cut(id, "&")
	challenge := q.Get("code_challenge")
	if v, err := url.ParseQuery(rest); err == nil && v.Get("code_challenge") != "" {
		challenge = v.Get("code_challenge")
	}
	if len(challenge) != sessionIDLen {
		challenge = ""
	}
	s.mu.Lock()
	l, ok := s.links[id]
	s.mu.Unlock()
	if id == "" || len(q["signin"]) != 1 || !ok || s.now().After(l.exp) {
		s.page(w, http.StatusBadRequest, "This sign-in link has expired", "Go back to the chat and ask to sign in again.", "")
		return
	}
	c, err := s.st.GetOAuthConnection(r.Context(), l.botID, l.conn)
	if err != nil {
		s.page(w, http.StatusBadRequest, "This sign-in is no longer available", "The bot's sign-in connection was removed. Go back to the chat.", "")
		return
	}
	cfg, err := s.oauthConfig(r.Context(), c)
	if err != nil {
		s.logger.Error("sign-in: provider configuration failed", "bot", l.botID, "connection", l.conn, "err", err)
		s.page(w, http.StatusBadGateway, "The identity provider cannot be reached", "Try again in a moment.", "")
		return
	}
	state, err := randomID(32)
	if err != nil {
		s.page(w, http.StatusInternalServerError, "Sign-in failed", "Try again.", "")
		return
	}
	verifier := oauth2.GenerateVerifier()
	s.mu.Lock()
	if len(s.flows) >= s.lim.MaxPending {
		s.sweep()
	}
	busy := len(s.flows) >= s.lim.MaxPending
	if !busy {
		s.flows[state] = flow{link: l, verifier: verifier, challenge: challenge, exp: s.now().Add(s.lim.FlowTTL)}
		// One link starts at most maxFlowsPerLink flows at once (the
		// oldest is dropped): whoever holds a link cannot fill the table.
		states := append(s.linkFlows[id], state)
		if len(states) > maxFlowsPerLink {
			delete(s.flows, states[0])
			states = states[1:]
		}
		s.linkFlows[id] = states
	}
	s.mu.Unlock()
	if busy {
		s.page(w, http.StatusServiceUnavailable, "Too many sign-ins in progress", "Try again in a few minutes.", "")
		return
	}
	noStore(w)
	http.Redirect(w, r, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// GET /api/oauth/callback?code&state (or error): the provider's redirect.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	s.mu.Lock()
	f, ok := s.flows[state]
	delete(s.flows, state) // single use, whatever happens next
	s.mu.Unlock()
	if state == "" || len(q["state"]) != 1 || !ok || s.now().After(f.exp) {
		s.logger.Warn("sign-in callback refused: unknown, used or expired state")
		s.page(w, http.StatusBadRequest, "This sign-in has expired or was already completed", "Go back to the chat and ask to sign in again.", "")
		return
	}
	if q.Get("error") != "" || q.Get("code") == "" || len(q["code"]) != 1 {
		s.logger.Warn("sign-in callback: the provider refused", "bot", f.botID, "connection", f.conn, "provider_error", trunc(q.Get("error"), 64))
		s.page(w, http.StatusBadRequest, "Sign-in was not completed", "The identity provider did not sign you in. Go back to the chat and try again.", "")
		return
	}
	c, err := s.st.GetOAuthConnection(r.Context(), f.botID, f.conn)
	if err != nil {
		s.page(w, http.StatusBadRequest, "This sign-in is no longer available", "The bot's sign-in connection was removed. Go back to the chat.", "")
		return
	}
	cfg, err := s.oauthConfig(r.Context(), c)
	if err != nil {
		s.logger.Error("sign-in: provider configuration failed", "bot", f.botID, "connection", f.conn, "err", err)
		s.page(w, http.StatusBadGateway, "The identity provider cannot be reached", "Try again in a moment.", "")
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, s.httpClient())
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil || tok.AccessToken == "" {
		s.logger.Warn("sign-in callback: code exchange failed", "bot", f.botID, "connection", f.conn, "err", exchangeErr(err))
		s.page(w, http.StatusBadRequest, "Sign-in could not be completed", "Go back to the chat and ask to sign in again.", "")
		return
	}
	if s.sameBrowser(r, f) {
		err := s.completeSilently(r.Context(), c, f, tok)
		if err == nil {
			s.page(w, http.StatusOK, "You are signed in", "You can close this window and go back to the chat.", "")
			return
		}
		s.logger.Error("sign-in without a magic code failed; showing the code", "bot", f.botID, "connection", f.conn, "err", err)
	}
	code, err := magicCode()
	if err != nil {
		s.page(w, http.StatusInternalServerError, "Sign-in failed", "Try again.", "")
		return
	}
	key := pendingKey(f.botID, f.userID, f.conn)
	s.mu.Lock()
	if len(s.codes) >= s.lim.MaxPending {
		s.sweep()
	}
	busy := len(s.codes) >= s.lim.MaxPending
	if !busy {
		s.codes[key] = pending{code: code, convID: f.convID, tok: tok, exp: s.now().Add(s.lim.CodeTTL)}
	}
	s.mu.Unlock()
	if busy {
		s.page(w, http.StatusServiceUnavailable, "Too many sign-ins in progress", "Try again in a few minutes.", "")
		return
	}
	s.logger.Info("sign-in completed at the provider; magic code shown", "bot", f.botID, "connection", f.conn, "conversation", f.convID)
	s.page(w, http.StatusOK, "Almost done", fmt.Sprintf("Type this code in the chat to finish signing in. It expires in %d minutes.", int(s.lim.CodeTTL/time.Minute)), code)
}

// exchangeErr describes a failed code exchange without the provider's
// response body (which may echo the code).
func exchangeErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Sprintf("provider answered %d %s", re.Response.StatusCode, trunc(re.ErrorCode, 64))
	}
	if err == nil {
		return "no access token"
	}
	// A transport failure (refused address, TLS, timeout) says why: the
	// operator needs it, and it holds neither the code nor a body.
	var ue *url.Error
	if errors.As(err, &ue) {
		return "request failed: " + trunc(ue.Err.Error(), 300)
	}
	return "request failed"
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// magicCode is 6 random decimal digits.
func magicCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("magic code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// redeem checks a magic code for the user and connection: constant-time
// compare, single use, limited wrong attempts (then the pending token is
// dropped and the user locked out for Limits.LockoutFor). On success the
// token is stored.
func (s *Service) redeem(ctx context.Context, c store.OAuthConnection, userID, code string) bool {
	key := pendingKey(c.BotID, userID, c.Name)
	now := s.now()
	s.mu.Lock()
	f := s.fails[key]
	if now.After(f.since.Add(s.lim.LockoutFor)) {
		f = failures{}
	}
	if f.n >= s.lim.MaxCodeAttempts {
		delete(s.codes, key)
		s.mu.Unlock()
		s.logger.Warn("magic code refused: too many wrong codes", "bot", c.BotID, "user", userID, "connection", c.Name)
		return false
	}
	p, ok := s.codes[key]
	if ok && now.After(p.exp) {
		delete(s.codes, key)
		ok = false
	}
	if !ok {
		s.mu.Unlock()
		return false
	}
	if subtle.ConstantTimeCompare([]byte(code), []byte(p.code)) != 1 {
		if f.n == 0 {
			f.since = now
		}
		f.n++
		s.fails[key] = f
		if f.n >= s.lim.MaxCodeAttempts {
			delete(s.codes, key)
		}
		s.mu.Unlock()
		s.logger.Warn("magic code refused", "bot", c.BotID, "user", userID, "connection", c.Name, "failures", f.n)
		return false
	}
	delete(s.codes, key)
	delete(s.fails, key)
	s.mu.Unlock()
	if err := s.store(ctx, c, userID, p.tok, now); err != nil {
		s.logger.Error("storing the user token failed", "bot", c.BotID, "connection", c.Name, "err", err)
		return false
	}
	s.retireLinks(key)
	s.logger.Info("user signed in", "bot", c.BotID, "user", userID, "connection", c.Name, "conversation", p.convID)
	return true
}

// dropPending forgets a user's codes awaiting redemption (sign-out).
func (s *Service) dropPending(botID, userID, conn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := pendingKey(botID, userID, "")
	for k := range s.codes {
		if (conn == "" && strings.HasPrefix(k, prefix)) || k == pendingKey(botID, userID, conn) {
			delete(s.codes, k)
		}
	}
}

// sealedToken is what a user token row seals.
type sealedToken struct {
	AccessToken  string    `json:"a"`
	TokenType    string    `json:"t,omitempty"`
	RefreshToken string    `json:"r,omitempty"`
	Expiry       time.Time `json:"e,omitzero"`
}

// store seals and stores a token; the login ends MaxLogin after signedIn.
func (s *Service) store(ctx context.Context, c store.OAuthConnection, userID string, tok *oauth2.Token, signedIn time.Time) error {
	b, err := json.Marshal(sealedToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry})
	if err != nil {
		return fmt.Errorf("store user token: %w", err)
	}
	scope := BotScope(c.BotID)
	if err := s.sealer.Prepare(ctx, scope); err != nil {
		return fmt.Errorf("store user token: %w", err)
	}
	sealed, err := s.sealer.Seal(ctx, scope, b, tokenAAD(c.BotID, userID, c.Name))
	if err != nil {
		return fmt.Errorf("store user token: %w", err)
	}
	return s.st.PutUserToken(ctx, store.UserToken{BotID: c.BotID, UserID: userID, Connection: c.Name, Sealed: sealed,
		SignedInAt: signedIn, ExpiresAt: signedIn.Add(c.MaxLogin)})
}

// token reads a user's token: none past the login's end (the row is
// deleted), refreshed with the provider's refresh token when the access
// token has expired and the login has not.
//
// Reads of one token are serialised: parallel turns of a bot would
// otherwise refresh with the same refresh token, which a provider that
// rotates them accepts once, and the losers signed the user out.
func (s *Service) token(ctx context.Context, c store.OAuthConnection, userID string) (TokenResponse, bool) {
	defer s.tokenLocks.lock(pendingKey(c.BotID, userID, c.Name))()
	ut, err := s.st.GetUserToken(ctx, c.BotID, userID, c.Name)
	if err != nil {
		return TokenResponse{}, false
	}
	now := s.now()
	if !now.Before(ut.ExpiresAt) {
		_, _ = s.st.DeleteUserTokens(ctx, c.BotID, userID, c.Name)
		s.logger.Info("user token expired: the connection's max login duration has passed", "bot", c.BotID, "user", userID, "connection", c.Name)
		return TokenResponse{}, false
	}
	b, err := s.sealer.Open(ctx, BotScope(c.BotID), ut.Sealed, tokenAAD(c.BotID, userID, c.Name))
	if err != nil {
		s.logger.Error("opening a user token failed", "bot", c.BotID, "connection", c.Name, "err", err)
		return TokenResponse{}, false
	}
	var st sealedToken
	if err := json.Unmarshal(b, &st); err != nil {
		return TokenResponse{}, false
	}
	if !st.Expiry.IsZero() && !now.Before(st.Expiry.Add(-30*time.Second)) {
		if st.RefreshToken == "" {
			_, _ = s.st.DeleteUserTokens(ctx, c.BotID, userID, c.Name)
			return TokenResponse{}, false
		}
		if st, err = s.refresh(ctx, c, userID, st, ut.SignedInAt); err != nil {
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				// The provider could not be reached: the login stays,
				// the next read tries again.
				s.logger.Warn("refreshing a user token failed; it is kept for the next try", "bot", c.BotID, "connection", c.Name, "err", exchangeErr(err))
				return TokenResponse{}, false
			}
			s.logger.Warn("refreshing a user token failed: the user must sign in again", "bot", c.BotID, "connection", c.Name, "err", exchangeErr(err))
			_, _ = s.st.DeleteUserTokens(ctx, c.BotID, userID, c.Name)
			return TokenResponse{}, false
		}
	}
	exp := ut.ExpiresAt
	if !st.Expiry.IsZero() && st.Expiry.Before(exp) {
		exp = st.Expiry
	}
	return TokenResponse{ChannelID: s.cfg.ChannelID, ConnectionName: c.Name, Token: st.AccessToken, Expiration: exp.UTC().Format(time.RFC3339)}, true
}

func (s *Service) refresh(ctx context.Context, c store.OAuthConnection, userID string, st sealedToken, signedIn time.Time) (sealedToken, error) {
	cfg, err := s.oauthConfig(ctx, c)
	if err != nil {
		return st, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.httpClient())
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: st.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return st, err
	}
	if err := s.store(ctx, c, userID, tok, signedIn); err != nil {
		return st, err
	}
	return sealedToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}, nil
}

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
<h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Code}}<p id="magic-code" style="font-size: 2.5rem; letter-spacing: .3em; font-family: monospace">{{.Code}}</p>
<p>Do not share this code with anyone else: it signs you in to this chat only.</p>{{end}}
</body></html>`))

// page answers the browser with a small HTML page.
func (s *Service) page(w http.ResponseWriter, status int, title, text, code string) {
	noStore(w)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, map[string]string{"Title": title, "Text": text, "Code": code})
}
