package usertoken

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

// SessionCookie is the Direct Line session cookie that
// /v3/directline/session/getsessionid sets (directline.SessionCookie;
// a server test holds the two equal).
const SessionCookie = "parley_dl_session"

// SecureSessionCookie is the cookie's name when Parley is served over
// https (directline.SecureSessionCookie). Browsers accept a __Host-
// cookie only from that very host, over https, without Domain: a sibling
// host (www.example.com next to chat.example.com) or a plain-http page
// cannot plant a session its owner holds in a victim's browser (cookie
// tossing), which would complete the victim's sign-in as the owner's
// Direct Line user without a magic code.
const SecureSessionCookie = "__Host-" + SessionCookie

// SessionCookieName is the session cookie's name for a public URL.
func SessionCookieName(publicURL string) string {
	if strings.HasPrefix(publicURL, "https://") {
		return SecureSessionCookie
	}
	return SessionCookie
}

// sessionIDLen is the length of a session id: base64url of a SHA-256.
const sessionIDLen = 43

// sessionID derives the public session id from the cookie secret, as
// directline.SessionID does.
func sessionID(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// sameBrowser reports whether the callback comes from the browser that
// holds the Direct Line session Web Chat named in the sign-in link
// (code_challenge), and that session is the sign-in's conversation and
// user. getsessionid only answered trusted origins.
func (s *Service) sameBrowser(r *http.Request, f flow) bool {
	if f.challenge == "" || s.cfg.Deliver == nil {
		return false
	}
	ck, err := r.Cookie(SessionCookieName(s.cfg.PublicURL))
	if err != nil || len(ck.Value) != 43 {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(sessionID(ck.Value)), []byte(f.challenge)) != 1 {
		s.logger.Info("sign-in: the browser's session is not the one in the link; showing a magic code", "bot", f.botID, "connection", f.conn)
		return false
	}
	se, err := s.st.GetSession(r.Context(), f.challenge+"."+f.convID)
	if err != nil || !s.now().Before(se.ExpiresAt) || se.ConversationID != f.convID || se.UserID == "" || se.UserID != f.userID {
		s.logger.Info("sign-in: the session is not this conversation's user's; showing a magic code", "bot", f.botID, "connection", f.conn)
		return false
	}
	return true
}

// completeSilently stores the token and sends the bot the tokens/response
// event its OAuthPrompt waits for.
func (s *Service) completeSilently(ctx context.Context, c store.OAuthConnection, f flow, tok *oauth2.Token) error {
	now := s.now()
	if err := s.store(ctx, c, f.userID, tok, now); err != nil {
		return err
	}
	s.retireLinks(pendingKey(f.botID, f.userID, f.conn))
	tr, ok := s.token(ctx, c, f.userID)
	if !ok {
		return fmt.Errorf("complete sign-in: the stored token cannot be read")
	}
	bot, err := s.st.GetBot(ctx, f.botID)
	if err != nil {
		return fmt.Errorf("complete sign-in: %w", err)
	}
	act := conversation.Activity{}
	act.Set("type", "event")
	act.Set("name", "tokens/response")
	act.Set("value", tr)
	act.Set("from", conversation.Account{ID: f.userID, Role: "user"})
	act.Set("recipient", conversation.Account{ID: bot.ID, Name: bot.Name, Role: "bot"})
	act.Set("channelId", s.cfg.ChannelID)
	act.Set("serviceUrl", s.cfg.PublicURL+"/")
	if err := s.cfg.Deliver.Deliver(ctx, f.convID, f.botID, act); err != nil {
		return fmt.Errorf("complete sign-in: %w", err)
	}
	s.logger.Info("user signed in without a magic code", "bot", f.botID, "user", f.userID, "connection", f.conn, "conversation", f.convID)
	return nil
}
