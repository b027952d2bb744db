package directline

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// SessionCookie holds the browser session secret for sign-in without a
// magic code. Only its SHA-256 (the sessionId) is stored or shown.
const SessionCookie = "parley_dl_session"

// SecureSessionCookie is its name over https (usertoken.SecureSessionCookie):
// a __Host- cookie cannot be planted by a sibling host or an http page.
const SecureSessionCookie = "__Host-" + SessionCookie

// SessionID derives the public session id from the cookie secret.
func SessionID(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// getSessionID: GET /session/getsessionid. Tokens only, trusted origins
// only, credentialed CORS.
func (a *API) getSessionID(w http.ResponseWriter, r *http.Request) {
	p, e := a.authenticate(r)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	if p.secret {
		a.fail(w, r, errf(http.StatusForbidden, "BadArgument", "A token is required for a session id"))
		return
	}
	origin := r.Header.Get("Origin")
	if origin == "" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		// Browsers omit Origin on same-origin GETs; the request then comes
		// from a page Parley itself serves.
		origin = a.cfg.PublicURL
	}
	if origin == "" {
		a.refuseOrigin(w, r, errf(http.StatusForbidden, "ServiceError", "Origin header is required"))
		return
	}
	if e := originAllowed(origin, trustedOrigins(p.site, p.claims)); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	c, e := a.conversationFor(r.Context(), p, p.claims.Conv)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	secret := ""
	secure := strings.HasPrefix(a.cfg.PublicURL, "https://")
	name := SessionCookie
	if secure {
		name = SecureSessionCookie
	}
	if ck, err := r.Cookie(name); err == nil && len(ck.Value) == 43 {
		if _, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			secret = ck.Value
		}
	}
	if secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			a.internal(w, r, err)
			return
		}
		secret = base64.RawURLEncoding.EncodeToString(b)
	}
	sid := SessionID(secret)
	exp := time.Now().Add(a.cfg.SessionTTL)
	if err := a.st.PutSession(r.Context(), store.Session{ID: sid + "." + c.ID, ConversationID: c.ID, UserID: c.UserID, ExpiresAt: exp}); err != nil {
		if errors.Is(err, store.ErrNotFound) { // erased meanwhile
			a.fail(w, r, errf(http.StatusNotFound, "BadArgument", "Conversation not found"))
			return
		}
		a.internal(w, r, err)
		return
	}
	ck := &http.Cookie{Name: name, Value: secret, Path: "/", HttpOnly: true, Secure: secure, MaxAge: int(a.cfg.SessionTTL.Seconds())}
	if secure {
		ck.SameSite = http.SameSiteNoneMode // the page may embed Web Chat cross-site
	} else {
		ck.SameSite = http.SameSiteLaxMode
	}
	http.SetCookie(w, ck)
	writeJSON(w, http.StatusOK, map[string]string{"sessionId": sid})
}
