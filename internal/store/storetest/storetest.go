// Package storetest is the one conformance suite every store.Store backend
// must pass (the Dex pattern): each backend's tests call Run with a
// constructor for a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Run runs the whole suite. newStore must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"BotsAndSites", testBotsAndSites},
		{"SecretSlots", testSecretSlots},
		{"Conversations", testConversations},
		{"AppendAndRead", testAppendAndRead},
		{"AppendConcurrentIsGapFreeAndUnique", testAppendConcurrent},
		{"AppendIsAtomic", testAppendAtomic},
		{"FailedAppendsDoNotUndoConcurrentOnes", testAppendFailuresIsolated},
		{"ReplaceRecord", testReplaceRecord},
		{"Outbox", testOutbox},
		{"AttachmentsSessionsKeys", testAttachmentsSessionsKeys},
		{"KeyRotation", testKeyRotation},
		{"BotSecrets", testBotSecrets},
		{"OutboxListenerInCommitOrder", testOutboxListener},
		{"ReadyWhileCommitsSucceed", testReady},
		{"AppendStoresAttachmentsInItsTransaction", testAppendAttachments},
		{"DeadLetters", testDeadLetters},
		{"SiteClientAttachmentURLs", testSiteClientAttachmentURLs},
		{"OutboxPagesAreBoundedAndBodilessHeads", testOutboxPages},
		{"DestroyKey", testDestroyKey},
		{"DataKeys", testDataKeys},
		{"DataKeysRefuseRetiredKEK", testDataKeysRefuseRetiredKEK},
		{"LegacyAttachmentNames", testLegacyAttachmentNames},
		{"AttachmentNeedsConversation", testAttachmentNeedsConversation},
		{"LegacyContent", testLegacyContent},
		{"SiteMasking", testSiteMasking},
		{"BotDeliveryTimeout", testBotDeliveryTimeout},
		{"SiteRetention", testSiteRetention},
		{"DeleteConversation", testDeleteConversation},
		{"DeleteWhileAppending", testDeleteWhileAppending},
		{"ExpiredConversations", testExpiredConversations},
		{"UserConversations", testUserConversations},
		{"PruneActivities", testPruneActivities},
		{"NoOrphansAfterDelete", testNoOrphansAfterDelete},
		{"EndedWaitsForTheBot", testEndedWaitsForTheBot},
		{"UniqueNames", testUniqueNames},
		{"DeleteSite", testDeleteSite}, {"DeleteBot", testDeleteBot}, {"UpdateBotAuthAndSite", testUpdateBotAuthAndSite}, {"ListConversations", testListConversations}, {"DeleteBotWhileServing", testDeleteBotWhileServing},
		{"OutboxStats", testOutboxStats},
		{"DeleteBotTakesOAuth", testDeleteBotTakesOAuth},
		{"AuthFailures", testAuthFailures},
		{"AuthFailureSeries", testAuthFailureSeries},
		{"Supersedes", testSupersedes},
		{"OAuthConnectionsAndUserTokens", testOAuth},
		{"AuditLog", testAudit},
		{"Operators", testOperators},
		{"WebAuthn", testWebAuthn},
		{"DeadLetterGetDrop", testDeadLetterGetDrop},
		{"DeletedConversationsSince", testDeletedConversations},
		{"DeleteEnrollmentsBy", testDeleteEnrollmentsBy},
		{"ListEnrollments", testListEnrollments},
		{"DeleteEmptyOnly", testDeleteEmptyOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

var epoch = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func seed(t *testing.T, s store.Store) (store.Bot, store.Site) {
	t.Helper()
	ctx := context.Background()
	b := store.Bot{ID: "bot-1", Name: "Echo", Endpoint: "http://127.0.0.1:3978/api/messages", InsecureNoAuth: true, CreatedAt: epoch}
	if err := s.CreateBot(ctx, b); err != nil {
		t.Fatalf("CreateBot: %v", err)
	}
	st := store.Site{ID: "site-1", BotID: b.ID, Name: "web", EnhancedAuth: true, TrustedOrigins: []string{"https://a.example"}, SecretHashes: [2][]byte{{1, 2, 3}, nil}, CreatedAt: epoch}
	if err := s.CreateSite(ctx, st); err != nil {
		t.Fatalf("CreateSite: %v", err)
	}
	return b, st
}

func conv(t *testing.T, s store.Store, id string) {
	t.Helper()
	if _, err := s.CreateConversation(context.Background(), store.Conversation{ID: id, BotID: "bot-1", SiteID: "site-1", UserID: "dl_u", CreatedAt: epoch}); err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
}

func rec(body string) store.NewRecord {
	return store.NewRecord{Build: func(seq int64) ([]byte, error) { return []byte(fmt.Sprintf("%s#%d", body, seq)), nil }}
}

func testBotsAndSites(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, st := seed(t, s)
	got, err := s.GetBot(ctx, b.ID)
	if err != nil || got.Name != b.Name || got.Endpoint != b.Endpoint || !got.InsecureNoAuth || !got.CreatedAt.Equal(epoch) {
		t.Fatalf("GetBot = %+v, %v", got, err)
	}
	if err := s.CreateBot(ctx, b); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate CreateBot err = %v, want ErrExists", err)
	}
	if _, err := s.GetBot(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBot(missing) err = %v", err)
	}
	b2 := b
	b2.Endpoint, b2.InsecureNoAuth = "https://bot.example/api/messages", false
	if err := s.UpdateBot(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetBot(ctx, b.ID); got.Endpoint != b2.Endpoint || got.InsecureNoAuth {
		t.Fatalf("after UpdateBot = %+v", got)
	}
	if err := s.UpdateBot(ctx, store.Bot{ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateBot(missing) err = %v", err)
	}
	bots, err := s.ListBots(ctx)
	if err != nil || len(bots) != 1 {
		t.Fatalf("ListBots = %v, %v", bots, err)
	}
	gs, err := s.GetSite(ctx, st.ID)
	if err != nil || !gs.EnhancedAuth || len(gs.TrustedOrigins) != 1 || gs.TrustedOrigins[0] != "https://a.example" || gs.BotID != b.ID {
		t.Fatalf("GetSite = %+v, %v", gs, err)
	}
	if err := s.UpdateSitePolicy(ctx, st.ID, false, []string{"https://b.example", "http://localhost:3000"}); err != nil {
		t.Fatal(err)
	}
	gs, _ = s.GetSite(ctx, st.ID)
	if gs.EnhancedAuth || len(gs.TrustedOrigins) != 2 {
		t.Fatalf("after UpdateSitePolicy = %+v", gs)
	}
	if err := s.UpdateSitePolicy(ctx, "nope", true, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateSitePolicy(missing) err = %v", err)
	}
	sites, err := s.ListSites(ctx, b.ID)
	if err != nil || len(sites) != 1 {
		t.Fatalf("ListSites = %v, %v", sites, err)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-x", BotID: "no-such-bot", CreatedAt: epoch}); err == nil {
		t.Fatal("CreateSite for an unknown bot succeeded")
	}
}

func testSecretSlots(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, st := seed(t, s)
	if got, err := s.SiteBySecretHash(ctx, []byte{1, 2, 3}); err != nil || got.ID != st.ID {
		t.Fatalf("SiteBySecretHash(slot 0) = %+v, %v", got, err)
	}
	if err := s.SetSiteSecret(ctx, st.ID, 1, []byte{9, 9}); err != nil {
		t.Fatal(err)
	}
	// Regenerating slot 1 leaves slot 0 working.
	if _, err := s.SiteBySecretHash(ctx, []byte{1, 2, 3}); err != nil {
		t.Fatalf("slot 0 lost after setting slot 1: %v", err)
	}
	if got, err := s.SiteBySecretHash(ctx, []byte{9, 9}); err != nil || got.ID != st.ID {
		t.Fatalf("SiteBySecretHash(slot 1) = %+v, %v", got, err)
	}
	if err := s.SetSiteSecret(ctx, st.ID, 0, []byte{7}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SiteBySecretHash(ctx, []byte{1, 2, 3}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old slot-0 secret still accepted: %v", err)
	}
	if _, err := s.SiteBySecretHash(ctx, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty hash matched a site: %v", err)
	}
	if err := s.SetSiteSecret(ctx, st.ID, 2, []byte{1}); err == nil {
		t.Fatal("slot 2 accepted")
	}
}

func testConversations(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	c := store.Conversation{ID: "c1", BotID: "bot-1", SiteID: "site-1", UserID: "dl_u", CreatedAt: epoch}
	created, err := s.CreateConversation(ctx, c)
	if err != nil || !created {
		t.Fatalf("first CreateConversation = %v, %v", created, err)
	}
	created, err = s.CreateConversation(ctx, c)
	if err != nil || created {
		t.Fatalf("second CreateConversation = %v, %v; want false, nil", created, err)
	}
	c2 := c
	c2.UserID = "dl_other"
	if _, err := s.CreateConversation(ctx, c2); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateConversation with another user err = %v, want ErrExists", err)
	}
	got, err := s.GetConversation(ctx, "c1")
	if err != nil || got.UserID != "dl_u" || got.SiteID != "site-1" {
		t.Fatalf("GetConversation = %+v, %v", got, err)
	}
	if h, err := s.Head(ctx, "c1"); err != nil || h != -1 {
		t.Fatalf("Head(empty) = %d, %v", h, err)
	}
	if _, err := s.Head(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Head(missing) err = %v", err)
	}
}

func testAppendAndRead(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	conv(t, s, "c2")
	got, err := s.Append(ctx, "c1", []store.NewRecord{rec("a"), {Visibility: store.VisibleStream, Build: rec("b").Build}}, nil)
	if err != nil || len(got) != 2 || got[0].Seq != 0 || got[1].Seq != 1 || string(got[1].Body) != "b#1" {
		t.Fatalf("Append = %+v, %v", got, err)
	}
	if _, err := s.Append(ctx, "c2", []store.NewRecord{rec("x")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "c1", []store.NewRecord{rec("c")}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.Read(ctx, "c1", -1, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("Read all = %d records, %v", len(all), err)
	}
	for i, r := range all {
		if r.Seq != int64(i) || r.ConversationID != "c1" {
			t.Fatalf("record %d = %+v", i, r)
		}
	}
	if all[1].Visibility != store.VisibleStream {
		t.Fatalf("visibility lost: %+v", all[1])
	}
	after, _ := s.Read(ctx, "c1", 0, 0)
	if len(after) != 2 || after[0].Seq != 1 {
		t.Fatalf("Read after 0 = %+v", after)
	}
	limited, _ := s.Read(ctx, "c1", -1, 1)
	if len(limited) != 1 {
		t.Fatalf("Read limit 1 = %d", len(limited))
	}
	// Bodies are "a#0", "b#1", "c#2" (3 bytes each): a byte bound stops
	// after the record that reaches it, and always returns one record.
	for _, tc := range []struct{ limit, maxBytes, want int }{{0, 1, 1}, {0, 3, 1}, {0, 4, 2}, {0, 6, 2}, {0, 7, 3}, {0, 0, 3}, {1, 100, 1}, {2, 7, 2}} {
		got, err := s.ReadBytes(ctx, "c1", -1, tc.limit, tc.maxBytes)
		if err != nil || len(got) != tc.want || got[0].Seq != 0 {
			t.Fatalf("ReadBytes(limit %d, maxBytes %d) = %d records, %v; want %d", tc.limit, tc.maxBytes, len(got), err, tc.want)
		}
	}
	if got, _ := s.ReadBytes(ctx, "c1", 1, 0, 1); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("ReadBytes after 1 = %+v", got)
	}
	if h, _ := s.Head(ctx, "c1"); h != 2 {
		t.Fatalf("Head = %d, want 2", h)
	}
	if r, err := s.GetRecord(ctx, "c2", 0); err != nil || string(r.Body) != "x#0" {
		t.Fatalf("GetRecord = %+v, %v", r, err)
	}
	if _, err := s.Append(ctx, "nope", []store.NewRecord{rec("z")}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Append to unknown conversation err = %v", err)
	}
}

func testAppendConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	conv(t, s, "c2")
	const n = 200
	var wg sync.WaitGroup
	seen := make([]map[int64]bool, 2)
	seen[0], seen[1] = map[int64]bool{}, map[int64]bool{}
	var mu sync.Mutex
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := i % 2
			got, err := s.Append(ctx, fmt.Sprintf("c%d", c+1), []store.NewRecord{rec("m")}, nil)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[c][got[0].Seq] {
				errs <- fmt.Errorf("sequence %d assigned twice", got[0].Seq)
			}
			seen[c][got[0].Seq] = true
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for c := 0; c < 2; c++ {
		all, err := s.Read(ctx, fmt.Sprintf("c%d", c+1), -1, 0)
		if err != nil || len(all) != n/2 {
			t.Fatalf("c%d has %d records, %v", c+1, len(all), err)
		}
		for i, r := range all {
			if r.Seq != int64(i) {
				t.Fatalf("gap: record %d has seq %d", i, r.Seq)
			}
		}
	}
}

func testAppendAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	boom := errors.New("boom")
	_, err := s.Append(ctx, "c1", []store.NewRecord{rec("a")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "", nil, boom }}})
	if !errors.Is(err, boom) {
		t.Fatalf("Append with failing outbox err = %v", err)
	}
	if all, _ := s.Read(ctx, "c1", -1, 0); len(all) != 0 {
		t.Fatalf("record survived a failed append: %+v", all)
	}
	if h, _ := s.Head(ctx, "c1"); h != -1 {
		t.Fatalf("sequence advanced by a failed append: head %d", h)
	}
	got, err := s.Append(ctx, "c1", []store.NewRecord{rec("a")}, []store.NewOutbox{{BotID: "bot-1", Build: func(seqs []int64) (string, []byte, error) {
		return fmt.Sprintf("c1|%07d", seqs[0]), []byte("to-bot"), nil
	}}})
	if err != nil || got[0].Seq != 0 {
		t.Fatalf("Append after failure = %+v, %v", got, err)
	}
	pend, err := s.PendingOutbox(ctx, "c1")
	if err != nil || len(pend) != 1 || pend[0].ActivityID != "c1|0000000" || !bytes.Equal(pend[0].Body, []byte("to-bot")) {
		t.Fatalf("PendingOutbox = %+v, %v", pend, err)
	}
}

// testAppendFailuresIsolated: failing appends arriving together with good
// ones (a group commit shares one transaction between them) fail alone.
func testAppendFailuresIsolated(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	const n = 300
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch i % 3 {
			case 0: // good, with a delivery
				_, err := s.Append(ctx, "c1", []store.NewRecord{rec("m")}, []store.NewOutbox{{BotID: "bot-1", Build: func(seqs []int64) (string, []byte, error) {
					return fmt.Sprintf("c1|%07d", seqs[0]), []byte("to-bot"), nil
				}}})
				if err != nil {
					errs <- fmt.Errorf("good append failed: %w", err)
				}
			case 1: // its delivery cannot be built
				_, err := s.Append(ctx, "c1", []store.NewRecord{rec("x")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "", nil, boom }}})
				if !errors.Is(err, boom) {
					errs <- fmt.Errorf("failing append: err = %v", err)
				}
			case 2: // no such conversation
				_, err := s.Append(ctx, "missing", []store.NewRecord{rec("x")}, nil)
				if !errors.Is(err, store.ErrNotFound) {
					errs <- fmt.Errorf("append to a missing conversation: err = %v", err)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.Read(ctx, "c1", -1, 0)
	if err != nil || len(all) != n/3 {
		t.Fatalf("c1 has %d records, want %d (%v)", len(all), n/3, err)
	}
	for i, r := range all {
		if r.Seq != int64(i) || string(r.Body) != fmt.Sprintf("m#%d", i) {
			t.Fatalf("record %d: seq %d body %q", i, r.Seq, r.Body)
		}
	}
	pend, err := s.PendingOutbox(ctx, "c1")
	if err != nil || len(pend) != n/3 {
		t.Fatalf("PendingOutbox has %d items, want %d (%v)", len(pend), n/3, err)
	}
	for i, it := range pend {
		if it.ActivityID != fmt.Sprintf("c1|%07d", i) {
			t.Fatalf("outbox item %d is for %s", i, it.ActivityID)
		}
	}
}

func testReplaceRecord(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	if _, err := s.Append(ctx, "c1", []store.NewRecord{rec("a")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceRecord(ctx, "c1", 0, store.VisibleNone, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetRecord(ctx, "c1", 0)
	if err != nil || r.Visibility != store.VisibleNone || string(r.Body) != "gone" {
		t.Fatalf("after replace = %+v, %v", r, err)
	}
	if err := s.ReplaceRecord(ctx, "c1", 5, store.VisibleAll, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceRecord(missing) err = %v", err)
	}
}

func testOutbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	conv(t, s, "c2")
	ob := func(id string) store.NewOutbox {
		return store.NewOutbox{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return id, []byte(id), nil }}
	}
	for _, c := range []string{"c1", "c1", "c2"} {
		if _, err := s.Append(ctx, c, nil, []store.NewOutbox{ob(c)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	due, err := s.DueOutbox(ctx, now.Add(time.Second), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("DueOutbox = %+v, %v (want the head of each conversation)", due, err)
	}
	c1 := due[0]
	if c1.ConversationID != "c1" {
		t.Fatalf("DueOutbox order = %+v", due)
	}
	// A head in backoff holds back its conversation (order per conversation).
	if err := s.RetryOutbox(ctx, c1.ID, 1, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueOutbox(ctx, now.Add(time.Second), 10)
	if len(due) != 1 || due[0].ConversationID != "c2" {
		t.Fatalf("DueOutbox with c1 in backoff = %+v", due)
	}
	pend, _ := s.PendingOutbox(ctx, "c1")
	if len(pend) != 2 || pend[0].Attempts != 1 {
		t.Fatalf("PendingOutbox = %+v", pend)
	}
	if err := s.CompleteOutbox(ctx, c1.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteOutbox(ctx, c1.ID); err != nil {
		t.Fatalf("completing an item twice must be harmless: %v", err)
	}
	pend, _ = s.PendingOutbox(ctx, "c1")
	if len(pend) != 1 {
		t.Fatalf("PendingOutbox after complete = %+v", pend)
	}
	// Several at once, across conversations.
	c2, _ := s.PendingOutbox(ctx, "c2")
	if err := s.CompleteOutbox(ctx, pend[0].ID, c2[0].ID, 99999); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(ctx, now.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("items left after batch complete: %+v", due)
	}
	if err := s.CompleteOutbox(ctx); err != nil {
		t.Fatalf("empty complete: %v", err)
	}
}

func testAttachmentsSessionsKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	a := store.Attachment{ID: "att1", ConversationID: "c1", ContentType: "image/png", Name: "x.png", Data: []byte{0, 1, 2, 255}, CreatedAt: epoch}
	if err := s.PutAttachment(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAttachment(ctx, "att1")
	if err != nil || !bytes.Equal(got.Data, a.Data) || got.Name != "x.png" || got.ContentType != "image/png" {
		t.Fatalf("GetAttachment = %+v, %v", got, err)
	}
	if _, err := s.GetAttachment(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAttachment(missing) err = %v", err)
	}
	se := store.Session{ID: "sid", ConversationID: "c1", UserID: "dl_u", ExpiresAt: epoch.Add(time.Hour)}
	if err := s.PutSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	gs, err := s.GetSession(ctx, "sid")
	if err != nil || gs.UserID != "dl_u" || !gs.ExpiresAt.Equal(se.ExpiresAt) {
		t.Fatalf("GetSession = %+v, %v", gs, err)
	}
	k := store.Key{ID: "kid1", Purpose: "directline", Sealed: []byte("sealed"), CreatedAt: epoch}
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKey(ctx, k); !errors.Is(err, store.ErrExists) {
		t.Fatalf("PutKey reused a kid: %v", err)
	}
	keys, err := s.ListKeys(ctx, "directline")
	if err != nil || len(keys) != 1 || string(keys[0].Sealed) != "sealed" {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
	if keys, _ := s.ListKeys(ctx, "other"); len(keys) != 0 {
		t.Fatalf("ListKeys(other purpose) = %+v", keys)
	}
}

func testKeyRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := func(h int) time.Time { return epoch.Add(time.Duration(h) * time.Hour) }
	key := func(id string, created time.Time) store.Key {
		return store.Key{ID: id, Purpose: "channel", Sealed: []byte("sealed-" + id), CreatedAt: created}
	}
	if err := s.RotateKeys(ctx, "channel", "k8", key("k9", at(0)), at(0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RotateKeys with no next key: %v", err)
	}
	k1 := key("k1", at(0))
	k1.ActivatedAt = at(0)
	if err := s.PutKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKey(ctx, key("k2", at(0).Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		keys, err := s.ListKeys(ctx, "channel")
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, k := range keys {
			st := "next"
			switch {
			case !k.RetiredAt.IsZero():
				st = fmt.Sprintf("retired@%d", int(k.RetiredAt.Sub(epoch).Hours()))
			case !k.ActivatedAt.IsZero():
				st = "active"
			}
			out += k.ID + ":" + st + " "
		}
		return out
	}
	if got := state(); got != "k1:active k2:next " {
		t.Fatalf("before rotation: %s", got)
	}
	// A rotation that checked another next key (a concurrent rotation
	// won meanwhile) changes nothing.
	if err := s.RotateKeys(ctx, "channel", "k7", key("k3", at(1)), at(1)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RotateKeys expecting another next key = %v, want ErrConflict", err)
	}
	if got := state(); got != "k1:active k2:next " {
		t.Fatalf("after a conflicting rotation: %s", got)
	}
	if err := s.RotateKeys(ctx, "channel", "k2", key("k3", at(1)), at(1)); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "k1:retired@1 k2:active k3:next " {
		t.Fatalf("after rotation: %s", got)
	}
	// A kid is never reused, and a failed rotation changes nothing.
	if err := s.RotateKeys(ctx, "channel", "k3", key("k1", at(2)), at(2)); err == nil {
		t.Fatal("RotateKeys accepted a kid that exists")
	}
	if got := state(); got != "k1:retired@1 k2:active k3:next " {
		t.Fatalf("after failed rotation: %s", got)
	}
	// Rotations remove nothing: retired keys stay until destroyed.
	if err := s.RotateKeys(ctx, "channel", "k3", key("k4", at(30)), at(30)); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "k1:retired@1 k2:retired@30 k3:active k4:next " {
		t.Fatalf("after second rotation: %s", got)
	}
	if keys, _ := s.ListKeys(ctx, "sts"); len(keys) != 0 {
		t.Fatal("rotation touched another purpose")
	}
}

func testBotSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, _ := seed(t, s)
	if err := s.SetBotSecret(ctx, b.ID, 0, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBotSecret(ctx, b.ID, 1, []byte{2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBotSecret(ctx, b.ID, 0, []byte{3}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBot(ctx, b.ID)
	if err != nil || string(got.SecretHashes[0]) != "\x03" || string(got.SecretHashes[1]) != "\x02" {
		t.Fatalf("GetBot after SetBotSecret = %+v, %v", got.SecretHashes, err)
	}
	if err := s.SetBotSecret(ctx, "nope", 0, []byte{1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetBotSecret(missing) = %v", err)
	}
	if err := s.SetBotSecret(ctx, b.ID, 2, []byte{1}); err == nil {
		t.Fatal("SetBotSecret accepted slot 2")
	}
}

func testOutboxListener(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	var mu sync.Mutex
	var got []store.OutboxItem
	s.SetOutboxListener(func(items []store.OutboxItem) {
		mu.Lock()
		got = append(got, items...)
		mu.Unlock()
	})
	defer s.SetOutboxListener(nil)
	const n = 50
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Append(ctx, "c1", []store.NewRecord{rec("m")}, []store.NewOutbox{{BotID: "bot-1", Build: func(seqs []int64) (string, []byte, error) {
				return fmt.Sprintf("c1|%07d", seqs[0]), []byte("x"), nil
			}}})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	// A failed append announces nothing.
	_, _ = s.Append(ctx, "c1", []store.NewRecord{rec("m")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "", nil, errors.New("no") }}})
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("listener saw %d items, want %d", len(got), n)
	}
	pend, _ := s.PendingOutbox(ctx, "c1")
	for i, it := range got {
		// Commit order: ids increase, activity sequence increases, and the
		// items are the stored ones.
		if it.ID != pend[i].ID || it.ActivityID != pend[i].ActivityID || it.ConversationID != "c1" || it.BotID != "bot-1" ||
			!it.CreatedAt.Equal(pend[i].CreatedAt) || !it.NextAttemptAt.Equal(pend[i].NextAttemptAt) {
			t.Fatalf("item %d = %+v, stored %+v", i, it, pend[i])
		}
		if i > 0 && (it.ID <= got[i-1].ID || it.ActivityID <= got[i-1].ActivityID) {
			t.Fatalf("not in commit order at %d: %+v after %+v", i, it, got[i-1])
		}
	}
}

// testReady: a store whose commits succeed is ready, before and after
// writes, however often it is asked. (A full store is backend-specific to
// produce: each backend's own tests fill one and check that Ready wraps
// store.ErrFull and that a commit or probe after space returns clears it.)
func testReady(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("fresh store: Ready = %v", err)
	}
	seed(t, s)
	for range 50 {
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("after writes: Ready = %v", err)
		}
	}
}

// testAppendAttachments: a record's attachments are stored by its append,
// in the same transaction: a failed append leaves none, a taken id fails
// the whole append, a successful one stores each once.
func testAppendAttachments(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	withFiles := func(body string, ids ...string) store.NewRecord {
		r := rec(body)
		for _, id := range ids {
			r.Attachments = append(r.Attachments, store.Attachment{ID: id, ContentType: "image/png", Name: id + ".png", Data: []byte("png-" + id), CreatedAt: epoch})
		}
		return r
	}
	boom := errors.New("boom")
	_, err := s.Append(ctx, "c1", []store.NewRecord{withFiles("a", "f1", "f2")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "", nil, boom }}})
	if !errors.Is(err, boom) {
		t.Fatalf("Append with failing outbox err = %v", err)
	}
	for _, id := range []string{"f1", "f2"} {
		if _, err := s.GetAttachment(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attachment %s survived a failed append: %v", id, err)
		}
	}
	if _, err := s.Append(ctx, "c1", []store.NewRecord{withFiles("a", "f1", "f2")}, nil); err != nil {
		t.Fatalf("Append with attachments: %v", err)
	}
	for _, id := range []string{"f1", "f2"} {
		a, err := s.GetAttachment(ctx, id)
		if err != nil || a.ConversationID != "c1" || a.Name != id+".png" || a.ContentType != "image/png" || string(a.Data) != "png-"+id || !a.CreatedAt.Equal(epoch) {
			t.Fatalf("GetAttachment(%s) = %+v, %v", id, a, err)
		}
	}
	// A taken id fails the append: no record, and the new file is not stored.
	if _, err := s.Append(ctx, "c1", []store.NewRecord{withFiles("b", "f3", "f1")}, nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Append with a taken attachment id err = %v, want ErrExists", err)
	}
	if _, err := s.GetAttachment(ctx, "f3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attachment f3 of a failed append: %v", err)
	}
	if h, _ := s.Head(ctx, "c1"); h != 0 {
		t.Fatalf("head = %d after one successful append, want 0", h)
	}
}

// testDeadLetters: an item that dies leaves the outbox with its body and
// why it died, can be listed (per bot), counted and moved back under its
// own id, ahead of its conversation's later items.
func testDeadLetters(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	if err := s.CreateBot(ctx, store.Bot{ID: "bot-2", Name: "Other", Endpoint: "http://127.0.0.1:3979/api/messages", InsecureNoAuth: true, CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if _, err := s.Append(ctx, "c1", nil, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return id, []byte("body-" + id), nil }}}); err != nil {
			t.Fatal(err)
		}
	}
	pend, _ := s.PendingOutbox(ctx, "c1")
	if len(pend) != 2 {
		t.Fatalf("PendingOutbox = %+v", pend)
	}
	head := pend[0]
	first, last := epoch.Add(time.Minute), epoch.Add(time.Hour)
	if err := s.RetryOutbox(ctx, head.ID, 1, first, last); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryOutbox(ctx, head.ID, 2, epoch.Add(2*time.Minute), last); err != nil {
		t.Fatal(err)
	}
	pend, _ = s.PendingOutbox(ctx, "c1")
	if !pend[0].FirstAttemptAt.Equal(first) {
		t.Fatalf("FirstAttemptAt = %v, want the first attempt's %v", pend[0].FirstAttemptAt, first)
	}
	if err := s.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: head.ID, Attempts: 3}, LastAttemptAt: last, LastStatus: 503, LastError: "bot answered 503", DeadAt: last}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: head.ID}, LastAttemptAt: last, DeadAt: last}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dead-lettering an item no longer in the outbox = %v, want ErrNotFound", err)
	}
	pend, _ = s.PendingOutbox(ctx, "c1")
	if len(pend) != 1 || pend[0].ActivityID != "a2" {
		t.Fatalf("PendingOutbox after dead letter = %+v, want only a2", pend)
	}
	dls, err := s.ListDeadLetters(ctx, "")
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDeadLetters = %+v, %v", dls, err)
	}
	d := dls[0]
	if d.ID != head.ID || d.ActivityID != "a1" || d.ConversationID != "c1" || d.BotID != "bot-1" || string(d.Body) != "body-a1" ||
		d.Attempts != 3 || d.LastStatus != 503 || d.LastError != "bot answered 503" || !d.FirstAttemptAt.Equal(first) ||
		!d.LastAttemptAt.Equal(last) || !d.DeadAt.Equal(last) || !d.CreatedAt.Equal(head.CreatedAt) {
		t.Fatalf("dead letter = %+v", d)
	}
	if other, _ := s.ListDeadLetters(ctx, "bot-2"); len(other) != 0 {
		t.Fatalf("ListDeadLetters(bot-2) = %+v, want none", other)
	}
	if mine, _ := s.ListDeadLetters(ctx, "bot-1"); len(mine) != 1 {
		t.Fatalf("ListDeadLetters(bot-1) = %+v", mine)
	}
	if n, err := s.CountDeadLetters(ctx); n != 1 || err != nil {
		t.Fatalf("CountDeadLetters = %d, %v", n, err)
	}
	now := epoch.Add(2 * time.Hour)
	it, err := s.RedeliverDeadLetter(ctx, head.ID, now)
	if err != nil || it.ID != head.ID || it.ActivityID != "a1" || string(it.Body) != "body-a1" {
		t.Fatalf("RedeliverDeadLetter = %+v, %v", it, err)
	}
	if _, err := s.RedeliverDeadLetter(ctx, head.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("redelivering twice = %v, want ErrNotFound", err)
	}
	pend, _ = s.PendingOutbox(ctx, "c1")
	if len(pend) != 2 || pend[0].ActivityID != "a1" || pend[0].Attempts != 0 || !pend[0].CreatedAt.Equal(now) || !pend[0].NextAttemptAt.Equal(now) || pend[1].ActivityID != "a2" {
		t.Fatalf("PendingOutbox after redelivery = %+v, want a1 (fresh) then a2", pend)
	}
	if due, _ := s.DueOutbox(ctx, now, 10); len(due) != 1 || due[0].ID != head.ID {
		t.Fatalf("DueOutbox after redelivery = %+v, want the redelivered head", due)
	}
	if n, _ := s.CountDeadLetters(ctx); n != 0 {
		t.Fatalf("CountDeadLetters after redelivery = %d", n)
	}
}

// A site's attachment URL policy: the zero value is stored as refuse; it
// can be created untrusted and changed; nothing else is accepted.
func testSiteClientAttachmentURLs(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, st := seed(t, s)
	if gs, err := s.GetSite(ctx, st.ID); err != nil || gs.ClientAttachmentURLs != store.AttachmentURLsRefuse || gs.ClientAttachmentURLs.Untrusted() {
		t.Fatalf("default policy = %q, %v", gs.ClientAttachmentURLs, err)
	}
	un := store.Site{ID: "site-u", BotID: b.ID, Name: "u", SecretHashes: [2][]byte{{4}, nil}, CreatedAt: epoch, ClientAttachmentURLs: store.AttachmentURLsUntrusted}
	if err := s.CreateSite(ctx, un); err != nil {
		t.Fatal(err)
	}
	if gs, err := s.SiteBySecretHash(ctx, []byte{4}); err != nil || !gs.ClientAttachmentURLs.Untrusted() {
		t.Fatalf("SiteBySecretHash policy = %q, %v", gs.ClientAttachmentURLs, err)
	}
	if err := s.SetSiteClientAttachmentURLs(ctx, un.ID, store.AttachmentURLsRefuse); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSiteClientAttachmentURLs(ctx, st.ID, store.AttachmentURLsUntrusted); err != nil {
		t.Fatal(err)
	}
	sites, err := s.ListSites(ctx, b.ID)
	if err != nil || len(sites) != 2 {
		t.Fatalf("ListSites = %v, %v", sites, err)
	}
	for _, gs := range sites {
		if want := map[string]store.AttachmentURLPolicy{st.ID: store.AttachmentURLsUntrusted, un.ID: store.AttachmentURLsRefuse}[gs.ID]; gs.ClientAttachmentURLs != want {
			t.Fatalf("site %s policy = %q, want %q", gs.ID, gs.ClientAttachmentURLs, want)
		}
	}
	if err := s.SetSiteClientAttachmentURLs(ctx, "nope", store.AttachmentURLsRefuse); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetSiteClientAttachmentURLs(missing) err = %v", err)
	}
	if err := s.SetSiteClientAttachmentURLs(ctx, st.ID, "allow"); err == nil {
		t.Fatal("an unknown policy was stored")
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-bad", BotID: b.ID, CreatedAt: epoch, ClientAttachmentURLs: "allow"}); err == nil {
		t.Fatal("a site with an unknown policy was created")
	}
}

// A conversation's pending deliveries are read a bounded page at a time,
// and the due heads come without their bodies: a scheduler never loads a
// whole backlog.
func testOutboxPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	conv(t, s, "c2")
	sizes := []int{100, 100, 300, 50, 5000, 10}
	for i, n := range sizes {
		body := bytes.Repeat([]byte{byte('a' + i)}, n)
		o := store.NewOutbox{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return fmt.Sprintf("a%d", i), body, nil }}
		if _, err := s.Append(ctx, "c1", nil, []store.NewOutbox{o}); err != nil {
			t.Fatal(err)
		}
		if i == 2 { // another conversation's item in between
			o := store.NewOutbox{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "other", []byte("other"), nil }}
			if _, err := s.Append(ctx, "c2", nil, []store.NewOutbox{o}); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := s.PendingOutbox(ctx, "c1")
	if err != nil || len(all) != len(sizes) {
		t.Fatalf("PendingOutbox = %d items, %v", len(all), err)
	}
	ids := func(items []store.OutboxItem) (out []string) {
		for _, it := range items {
			out = append(out, it.ActivityID)
		}
		return out
	}
	type page struct {
		after        int64
		limit, bytes int
		want         []string
		more         bool
	}
	for _, p := range []page{
		{0, 10, 1 << 20, []string{"a0", "a1", "a2", "a3", "a4", "a5"}, false},
		{0, 2, 1 << 20, []string{"a0", "a1"}, true},      // by count
		{0, 10, 250, []string{"a0", "a1"}, true},         // by bytes: a2 would pass 250
		{0, 10, 200, []string{"a0", "a1"}, true},         // exactly at the bound
		{all[3].ID, 10, 100, []string{"a4"}, true},       // the first item whatever its size
		{all[1].ID, 10, 450, []string{"a2", "a3"}, true}, // after an id; c2's item is not listed
		{all[4].ID, 10, 1 << 20, []string{"a5"}, false},  // the tail
		{all[5].ID, 10, 1 << 20, nil, false},             // nothing after
	} {
		got, more, err := s.PendingOutboxPage(ctx, "c1", p.after, p.limit, p.bytes)
		if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint(p.want) || more != p.more {
			t.Fatalf("PendingOutboxPage(after %d, limit %d, %d bytes) = %v more=%v, %v; want %v more=%v", p.after, p.limit, p.bytes, ids(got), more, err, p.want, p.more)
		}
		for _, it := range got {
			if len(it.Body) != sizes[it.ActivityID[1]-'0'] || it.BotID != "bot-1" || it.ConversationID != "c1" || it.CreatedAt.IsZero() || it.NextAttemptAt.IsZero() {
				t.Fatalf("PendingOutboxPage item = %+v (body %d bytes)", it, len(it.Body))
			}
		}
	}
	// The page carries the current attempt state.
	now := time.Now()
	if err := s.RetryOutbox(ctx, all[0].ID, 3, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.PendingOutboxPage(ctx, "c1", 0, 1, 1<<20)
	if err != nil || len(got) != 1 || got[0].Attempts != 3 || got[0].FirstAttemptAt.IsZero() || !got[0].NextAttemptAt.After(now) {
		t.Fatalf("PendingOutboxPage after a retry = %+v, %v", got, err)
	}
	// Due heads: one per conversation, without bodies.
	due, err := s.DueOutbox(ctx, now.Add(time.Hour), 10)
	if err != nil || len(due) != 2 || due[0].ActivityID != "a0" || due[1].ActivityID != "other" {
		t.Fatalf("DueOutbox = %+v, %v", due, err)
	}
	for _, it := range due {
		if it.Body != nil {
			t.Fatalf("DueOutbox returned a body (%d bytes) for %s; heads carry ids only", len(it.Body), it.ActivityID)
		}
	}
}
