// Package web serves the demo page: the official Web Chat, started with a
// token that the page's own backend mints with the site secret for a fresh
// dl_ user id (the secret never reaches the browser).
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

//go:embed static/demo.html
var files embed.FS

var page = template.Must(template.ParseFS(files, "static/demo.html"))

// Demo is the demo site: a page and its token endpoint.
type Demo struct {
	// DirectLine is the Direct Line base URL (…/v3/directline).
	DirectLine string
	// Secret is the site secret, used only server-side.
	Secret string
	// WebChatURL is the Web Chat bundle the page loads.
	WebChatURL string
	Origin     string
	Client     *http.Client
	Log        *slog.Logger
}

// Register adds GET / and POST /demo/token.
func (d *Demo) Register(mux interface {
	Handle(string, http.Handler)
}) {
	mux.Handle("GET /{$}", http.HandlerFunc(d.index))
	mux.Handle("POST /demo/token", http.HandlerFunc(d.token))
}

func (d *Demo) index(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Web Chat needs inline styles; scripts only from self and the bundle.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline' "+scriptOrigin(d.WebChatURL)+"; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' blob: ws: wss:; frame-ancestors 'none'")
	var b bytes.Buffer
	if err := page.Execute(&b, map[string]string{"WebChatURL": d.WebChatURL, "DirectLine": d.DirectLine, "Origin": d.Origin}); err != nil {
		d.Log.Error("render demo page", "err", err)
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b.Bytes())
}

func scriptOrigin(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "/"); j >= 0 {
			return u[:i+3+j]
		}
		return u
	}
	return ""
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
