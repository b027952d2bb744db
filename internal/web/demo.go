// Package web serves the demo page: the official Web Chat, started with a
// token that the page's own backend mints with the site secret for a fresh
// dl_ user id (the secret never reaches the browser).
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

//go:embed static/demo.html
var files embed.FS

var page = template.Must(template.ParseFS(files, "static/demo.html"))

// The Web Chat bundle the demo loads by default: the version the e2e tests
// run (e2e/package.json), pinned with its Subresource Integrity hash, never
// "latest". The hash is the one of dist/webchat.js in the npm package
// botframework-webchat@4.18.1; the browser refuses any other bytes.
const (
	PinnedWebChatVersion   = "4.18.1"
	PinnedWebChatURL       = "https://cdn.botframework.com/botframework-webchat/" + PinnedWebChatVersion + "/webchat.js"
	PinnedWebChatIntegrity = "sha384-AHFvk4Hi30kPlGug5u1RCA9gNO18GRKqhYcFtulI9sUUUp3HBpyjyTUf2/GVUHHb"
)

// BundlePath is where the demo serves a local Web Chat bundle
// (--webchat-file), on its own origin.
const BundlePath = "/demo/webchat.js"

// MaxBundleBytes bounds a local bundle (Web Chat's is about 4 MB).
const MaxBundleBytes = 64 << 20

// Demo is the demo site: a page and its token endpoint.
type Demo struct {
	// DirectLine is the Direct Line base URL (…/v3/directline).
	DirectLine string
	// Secret is the site secret, used only server-side.
	Secret string
	// WebChatURL is the Web Chat bundle the page loads (ignored when
	// WebChatBundle is set).
	WebChatURL string
	// WebChatIntegrity is the bundle's Subresource Integrity value
	// ("sha384-…"), or "" for none.
	WebChatIntegrity string
	// WebChatBundle, when set, is served at BundlePath and is what the
	// page loads.
	WebChatBundle []byte
	Origin        string
	Client        *http.Client
	Log           *slog.Logger
}

// Integrity is the Subresource Integrity value (sha384) of b.
func Integrity(b []byte) string {
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

// CheckIntegrity validates an integrity value given by hand: one
// sha256-, sha384- or sha512- hash in base64, of the right length.
func CheckIntegrity(s string) error {
	alg, b64, ok := strings.Cut(s, "-")
	size := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}[alg]
	if !ok || size == 0 {
		return fmt.Errorf("--webchat-integrity %q must be sha384-<base64 of the hash> (sha256- and sha512- also work); compute it with: openssl dgst -sha384 -binary webchat.js | openssl base64 -A", s)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != size {
		return fmt.Errorf("--webchat-integrity %q: the hash is not %d bytes of standard base64; compute it with: openssl dgst -%s -binary webchat.js | openssl base64 -A", s, size, alg)
	}
	return nil
}

// MatchesIntegrity reports whether b has the integrity value s (as the
// browser would check it).
func MatchesIntegrity(b []byte, s string) bool {
	alg, _, _ := strings.Cut(s, "-")
	var sum []byte
	switch alg {
	case "sha256":
		h := sha256.Sum256(b)
		sum = h[:]
	case "sha384":
		h := sha512.Sum384(b)
		sum = h[:]
	case "sha512":
		h := sha512.Sum512(b)
		sum = h[:]
	default:
		return false
	}
	return s == alg+"-"+base64.StdEncoding.EncodeToString(sum)
}

// CheckWebChatURL validates a bundle URL given by hand: absolute https
// (http only on loopback), no user info, and nothing a
// Content-Security-Policy source cannot carry.
func CheckWebChatURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.ContainsAny(s, " \t\n\r;,'\"<>") {
		return fmt.Errorf("--webchat-url %q must be an absolute https URL of webchat.js (no user info, fragment, spaces, ';' or ','); or serve a local copy with --webchat-file", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("--webchat-url %q: plain http is only allowed on loopback (anyone on the path could change the script); use https, or --webchat-file", s)
		}
	default:
		return fmt.Errorf("--webchat-url %q must be an https URL", s)
	}
	return nil
}

// LoadBundle reads a local Web Chat bundle (--webchat-file).
func LoadBundle(path string) ([]byte, error) {
	hint := "give the path of Web Chat's webchat.js, e.g. node_modules/botframework-webchat/dist/webchat.js after `npm install botframework-webchat@" + PinnedWebChatVersion + "`"
	// Stat before opening: opening a FIFO (or /dev/stdin) blocks.
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--webchat-file: %w; %s", err, hint)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("--webchat-file: %s is not a regular file; %s", path, hint)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--webchat-file: %w; %s", err, hint)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--webchat-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("--webchat-file: %s is not a regular file; %s", path, hint)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--webchat-file: read %s: %w", path, err)
	}
	if len(b) == 0 || len(b) > MaxBundleBytes {
		return nil, fmt.Errorf("--webchat-file: %s is %s; %s", path, map[bool]string{true: "empty", false: "larger than 64 MiB"}[len(b) == 0], hint)
	}
	return b, nil
}

// Register adds GET /, POST /demo/token and, with a local bundle, GET
// /demo/webchat.js.
func (d *Demo) Register(mux interface {
	Handle(string, http.Handler)
}) {
	mux.Handle("GET /{$}", http.HandlerFunc(d.index))
	mux.Handle("POST /demo/token", http.HandlerFunc(d.token))
	if d.WebChatBundle != nil {
		mux.Handle("GET "+BundlePath, http.HandlerFunc(d.bundle))
	}
}

// bundleURL is the absolute URL the page loads Web Chat from.
func (d *Demo) bundleURL() string {
	if d.WebChatBundle != nil {
		return d.Origin + BundlePath
	}
	return d.WebChatURL
}

func (d *Demo) bundle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	http.ServeContent(w, r, "webchat.js", time.Time{}, bytes.NewReader(d.WebChatBundle))
}

func (d *Demo) index(w http.ResponseWriter, r *http.Request) {
	// One origin: under another name of the listener (localhost for
	// 127.0.0.1) the bundle and the Direct Line calls would be refused.
	if u, err := url.Parse(d.Origin); err == nil && u.Host != "" && !strings.EqualFold(r.Host, u.Host) {
		http.Redirect(w, r, d.Origin+"/", http.StatusTemporaryRedirect)
		return
	}
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	n := base64.RawURLEncoding.EncodeToString(nonce)
	src := d.bundleURL()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", CSP(src, n))
	var b bytes.Buffer
	if err := page.Execute(&b, map[string]string{"WebChatURL": src, "Integrity": d.WebChatIntegrity, "Nonce": n,
		"DirectLine": d.DirectLine, "Origin": d.Origin, "Version": PinnedWebChatVersion}); err != nil {
		d.Log.Error("render demo page", "err", err)
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b.Bytes())
}

// CSP is the demo page's policy: scripts only with the page's nonce (its
// own inline scripts) and the one bundle URL (no other file of its
// origin); Web Chat needs inline styles.
func CSP(bundleURL, nonce string) string {
	return "default-src 'self'; script-src 'nonce-" + nonce + "' " + scriptSource(bundleURL) +
		"; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' blob: ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
}

// scriptSource is u as a CSP source expression: scheme, host, port and
// path (a query or fragment cannot be part of one).
func scriptSource(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "'none'"
	}
	return p.Scheme + "://" + p.Host + p.EscapedPath()
}

// NewUserID is an unguessable dl_ id (128 random bits).
func NewUserID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("web: random user id: %v", err))
	}
	return "dl_" + base64.RawURLEncoding.EncodeToString(b)
}

// token is the page's backend: it calls tokens/generate with the secret,
// exactly as a site's server would, and hands the browser only the token.
func (d *Demo) token(w http.ResponseWriter, r *http.Request) {
	userID := NewUserID()
	tok, conv, expiresIn, err := Generate(r.Context(), d.Client, d.DirectLine, d.Secret, userID)
	if err != nil {
		d.Log.Error("demo token generation failed", "err", err)
		http.Error(w, `{"error":"token unavailable"}`, http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "userId": userID, "conversationId": conv, "expiresIn": expiresIn})
}

// Generate calls POST {directLine}/tokens/generate for userID.
func Generate(ctx context.Context, client *http.Client, directLine, secret, userID string) (token, conversationID string, expiresIn int, err error) {
	body, _ := json.Marshal(map[string]any{"user": map[string]string{"id": userID}})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, directLine+"/tokens/generate", bytes.NewReader(body))
	if err != nil {
		return "", "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", "", 0, fmt.Errorf("tokens/generate: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", "", 0, fmt.Errorf("tokens/generate answered %d", resp.StatusCode)
	}
	var out struct {
		Token          string `json:"token"`
		ConversationID string `json:"conversationId"`
		ExpiresIn      int    `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		return "", "", 0, fmt.Errorf("tokens/generate: unexpected answer")
	}
	return out.Token, out.ConversationID, out.ExpiresIn, nil
}
