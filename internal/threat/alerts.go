package threat

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/connector"
)

// Rule is one alert rule: Threshold failures or more within Window,
// counted per By: "client" (a client pseudonym), "site", "user_agent"
// (a family) or "total" (all failures together).
type Rule struct {
	Name      string
	Threshold int64
	Window    time.Duration
	By        string
	// WebhookURL, when set, receives each alert as a signed POST.
	WebhookURL string
	// Secret signs the webhook (HMAC-SHA256).
	Secret []byte
}

// SignatureHeader carries a webhook's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of t + "." + body>".
const SignatureHeader = "X-Parley-Signature"

// Sign is the SignatureHeader value for body sent at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value for body against secret, and that
// its time is within tolerance of now (a replayed alert is refused).
// Receivers written in Go can use it; the README shows the same check.
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("verify signature: malformed header, want t=<unix>,v1=<hex>")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("verify signature: timestamp %s is outside the %v tolerance", time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	want := Sign(secret, body, time.Unix(sec, 0))
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("verify signature: signature does not match")
	}
	return nil
}

// Alert is what a webhook receives (JSON).
type Alert struct {
	// ID is unique to the alert and the same in every retry of its
	// webhook: a receiver drops an ID it has seen (the signature's
	// timestamp tolerance alone lets a captured request be replayed
	// within it).
	ID        string    `json:"id"`
	Type      string    `json:"type"` // "parley.security.alert"
	Rule      string    `json:"rule"`
	By        string    `json:"by"`
	Site      string    `json:"site,omitempty"`
	Client    string    `json:"client,omitempty"` // a pseudonym
	UserAgent string    `json:"user_agent,omitempty"`
	Count     int64     `json:"count"`
	Threshold int64     `json:"threshold"`
	Window    string    `json:"window"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	FiredAt   time.Time `json:"fired_at"`
}

// AlerterConfig tunes an Alerter.
type AlerterConfig struct {
	// Client sends webhooks: an SSRF-guarded client (connector.NewBotClient).
	Client *http.Client
	// Queue bounds the webhooks waiting (default 256); past it new alerts
	// are logged, not sent.
	Queue int
	// Attempts per webhook (default 5), Backoff before the second (default
	// 1 s, doubling).
	Attempts int
	Backoff  time.Duration
}

// Alerter checks the rules and sends webhooks from one goroutine with a
// bounded queue: nothing it does blocks request handling.
type Alerter struct {
	rules  []Rule
	cfg    AlerterConfig
	logger *slog.Logger
	queue  chan job
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	start  sync.Once
	runs   bool
	mu     sync.Mutex
	sent   map[string]int // rule -> webhooks delivered (tests, metrics)
	failed map[string]int
}

type job struct {
	rule Rule
	body []byte
}

// NewAlerter builds an alerter; Start starts its webhook sender, Close
// stops it.
func NewAlerter(rules []Rule, cfg AlerterConfig, logger *slog.Logger) *Alerter {
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	a := &Alerter{rules: rules, cfg: cfg, logger: logger, queue: make(chan job, cfg.Queue), quit: make(chan struct{}), done: make(chan struct{}),
		sent: map[string]int{}, failed: map[string]int{}}
	return a
}

// Start starts the webhook sender (once).
func (a *Alerter) Start() {
	if a == nil {
		return
	}
	a.start.Do(func() {
		a.mu.Lock()
		a.runs = true
		a.mu.Unlock()
		go a.send()
	})
}

// Close stops the sender; queued webhooks are dropped.
func (a *Alerter) Close() {
	if a == nil {
		return
	}
	a.once.Do(func() { close(a.quit) })
	a.start.Do(func() {}) // never starts after Close
	a.mu.Lock()
	runs := a.runs
	a.mu.Unlock()
	if runs {
		<-a.done
	}
}

// Delivered is how many webhooks of rule were delivered and how many
// failed for good.
func (a *Alerter) Delivered(rule string) (sent, failed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent[rule], a.failed[rule]
}

func byFields(by string) []string {
	switch by {
	case "client":
		return []string{"client"}
	case "site":
		return []string{"site"}
	case "user_agent":
		return []string{"user_agent"}
	}
	return nil
}

// Check evaluates every rule over the store's counts at now: each group at
// or over its threshold within the window fires once per window (the
// store's ClaimAlert decides, across replicas).
func (a *Alerter) Check(ctx context.Context, st Store, now time.Time) {
	if a == nil {
		return
	}
	for _, r := range a.rules {
		groups, err := st.AuthFailureTotals(ctx, now.Add(-r.Window), byFields(r.By), r.Threshold, 100)
		if err != nil {
			if ctx.Err() == nil {
				a.logger.Error("security alert rule could not be checked", "rule", r.Name, "err", err)
			}
			continue
		}
		for _, g := range groups {
			k := r.By + ":"
			switch r.By {
			case "client":
				k += g.Client
			case "site":
				k += g.Site
			case "user_agent":
				k += g.UserAgent
			}
			claimed, err := st.ClaimAlert(ctx, r.Name, k, now, r.Window)
			if err != nil {
				if ctx.Err() == nil {
					a.logger.Error("security alert could not be claimed; it is checked again at the next flush", "rule", r.Name, "err", err)
				}
				continue
			}
			if !claimed {
				continue
			}
			al := Alert{ID: newAlertID(), Type: "parley.security.alert", Rule: r.Name, By: r.By, Site: g.Site, Client: g.Client, UserAgent: g.UserAgent,
				Count: g.Count, Threshold: r.Threshold, Window: r.Window.String(), FirstSeen: g.FirstSeen, LastSeen: g.LastSeen, FiredAt: now.UTC()}
			// The client is a pseudonym already: logged under a key the
			// redacting handler leaves as it is.
			a.logger.Warn("security alert: authentication failures over the threshold", "rule", r.Name, "by", r.By,
				"site", g.Site, "client_pseudonym", g.Client, "user_agent_family", g.UserAgent,
				"failures", g.Count, "threshold", r.Threshold, "window", r.Window.String())
			if r.WebhookURL == "" {
				continue
			}
			body, _ := json.Marshal(al)
			select {
			case a.queue <- job{rule: r, body: body}:
			default:
				a.logger.Warn("security alert webhook queue is full: this alert is logged only", "rule", r.Name)
			}
		}
	}
}

func (a *Alerter) send() {
	defer close(a.done)
	for {
		select {
		case <-a.quit:
			return
		case j := <-a.queue:
			err := a.deliver(j)
			a.mu.Lock()
			if err != nil {
				a.failed[j.rule.Name]++
			} else {
				a.sent[j.rule.Name]++
			}
			a.mu.Unlock()
			if err != nil {
				a.logger.Error("security alert webhook failed", "rule", j.rule.Name, "err", err)
			}
		}
	}
}

// newAlertID is 128 random bits in hex.
func newAlertID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b)
}

// permanent marks an error not worth retrying.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func (a *Alerter) deliver(j job) error {
	wait := a.cfg.Backoff
	var err error
	for attempt := 1; attempt <= a.cfg.Attempts; attempt++ {
		err = a.post(j)
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) || attempt == a.cfg.Attempts {
			break
		}
		select {
		case <-a.quit:
			return fmt.Errorf("send webhook: stopped: %w", err)
		case <-time.After(wait):
		}
		wait *= 2
	}
	return err
}

func (a *Alerter) post(j job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-a.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.rule.WebhookURL, bytes.NewReader(j.body))
	if err != nil {
		return permanent{fmt.Errorf("send webhook to %s: the URL does not parse", WebhookHost(j.rule.WebhookURL))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Parley-Security-Alert/1")
	req.Header.Set(SignatureHeader, Sign(j.rule.Secret, j.body, time.Now()))
	res, err := a.cfg.Client.Do(req)
	if err != nil {
		err = redactWebhookError(err)
		if isRefused(err) {
			return permanent{fmt.Errorf("send webhook: %w", err)}
		}
		return fmt.Errorf("send webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return nil
	case res.StatusCode >= 300 && res.StatusCode < 500 && res.StatusCode != 408 && res.StatusCode != 429:
		// Redirects are not followed (the signed alert stays where it
		// was configured to go); other client errors will not change.
		return permanent{fmt.Errorf("send webhook: the receiver answered %d", res.StatusCode)}
	default:
		return fmt.Errorf("send webhook: the receiver answered %d", res.StatusCode)
	}
}

// WebhookHost is a webhook URL as errors and logs show it: scheme and
// host only. The path and query are the receiver's secret (Slack-style
// hooks/services/T/B/<secret>, ?code= keys), never logged.
func WebhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[unparseable URL]"
	}
	return u.Scheme + "://" + u.Host
}

// redactWebhookError removes the webhook URL's path and query from err:
// net/http's *url.Error embeds the whole request URL.
func redactWebhookError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = WebhookHost(ue.URL)
	}
	return err
}

// isRefused reports a webhook address Parley refuses to connect to (SSRF
// protection): retrying cannot help.
func isRefused(err error) bool { return errors.Is(err, connector.ErrForbiddenAddress) }
