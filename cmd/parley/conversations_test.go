package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// conversation list shows ids, times and counts, never content or user
// ids; conversation delete erases one (data key included) while another
// process holds the store open, as the server does.
func TestConversationListAndDelete(t *testing.T) {
	f := newEraseFixture(t)
	f.conv(t, "c1", "site1", "dl_alice@example.com", "PLAINTEXT-ONE", "kek-1", 3)
	f.conv(t, "c2", "site1", "", "PLAINTEXT-TWO", "kek-1", 1)
	f.conv(t, "c3", "site2", "dl_bob", "PLAINTEXT-THREE", "kek-1", 2)

	out, stderr, err := run(t, nil, "conversation", "list", "--data", f.dir, "--json")
	var list []conversationJSON
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 {
		t.Fatalf("conversation list --json = %q, %v (stderr %q)", out, err, stderr)
	}
	byID := map[string]conversationJSON{}
	for _, c := range list {
		byID[c.ID] = c
	}
	if c := byID["c1"]; c.SiteID != "site1" || c.BotID != "bot" || !c.UserBound || c.Activities != 3 || c.Deliveries != 3 || c.Attachments != 1 || c.CreatedAt.IsZero() || c.LastActivity.IsZero() {
		t.Errorf("c1 = %+v", c)
	}
	if byID["c2"].UserBound {
		t.Errorf("c2 has no bound user: %+v", byID["c2"])
	}
	text, _, err := run(t, nil, "conversation", "list", "--data", f.dir)
	if err != nil || !strings.Contains(text, "c1\tsite1\tbot\t") {
		t.Fatalf("conversation list = %q, %v", text, err)
	}
	for _, o := range []string{out, text} {
		for _, secret := range []string{"PLAINTEXT", "dl_alice", "dl_bob"} {
			if strings.Contains(o, secret) {
				t.Fatalf("conversation list shows %q:\n%s", secret, o)
			}
		}
	}
	out, _, _ = run(t, nil, "conversation", "list", "--data", f.dir, "--site", "site2", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ID != "c3" {
		t.Fatalf("--site site2 = %s", out)
	}
	if _, stderr, _ := run(t, nil, "conversation", "list", "--data", f.dir, "--limit", "2"); !strings.Contains(stderr, "--limit") {
		t.Errorf("--limit 2 of 3: no note that there may be more (stderr %q)", stderr)
	}
	for name, args := range map[string][]string{
		"unknown site": {"--site", "nope"},
		"unknown bot":  {"--bot", "nope"},
		"limit 0":      {"--limit", "0"},
		"an argument":  {"c1"},
	} {
		if _, _, err := run(t, nil, append([]string{"conversation", "list", "--data", f.dir}, args...)...); err == nil {
			t.Errorf("conversation list %s: accepted", name)
		}
	}

	// Off a terminal without --yes: refused, nothing deleted.
	_, stderr, err = run(t, nil, "conversation", "delete", "c1", "--data", f.dir)
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "--yes") || !strings.Contains(stderr, "data key") {
		t.Fatalf("conversation delete without --yes: exit %d, %v", exitCode(err), err)
	}
	if _, err := f.st.GetDataKey(context.Background(), store.DataKeyScope("c1")); err != nil {
		t.Fatalf("a refused delete destroyed the data key: %v", err)
	}
	out, _, err = run(t, nil, "conversation", "delete", "c1", "--data", f.dir, "--yes", "--json")
	var rc eraseReceipt
	if err != nil || json.Unmarshal([]byte(out), &rc) != nil {
		t.Fatalf("conversation delete --yes = %q, %v", out, err)
	}
	if rc.Totals.Conversations != 1 || rc.Totals.Activities != 3 || rc.Totals.DataKeys != 1 || len(rc.DataKeyScopes) != 1 || rc.DataKeyScopes[0] != "conv:c1" || len(rc.KEKIDs) != 1 || !rc.Scrubbed {
		t.Fatalf("receipt = %+v", rc)
	}
	// The process holding the store (the server) finds it gone at once.
	if _, err := f.st.Append(context.Background(), "c1", []store.NewRecord{{Build: func(int64) ([]byte, error) { return []byte("late"), nil }}}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the server's append after the delete = %v; want ErrNotFound", err)
	}
	if _, err := f.st.GetDataKey(context.Background(), store.DataKeyScope("c1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("data key after delete: %v", err)
	}
	if in := f.inFiles(t, "PLAINTEXT-ONE"); len(in) != 0 {
		t.Errorf("the deleted conversation's text is still in %v", in)
	}
	out, _, _ = run(t, nil, "conversation", "list", "--data", f.dir, "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Fatalf("list after delete = %s", out)
	}
	if _, _, err := run(t, nil, "conversation", "delete", "c1", "--data", f.dir, "--yes"); exitCode(err) != exitNothing {
		t.Errorf("deleting it again: exit %d, %v; want %d", exitCode(err), err, exitNothing)
	}
}
