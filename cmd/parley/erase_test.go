package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// eraseFixture is a data directory with a store held open the whole time,
// as the running server would hold it.
type eraseFixture struct {
	dir string
	st  *sqlite.Store
}

func newEraseFixture(t *testing.T) *eraseFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.CreateBot(ctx, store.Bot{ID: "bot", Name: "b", Endpoint: "https://bot.example.com/api/messages", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"site1", "site2"} {
		if err := st.CreateSite(ctx, store.Site{ID: id, BotID: "bot", Name: id, EnhancedAuth: true, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return &eraseFixture{dir: dir, st: st}
}

// conv stores a conversation with n messages carrying text, an upload,
// a pending delivery, a session and a data key wrapped by kek.
func (f *eraseFixture) conv(t *testing.T, id, site, user, text, kek string, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.st.CreateConversation(ctx, store.Conversation{ID: id, BotID: "bot", SiteID: site, UserID: user, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := store.NewRecord{Build: func(int64) ([]byte, error) { return []byte(`{"text":"` + text + `"}`), nil }}
		if i == 0 {
			r.Attachments = []store.Attachment{{ID: "file-" + id, ContentType: "text/plain", Data: []byte("upload " + text), CreatedAt: time.Now()}}
		}
		out := []store.NewOutbox{{BotID: "bot", Build: func([]int64) (string, []byte, error) { return "a", []byte("to bot " + text), nil }}}
		if _, err := f.st.Append(ctx, id, []store.NewRecord{r}, out); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.PutSession(ctx, store.Session{ID: "sess-" + id, ConversationID: id, UserID: user, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutDataKey(ctx, store.DataKey{Scope: store.DataKeyScope(id), KEKID: kek, Wrapped: []byte("wrapped"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// inFiles reports which of the database's files hold needle.
func (f *eraseFixture) inFiles(t *testing.T, needle string) []string {
	t.Helper()
	var in []string
	for _, name := range []string{"parley.db", "parley.db-wal", "parley.db-journal"} {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err == nil && bytes.Contains(b, []byte(needle)) {
			in = append(in, name)
		}
	}
	return in
}

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestEraseUser(t *testing.T) {
	f := newEraseFixture(t)
	ctx := context.Background()
	f.conv(t, "alice1", "site1", "dl_alice", "ALICE-CANARY-4111111111111111", "kek-1", 3)
	f.conv(t, "alice2", "site2", "dl_alice", "ALICE-CANARY-second", "kek-2", 2)
	f.conv(t, "bob1", "site1", "dl_bob", "BOB-KEEPS-THIS", "kek-1", 2)
	f.conv(t, "anon1", "site1", "", "ANON-KEEPS-THIS", "kek-1", 1)
	// The "server" has alice's conversation cached.
	if _, err := f.st.GetConversation(ctx, "alice1"); err != nil {
		t.Fatal(err)
	}
	if len(f.inFiles(t, "ALICE-CANARY")) == 0 {
		t.Fatal("the canary is not in the files before erasure: the scan cannot fail")
	}

	// Refused without --yes off a terminal; nothing erased.
	_, _, err := run(t, nil, "erase", "--data", f.dir, "--user", "dl_alice")
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("erase without --yes: %v (exit %d), want exit %d", err, exitCode(err), exitRefused)
	}
	if _, err := f.st.GetDataKey(ctx, "conv:alice1"); err != nil {
		t.Fatalf("a refused erase destroyed a key: %v", err)
	}

	before := time.Now().UTC()
	out, _, err := run(t, nil, "erase", "--data", f.dir, "--user", "dl_alice", "--yes", "--json")
	if err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	var rc eraseReceipt
	if err := json.Unmarshal([]byte(out), &rc); err != nil {
		t.Fatalf("receipt is not JSON: %v\n%s", err, out)
	}
	// The receipt matches what was stored.
	if rc.Receipt != receiptVersion || rc.Request["user"] != "dl_alice" || rc.ErasedAt.Before(before.Add(-time.Second)) || rc.ErasedAt.Location() != time.UTC || !rc.Scrubbed {
		t.Fatalf("receipt header = %+v", rc)
	}
	// Destroying a KEK here does not reach a backup that holds the local
	// provider's keys directory too: the receipt must not promise it does.
	if !strings.Contains(rc.Backups, "keys/") || !strings.Contains(rc.Backups, "master key") {
		t.Fatalf("backups note = %q; it must say a backup with the keys directory stays readable", rc.Backups)
	}
	want := eraseTotals{Conversations: 2, Activities: 5, OutboxItems: 5, Attachments: 2, Sessions: 2, DataKeys: 2}
	if rc.Totals != want {
		t.Fatalf("totals = %+v, want %+v", rc.Totals, want)
	}
	if len(rc.Conversations) != 2 || rc.Conversations[0].ID != "alice1" || rc.Conversations[0].Activities != 3 || rc.Conversations[1].ID != "alice2" || rc.Conversations[1].SiteID != "site2" {
		t.Fatalf("conversations = %+v", rc.Conversations)
	}
	if strings.Join(rc.DataKeyScopes, ",") != "conv:alice1,conv:alice2" || strings.Join(rc.KEKIDs, ",") != "kek-1,kek-2" {
		t.Fatalf("keys = %v wrapped by %v", rc.DataKeyScopes, rc.KEKIDs)
	}

	// Gone, as seen by the still-running "server" and in the raw files.
	for _, id := range []string{"alice1", "alice2"} {
		if _, err := f.st.GetDataKey(ctx, store.DataKeyScope(id)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s's data key: %v", id, err)
		}
		if recs, _ := f.st.Read(ctx, id, -1, 100); len(recs) != 0 {
			t.Errorf("%s: %d records left", id, len(recs))
		}
		if _, err := f.st.Append(ctx, id, []store.NewRecord{{Build: func(int64) ([]byte, error) { return []byte("late"), nil }}}, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the server appended to erased %s: %v", id, err)
		}
		if _, err := f.st.GetAttachment(ctx, "file-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s's upload: %v", id, err)
		}
		if _, err := f.st.GetSession(ctx, "sess-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s's session: %v", id, err)
		}
	}
	if in := f.inFiles(t, "ALICE-CANARY"); len(in) > 0 {
		t.Errorf("alice's text is still in %v", in)
	}
	// Others untouched.
	for id, text := range map[string]string{"bob1": "BOB-KEEPS-THIS", "anon1": "ANON-KEEPS-THIS"} {
		if recs, _ := f.st.Read(ctx, id, -1, 100); len(recs) == 0 || !bytes.Contains(recs[0].Body, []byte(text)) {
			t.Errorf("%s lost its history", id)
		}
		if _, err := f.st.GetDataKey(ctx, store.DataKeyScope(id)); err != nil {
			t.Errorf("%s's data key: %v", id, err)
		}
		if len(f.inFiles(t, text)) == 0 {
			t.Errorf("%s's text left the files", id)
		}
	}

	// Audited as the admin API's erasure: one entry per conversation,
	// by the local principal; the user id is not in the audit log.
	out, _, err = run(t, nil, "audit", "export", "--data", f.dir)
	if err != nil {
		t.Fatalf("audit export: %v", err)
	}
	erasedIn := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.Action == "conversations.erase" && e.Outcome == audit.Success && strings.HasPrefix(e.Actor, "local:") {
			erasedIn[e.Target] = true
		}
	}
	if !erasedIn["conversation:alice1"] || !erasedIn["conversation:alice2"] || len(erasedIn) != 3 || !erasedIn["user-tokens"] {
		t.Errorf("audited erasures = %v, want alice1, alice2 and the user's tokens", erasedIn)
	}
	if strings.Contains(out, "dl_alice") {
		t.Error("the audit log holds the erased user's id")
	}
	if out, _, err := run(t, nil, "audit", "verify", "--data", f.dir); err != nil {
		t.Errorf("audit verify after the erasure: %v\n%s", err, out)
	}

	// Again: nothing to erase, a clear message, exit 3.
	_, _, err = run(t, nil, "erase", "--data", f.dir, "--user", "dl_alice", "--yes")
	if exitCode(err) != exitNothing || !strings.Contains(err.Error(), `no conversation is bound to user "dl_alice"`) {
		t.Fatalf("second erase: %v (exit %d), want exit %d", err, exitCode(err), exitNothing)
	}
	_, _, err = run(t, nil, "erase", "--data", f.dir, "--user", "dl_nobody", "--yes")
	if exitCode(err) != exitNothing {
		t.Fatalf("unknown user: %v (exit %d)", err, exitCode(err))
	}
}

func TestEraseConversation(t *testing.T) {
	f := newEraseFixture(t)
	f.conv(t, "anon1", "site1", "", "ANON-CANARY", "kek-1", 2)
	f.conv(t, "anon2", "site1", "", "OTHER-ANON", "kek-1", 1)
	out, _, err := run(t, nil, "erase", "--data", f.dir, "--conversation", "anon1", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"conversation anon1", "erased at:", "1 conversation(s): 2 activities, 1 attachments, 2 pending deliveries", "data key conv:anon1 (wrapped by kek-1) destroyed", "scrubbed:  true"} {
		if !strings.Contains(out, want) {
			t.Errorf("receipt lacks %q:\n%s", want, out)
		}
	}
	if in := f.inFiles(t, "ANON-CANARY"); len(in) > 0 {
		t.Errorf("the erased conversation's text is still in %v", in)
	}
	if recs, _ := f.st.Read(context.Background(), "anon2", -1, 10); len(recs) != 1 {
		t.Error("the other conversation lost its history")
	}
	_, _, err = run(t, nil, "erase", "--data", f.dir, "--conversation", "anon1", "--yes")
	if exitCode(err) != exitNothing {
		t.Fatalf("erasing it again: %v (exit %d), want %d", err, exitCode(err), exitNothing)
	}
	for name, args := range map[string][]string{
		"neither": {},
		"both":    {"--user", "dl_a", "--conversation", "anon2"},
	} {
		if _, _, err := run(t, nil, append([]string{"erase", "--data", f.dir, "--yes"}, args...)...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSiteSetRetention(t *testing.T) {
	f := newEraseFixture(t)
	set := func(args ...string) (string, error) {
		out, _, err := run(t, nil, append([]string{"site", "set-retention", "--data", f.dir, "--site", "site1"}, args...)...)
		return out, err
	}
	for args, want := range map[string]string{
		"--after 90d":                          `"mode": "after",` + "\n" + `    "after": "90d"`,
		"--after 30m":                          `"after": "30m"`,
		"--on-end-of-conversation":             `"mode": "end-of-conversation"`,
		"--on-end-of-conversation --after 12h": `"after": "12h"`,
		"--ephemeral":                          `"mode": "ephemeral"`,
		"--default":                            `"mode": "default"`,
		"--after 2y":                           `"after": "2y"`,
	} {
		out, err := set(append(strings.Fields(args), "--json")...)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("%s: %q, %v; want %q", args, out, err, want)
		}
	}
	if _, err := set("--after", "2y"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.st.GetSite(context.Background(), "site1")
	if got.Retention != (store.Retention{Mode: store.RetentionAfter, After: 2 * 365 * 24 * time.Hour}) {
		t.Fatalf("stored retention = %+v", got.Retention)
	}
	for _, args := range []string{"", "--after 0d", "--after -1d", "--after 30s", "--after 11y", "--after 1.5h", "--after 90", "--ephemeral --after 1h",
		"--ephemeral --default", "--default --after 1d"} {
		if out, err := set(strings.Fields(args)...); err == nil {
			t.Errorf("%q accepted: %s", args, out)
		}
	}
	if _, _, err := run(t, nil, "site", "set-retention", "--data", f.dir, "--site", "nope", "--after", "1d"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown site: %v", err)
	}
	out, _, err := run(t, nil, "site", "list", "--data", f.dir)
	if err != nil || !strings.Contains(out, "retention=after 2y") || !strings.Contains(out, "retention=default") {
		t.Fatalf("list = %q, %v", out, err)
	}
}
