// Package echobot is the demo's bot: a plain HTTP bot on its own loopback
// port, reached through Parley's normal delivery path, that echoes what it
// receives and says which user id the gateway bound.
package echobot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type account struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
}

type attachment struct {
	ContentType string `json:"contentType,omitempty"`
	ContentURL  string `json:"contentUrl,omitempty"`
	Name        string `json:"name,omitempty"`
	// Untrusted is Parley's mark on a link a client supplied.
	Untrusted bool `json:"parleyUntrusted,omitempty"`
}

type activity struct {
	Type         string  `json:"type"`
	ID           string  `json:"id,omitempty"`
	Text         string  `json:"text,omitempty"`
	ServiceURL   string  `json:"serviceUrl,omitempty"`
	From         account `json:"from"`
	Recipient    account `json:"recipient"`
	Conversation struct {
		ID string `json:"id"`
	} `json:"conversation"`
	ChannelID    string       `json:"channelId,omitempty"`
	MembersAdded []account    `json:"membersAdded,omitempty"`
	Attachments  []attachment `json:"attachments,omitempty"`
}

// Bot is an http.Handler for the bot's messaging endpoint.
type Bot struct {
	client *http.Client
	log    *slog.Logger
	auth   *Auth // nil: an insecure development bot
	// fetch downloads attachments: it never follows a redirect.
	fetch *http.Client
}

// New returns the echo bot; with auth it checks Parley's channel token on
// every delivery and authenticates its replies.
func New(log *slog.Logger, auth *Auth) *Bot {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // replies go to one gateway; keep connections
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Bot{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, log: log, auth: auth,
		fetch: &http.Client{Transport: tr, Timeout: 30 * time.Second, CheckRedirect: noRedirect}}
}

func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var in activity
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		http.Error(w, "bad activity", http.StatusBadRequest)
		return
	}
	if b.auth != nil {
		if err := b.auth.verify(r.Context(), b.client, r.Header.Get("Authorization"), in.ServiceURL, in.ChannelID); err != nil {
			b.log.Warn("echo bot refused a delivery: channel token invalid", "err", err)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	var reply string
	switch in.Type {
	case "conversationUpdate":
		for _, m := range in.MembersAdded {
			if m.ID != in.Recipient.ID {
				reply = fmt.Sprintf("Hello! I am the Parley echo bot. The gateway bound you to user id %s; every message you send reaches me under that id, whatever the page claims. Send a file, or type \"cards\" to see cards.", m.ID)
			}
		}
	case "message":
		if strings.EqualFold(strings.TrimSpace(in.Text), "cards") {
			// Typing, then a hero card and an Adaptive Card, sent after
			// the delivery is acknowledged (as a bot doing work would).
			go b.cards(context.WithoutCancel(r.Context()), in)
			w.WriteHeader(http.StatusOK)
			return
		}
		var parts []string
		if in.Text != "" {
			parts = append(parts, fmt.Sprintf("You said: %s", in.Text))
		}
		for _, a := range in.Attachments {
			parts = append(parts, b.describe(r.Context(), in.ServiceURL, a))
		}
		if len(parts) == 0 {
			parts = append(parts, "You sent an empty message.")
		}
		reply = strings.Join(parts, "\n\n") + fmt.Sprintf("\n\n(from %s)", in.From.ID)
	}
	if reply != "" {
		if err := b.reply(r.Context(), in, reply); err != nil {
			b.log.Warn("echo bot reply failed", "err", err)
			http.Error(w, "reply failed", http.StatusBadGateway)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// describe fetches an uploaded file through Parley's download link. It
// fetches nothing else: a link a client put in an attachment could point
// anywhere (the gateway's /metrics, a cloud metadata address), so only
// Parley's own attachment links, under the activity's serviceUrl, are
// followed, and without redirects.
func (b *Bot) describe(ctx context.Context, serviceURL string, a attachment) string {
	if a.ContentURL == "" {
		return fmt.Sprintf("You sent %s (%s).", a.Name, a.ContentType)
	}
	if a.Untrusted || !isParleyAttachmentURL(serviceURL, a.ContentURL) {
		return fmt.Sprintf("You sent a link to %s (%s); I only download files sent through the upload button.", a.Name, a.ContentType)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.ContentURL, nil)
	if err != nil {
		return fmt.Sprintf("You sent %s, but its link is invalid.", a.Name)
	}
	resp, err := b.fetch.Do(req)
	if err != nil {
		return fmt.Sprintf("You sent %s, but I could not fetch it.", a.Name)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("You sent %s, but fetching it gave %d.", a.Name, resp.StatusCode)
	}
	return fmt.Sprintf("You sent %s (%s, %d bytes).", a.Name, a.ContentType, n)
}

// isParleyAttachmentURL reports whether u is one of the download links
// Parley writes into the bot's copy of an upload:
// <serviceUrl>v3/attachments/{id}/views/{view}?t=…, same scheme, host and
// port as serviceUrl, no user info, no dot segments or encoded slashes.
func isParleyAttachmentURL(serviceURL, u string) bool {
	base, err := url.Parse(serviceURL)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return false
	}
	l, err := url.Parse(u)
	if err != nil || l.Scheme != base.Scheme || l.Host != base.Host || l.User != nil || l.RawPath != "" || l.Fragment != "" {
		return false
	}
	rest, ok := strings.CutPrefix(l.Path, strings.TrimRight(base.Path, "/")+"/v3/attachments/")
	if !ok {
		return false
	}
	seg := strings.Split(rest, "/")
	return len(seg) == 3 && idSegment(seg[0]) && seg[1] == "views" && idSegment(seg[2]) && l.Query().Get("t") != ""
}

func idSegment(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// cards answers "cards": a typing indicator, then a hero card and an
// Adaptive Card.
func (b *Bot) cards(ctx context.Context, in activity) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.send(ctx, in, map[string]any{"type": "typing"}); err != nil {
		b.log.Warn("echo bot typing failed", "err", err)
		return
	}
	time.Sleep(1500 * time.Millisecond)
	hero := map[string]any{"contentType": "application/vnd.microsoft.card.hero", "content": map[string]any{
		"title": "Parley hero card", "subtitle": "Rendered by Web Chat", "text": "A card from the echo bot, relayed by Parley.",
		"buttons": []map[string]any{{"type": "imBack", "title": "Say hello", "value": "hello"}},
	}}
	adaptive := map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": map[string]any{
		"type": "AdaptiveCard", "version": "1.3", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"body": []map[string]any{
			{"type": "TextBlock", "text": "Parley adaptive card", "weight": "Bolder", "size": "Medium"},
			{"type": "FactSet", "facts": []map[string]string{{"title": "Bound user", "value": in.From.ID}}},
		},
	}}
	msg := map[string]any{"type": "message", "attachmentLayout": "list", "attachments": []any{hero, adaptive}}
	if err := b.send(ctx, in, msg); err != nil {
		b.log.Warn("echo bot cards failed", "err", err)
	}
}

func (b *Bot) reply(ctx context.Context, in activity, text string) error {
	return b.send(ctx, in, map[string]any{"type": "message", "text": text})
}

// send posts out as a reply to in through the Bot Connector API.
func (b *Bot) send(ctx context.Context, in activity, out map[string]any) error {
	out["from"], out["recipient"] = in.Recipient, in.From
	out["conversation"] = map[string]string{"id": in.Conversation.ID}
	out["replyToId"] = in.ID
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	u := strings.TrimRight(in.ServiceURL, "/") + "/v3/conversations/" + url.PathEscape(in.Conversation.ID) + "/activities"
	if in.ID != "" {
		u += "/" + url.PathEscape(in.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if b.auth != nil {
		tok, err := b.auth.accessToken(ctx, b.client)
		if err != nil {
			return fmt.Errorf("access token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read the answer to the end so the connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gateway answered %d: %.512s", resp.StatusCode, msg)
	}
	return nil
}
