package redact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

const (
	canaryCard  = "4242424242424242"
	canaryEmail = "canary.user@example.org"
	canaryUser  = "dl_canaryUser0123456789"
	canaryAddr  = "203.0.113.77"
)

type valuer struct{ s string }

func (v valuer) LogValue() slog.Value { return slog.StringValue(v.s) }

type groupValuer struct{}

func (groupValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("pan", canaryCard), slog.Any("inner", valuer{canaryEmail}))
}

type payment struct {
	PAN  string
	Mail string
}

type stringer struct{}

func (stringer) String() string { return "card " + canaryCard }

func newTestLogger(t *testing.T, ps *Pseudonymizer, text bool) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	var inner slog.Handler = slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	if text {
		inner = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(NewHandler(inner, ps)), &buf
}

func testPseudonymizer(t *testing.T) *Pseudonymizer {
	t.Helper()
	ps, err := NewPseudonymizer("k1", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// Each way of smuggling PII into a log line, through JSON and text output.
func TestHandlerRedactsEverywhere(t *testing.T) {
	logs := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"message", func(l *slog.Logger) { l.Info("paid with " + canaryCard) }},
		{"string attr", func(l *slog.Logger) { l.Info("m", "text", "mail "+canaryEmail) }},
		{"key", func(l *slog.Logger) { l.Info("m", canaryCard, 1) }},
		{"key of email", func(l *slog.Logger) { l.Info("m", slog.Bool(canaryEmail, true)) }},
		{"error", func(l *slog.Logger) { l.Error("m", "err", fmt.Errorf("decode %s: %w", canaryCard, errors.New("bad"))) }},
		{"string slice", func(l *slog.Logger) { l.Info("m", "list", []string{"a", canaryEmail}) }},
		{"any slice", func(l *slog.Logger) { l.Info("m", "list", []any{1, canaryCard}) }},
		{"map", func(l *slog.Logger) { l.Info("m", "m", map[string]string{"k": canaryEmail}) }},
		{"struct", func(l *slog.Logger) { l.Info("m", "p", payment{PAN: canaryCard, Mail: canaryEmail}) }},
		{"pointer struct", func(l *slog.Logger) { l.Info("m", "p", &payment{PAN: canaryCard}) }},
		{"stringer", func(l *slog.Logger) { l.Info("m", "s", stringer{}) }},
		{"bytes", func(l *slog.Logger) { l.Info("m", "b", []byte(canaryEmail)) }},
		{"int", func(l *slog.Logger) { l.Info("m", "n", int64(4242424242424242)) }},
		{"uint", func(l *slog.Logger) { l.Info("m", "n", uint64(4242424242424242)) }},
		{"log valuer", func(l *slog.Logger) { l.Info("m", "v", valuer{canaryEmail}) }},
		{"log valuer group", func(l *slog.Logger) { l.Info("m", "v", groupValuer{}) }},
		{"group", func(l *slog.Logger) {
			l.Info("m", slog.Group("g", slog.Group("h", slog.String("x", canaryCard))))
		}},
		{"with attrs", func(l *slog.Logger) { l.With("x", canaryEmail).Info("m") }},
		{"with group name", func(l *slog.Logger) { l.WithGroup(canaryEmail).Info("m", "a", 1) }},
		{"group name", func(l *slog.Logger) { l.Info("m", slog.Group(canaryCard, slog.Int("a", 1))) }},
		{"user key", func(l *slog.Logger) { l.Info("m", "user", canaryUser) }},
		{"user key case", func(l *slog.Logger) { l.Info("m", "User_ID", canaryUser) }},
		{"user key in group", func(l *slog.Logger) { l.Info("m", slog.Group("req", "client_addr", canaryAddr)) }},
		{"group under user key", func(l *slog.Logger) { l.Info("m", slog.Group("user", "id", canaryUser)) }},
		{"user helper", func(l *slog.Logger) { l.Info("m", User(canaryUser)) }},
		{"client helper", func(l *slog.Logger) { l.Info("m", Client(canaryAddr+":5555")) }},
		{"with user", func(l *slog.Logger) { l.With("user_id", canaryUser).Info("m") }},
	}
	for _, withKey := range []bool{true, false} {
		for _, text := range []bool{false, true} {
			for _, tc := range logs {
				t.Run(fmt.Sprintf("%s/key=%v/text=%v", tc.name, withKey, text), func(t *testing.T) {
					var ps *Pseudonymizer
					if withKey {
						ps = testPseudonymizer(t)
					}
					l, buf := newTestLogger(t, ps, text)
					tc.log(l)
					out := buf.String()
					if out == "" {
						t.Fatal("nothing logged")
					}
					for _, c := range []string{canaryCard, canaryEmail, canaryUser, canaryAddr, "4242 4242"} {
						if strings.Contains(out, c) {
							t.Fatalf("%q leaked: %s", c, out)
						}
					}
				})
			}
		}
	}
}

func TestHandlerPseudonyms(t *testing.T) {
	ps := testPseudonymizer(t)
	l, buf := newTestLogger(t, ps, false)
	l.Info("a", "user", canaryUser, "client_addr", canaryAddr)
	l.Info("b", User(canaryUser), Client(canaryAddr+":40000"))
	l.Info("c", "user", "dl_someoneElse")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := ps.User(canaryUser)
	if !regexp.MustCompile(`^u_[0-9a-f]{16}$`).MatchString(want) {
		t.Fatalf("user pseudonym %q", want)
	}
	if wa := ps.Addr(canaryAddr); !regexp.MustCompile(`^a_[0-9a-f]{16}$`).MatchString(wa) {
		t.Fatalf("addr pseudonym %q", wa)
	}
	for _, ln := range lines[:2] {
		if !strings.Contains(ln, `"user":"`+want+`"`) || !strings.Contains(ln, `"client_addr":"`+ps.Addr(canaryAddr)+`"`) {
			t.Fatalf("line lacks the pseudonyms %s / %s: %s", want, ps.Addr(canaryAddr), ln)
		}
	}
	if strings.Contains(lines[2], want) {
		t.Fatal("two users share a pseudonym")
	}
	// Keyed: another key gives other pseudonyms; it is not a plain hash.
	other, _ := NewPseudonymizer("k2", bytes.Repeat([]byte{8}, 32))
	if other.User(canaryUser) == want {
		t.Fatal("pseudonym does not depend on the key")
	}
	for _, plain := range []string{canaryUser, "user\x00" + canaryUser} {
		sum := sha256.Sum256([]byte(plain))
		if strings.Contains(want, hex.EncodeToString(sum[:8])) {
			t.Fatal("the pseudonym is a plain hash of the id")
		}
	}
	if _, err := NewPseudonymizer("short", make([]byte, 16)); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestHandlerNoKeyPlaceholders(t *testing.T) {
	l, buf := newTestLogger(t, nil, false)
	l.Info("m", "user", canaryUser, "client", canaryAddr)
	if out := buf.String(); !strings.Contains(out, `"user":"[user]"`) || !strings.Contains(out, `"client":"[addr]"`) {
		t.Fatalf("no placeholders: %s", out)
	}
	// Through a plain handler the helpers never show the id either.
	var plain bytes.Buffer
	slog.New(slog.NewJSONHandler(&plain, nil)).Info("m", User(canaryUser), Client(canaryAddr))
	if strings.Contains(plain.String(), canaryUser) || strings.Contains(plain.String(), canaryAddr) {
		t.Fatalf("helpers leaked through a plain handler: %s", plain.String())
	}
}

func TestHandlerKeepsOrdinaryFields(t *testing.T) {
	l, buf := newTestLogger(t, testPseudonymizer(t), false)
	l.Info("bot delivery failed; will retry", "conversation", "Xr3Lq0vZ1g8yT5uWm2Kp7A", "status", 502, "listen", "127.0.0.1:8080", "at", "2026-12-01T10:30:00Z")
	out := buf.String()
	for _, want := range []string{`"msg":"bot delivery failed; will retry"`, `"conversation":"Xr3Lq0vZ1g8yT5uWm2Kp7A"`, `"status":502`, `"listen":"127.0.0.1:8080"`, `"at":"2026-12-01T10:30:00Z"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("%s missing from %s", want, out)
		}
	}
}

func TestWithPseudonymizerSwapsKey(t *testing.T) {
	var buf bytes.Buffer
	base := NewHandler(slog.NewJSONHandler(&buf, nil), nil)
	ps := testPseudonymizer(t)
	h := WithPseudonymizer(base, ps)
	if _, ok := h.(*Handler); !ok || h.(*Handler).inner != base.inner {
		t.Fatal("redacting handler wrapped twice")
	}
	slog.New(h).Info("m", "user", canaryUser)
	if !strings.Contains(buf.String(), ps.User(canaryUser)) {
		t.Fatalf("no pseudonym: %s", buf.String())
	}
}

func TestHandlerEnabled(t *testing.T) {
	h := NewHandler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), nil)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Enabled not delegated")
	}
}

// http.Server's error log writes the client's address into the message.
func TestAddrsInMessage(t *testing.T) {
	ps := testPseudonymizer(t)
	var buf bytes.Buffer
	h := AddrsInMessage(NewHandler(slog.NewJSONHandler(&buf, nil), ps))
	l := slog.NewLogLogger(h, slog.LevelWarn)
	l.Printf("http: TLS handshake error from %s:52344: EOF", canaryAddr)
	l.Printf("http: TLS handshake error from [2001:db8::7]:443: EOF")
	l.Printf("http: panic serving 10.1.2.3:5: card %s", canaryCard)
	out := buf.String()
	for _, leak := range []string{canaryAddr, "2001:db8::7", "10.1.2.3", canaryCard} {
		if strings.Contains(out, leak) {
			t.Fatalf("%s leaked: %s", leak, out)
		}
	}
	if !strings.Contains(out, "from "+ps.Addr(canaryAddr)+": EOF") || !strings.Contains(out, "from "+ps.Addr("2001:db8::7")+": EOF") {
		t.Fatalf("no pseudonyms: %s", out)
	}
}

type badErr struct{ msg string }

func (e *badErr) Error() string { return e.msg }

func TestHandlerSurvivesPanickingValues(t *testing.T) {
	l, buf := newTestLogger(t, nil, false)
	var nilErr *badErr
	l.Error("m", "err", error(nilErr))
	if !strings.Contains(buf.String(), `"err":"[unprintable]"`) {
		t.Fatalf("got %s", buf.String())
	}
}
