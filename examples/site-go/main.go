// Command site-go is a minimal website backend that puts the official Web
// Chat on its pages through Parley, the flow of Direct Line enhanced
// authentication: the site signs its own user in, derives an unguessable
// dl_ user id from that user (HMAC with a key only the site has), asks
// Parley for a token with the site secret (which never leaves the server)
// and gives the page only the token.
//
// Environment:
//
//	PARLEY_DIRECTLINE   Parley's Direct Line base URL, e.g. https://chat.example.com/v3/directline
//	PARLEY_SITE_SECRET  one of the site's two secrets (parley site create)
//	SITE_USERS          user:password pairs, comma-separated (a stand-in for your real sign-in)
//	SITE_ID_KEY         secret key for deriving user ids (32+ random bytes, base64 or hex)
//	SITE_LISTEN         address to listen on (default 127.0.0.1:3000)
//	WEBCHAT_URL         Web Chat script (default the official CDN bundle)
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

type site struct {
	directLine, secret, webchatURL string
	users                          map[string]string
	idKey                          []byte
	client                         *http.Client

	mu       sync.Mutex
	sessions map[string]string // session id -> user name
}

func main() {
	s, listen, err := fromEnv()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /api/directline/token", s.token)
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("site listening on http://%s/", listen)
	log.Fatal(srv.ListenAndServe())
}

func fromEnv() (*site, string, error) {
	get := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }
	s := &site{directLine: strings.TrimRight(get("PARLEY_DIRECTLINE"), "/"), secret: get("PARLEY_SITE_SECRET"),
		webchatURL: get("WEBCHAT_URL"), users: map[string]string{}, sessions: map[string]string{},
		client: &http.Client{Timeout: 10 * time.Second}}
	if s.directLine == "" || s.secret == "" {
		return nil, "", errors.New("PARLEY_DIRECTLINE and PARLEY_SITE_SECRET are required")
	}
	if s.webchatURL == "" {
		s.webchatURL = "https://cdn.botframework.com/botframework-webchat/latest/webchat.js"
	}
	for _, pair := range strings.Split(get("SITE_USERS"), ",") {
		if u, p, ok := strings.Cut(pair, ":"); ok && u != "" && p != "" {
			s.users[u] = p
		}
	}
	if len(s.users) == 0 {
		return nil, "", errors.New("SITE_USERS must list at least one user:password")
	}
	if s.idKey = []byte(get("SITE_ID_KEY")); len(s.idKey) < 32 {
		return nil, "", errors.New("SITE_ID_KEY must be at least 32 characters of random data")
	}
	listen := get("SITE_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:3000"
	}
	return s, listen, nil
}

// userID derives the Direct Line user id: stable per user, unguessable
// without the site's key, dl_ prefixed as enhanced authentication requires.
func (s *site) userID(user string) string {
	m := hmac.New(sha256.New, s.idKey)
	m.Write([]byte(user))
	return "dl_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (s *site) currentUser(r *http.Request) (string, bool) {
	c, err := r.Cookie("site_session")
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.sessions[c.Value]
	return u, ok
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example site: sign in</title><link rel="icon" href="data:,"></head>
<body style="font-family:system-ui;margin:2rem"><h1>Example site</h1>{{if .}}<p role="alert">{{.}}</p>{{end}}
<form method="post" action="/login"><label>User <input name="user" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label> <button>Sign in</button></form></body></html>`))

var chatPage = template.Must(template.New("chat").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example site: chat</title><link rel="icon" href="data:,"></head>
<body style="font-family:system-ui;margin:0"><header style="padding:1rem">Signed in as <b id="user">{{.User}}</b></header>
<div id="webchat" style="height:600px"></div>
<script src="{{.WebChatURL}}"></script>
<script>
(async function () {
  const res = await fetch('/api/directline/token', { method: 'POST' });
  const { token, domain } = await res.json();
  window.WebChat.renderWebChat({ directLine: window.WebChat.createDirectLine({ token, domain }) }, document.getElementById('webchat'));
})();
</script></body></html>`))

func (s *site) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	user, ok := s.currentUser(r)
	if !ok {
		_ = loginPage.Execute(w, "")
		return
	}
	_ = chatPage.Execute(w, map[string]string{"User": user, "WebChatURL": s.webchatURL})
}

func (s *site) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	user, pass := r.PostFormValue("user"), r.PostFormValue("password")
	want, known := s.users[user]
	if !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = loginPage.Execute(w, "Wrong user or password.")
		return
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.sessions[id] = user
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "site_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// token mints a Direct Line token for the signed-in user: the secret stays
// here, the page gets a token bound to the user's dl_ id.
func (s *site) token(w http.ResponseWriter, r *http.Request) {
	user, ok := s.currentUser(r)
	if !ok {
		http.Error(w, `{"error":"sign in first"}`, http.StatusUnauthorized)
		return
	}
	tok, err := s.generate(r.Context(), s.userID(user))
	if err != nil {
		log.Printf("token for %s: %v", user, err)
		http.Error(w, `{"error":"chat unavailable"}`, http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": tok, "domain": s.directLine})
}

func (s *site) generate(ctx context.Context, userID string) (string, error) {
	body, _ := json.Marshal(map[string]any{"user": map[string]string{"id": userID}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.directLine+"/tokens/generate", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("tokens/generate answered %d", resp.StatusCode)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		return "", errors.New("tokens/generate: unexpected answer")
	}
	return out.Token, nil
}
