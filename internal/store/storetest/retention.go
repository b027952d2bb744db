package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Retention and erasure: site policies, the last-activity mark, deleting a
// whole conversation in one transaction (data key included), tombstones,
// ephemeral pruning.

func testSiteRetention(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, st := seed(t, s)
	if got, _ := s.GetSite(ctx, st.ID); got.Retention != (store.Retention{}) {
		t.Fatalf("a new site's retention = %+v, want the zero value (the default)", got.Retention)
	}
	r := store.Retention{Mode: store.RetentionAfter, After: 90 * 24 * time.Hour}
	if err := s.SetSiteRetention(ctx, st.ID, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSite(ctx, st.ID); got.Retention != r {
		t.Fatalf("GetSite retention = %+v, want %+v", got.Retention, r)
	}
	if sites, _ := s.ListSites(ctx, ""); len(sites) != 1 || sites[0].Retention != r {
		t.Fatalf("ListSites retention = %+v", sites)
	}
	for name, bad := range map[string]store.Retention{
		"zero period":        {Mode: store.RetentionAfter},
		"negative period":    {Mode: store.RetentionAfter, After: -time.Hour},
		"too short":          {Mode: store.RetentionAfter, After: time.Second},
		"too long":           {Mode: store.RetentionAfter, After: store.MaxRetention + time.Hour},
		"unknown mode":       {Mode: "forever"},
		"ephemeral + period": {Mode: store.RetentionEphemeral, After: time.Hour},
	} {
		if err := s.SetSiteRetention(ctx, st.ID, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got, _ := s.GetSite(ctx, st.ID); got.Retention != r {
		t.Fatalf("a refused policy changed the site: %+v", got.Retention)
	}
	if err := s.SetSiteRetention(ctx, "nope", r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetSiteRetention(unknown) = %v, want ErrNotFound", err)
	}
	eph := store.Site{ID: "site-2", BotID: "bot-1", Name: "eph", CreatedAt: epoch, Retention: store.Retention{Mode: store.RetentionEphemeral}}
	if err := s.CreateSite(ctx, eph); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSite(ctx, "site-2"); got.Retention.Mode != store.RetentionEphemeral {
		t.Fatalf("CreateSite dropped the retention: %+v", got.Retention)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-3", BotID: "bot-1", Name: "x", CreatedAt: epoch, Retention: store.Retention{Mode: store.RetentionAfter}}); err == nil {
		t.Fatal("CreateSite accepted an invalid retention")
	}
}

// fill stores one of everything under conversation id: two activities
// (one with an attachment), a pending outbox item, a dead letter, a
// session and a data key.
func fill(t *testing.T, s store.Store, id, user string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateConversation(ctx, store.Conversation{ID: id, BotID: "bot-1", SiteID: "site-1", UserID: user, CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	ob := func(aid string) []store.NewOutbox {
		return []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return aid, []byte("body " + aid), nil }}}
	}
	file := rec("upload")
	file.Attachments = []store.Attachment{{ID: "att-" + id, ContentType: "text/plain", Name: "f.txt", Data: []byte("secret file of " + id), CreatedAt: epoch}}
	if _, err := s.Append(ctx, id, []store.NewRecord{rec("hello " + id)}, ob(id+"|0")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, id, []store.NewRecord{file}, ob(id+"|1")); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingOutbox(ctx, id)
	if err != nil || len(pending) != 2 {
		t.Fatalf("PendingOutbox = %v, %v", pending, err)
	}
	if err := s.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: pending[0].ID, Attempts: 1}, LastAttemptAt: epoch, DeadAt: epoch}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, store.Session{ID: "sess-" + id, ConversationID: id, UserID: user, ExpiresAt: epoch.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDataKey(ctx, store.DataKey{Scope: store.DataKeyScope(id), KEKID: "kek-1", Wrapped: []byte("wrapped " + id), CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
}

func testDeleteConversation(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	fill(t, s, "ca", "dl_alice")
	fill(t, s, "cb", "dl_bob")
	e, err := s.DeleteConversation(ctx, "ca", epoch)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Erased{ConversationID: "ca", BotID: "bot-1", SiteID: "site-1", UserID: "dl_alice", Activities: 2, OutboxItems: 1, DeadLetters: 1,
		Attachments: 1, Sessions: 1, DataKeyScope: "conv:ca", KEKID: "kek-1"}
	if e != want {
		t.Fatalf("DeleteConversation = %+v\nwant %+v", e, want)
	}
	// Everything of ca is gone.
	if _, err := s.GetConversation(ctx, "ca"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConversation after delete = %v", err)
	}
	if recs, err := s.Read(ctx, "ca", -1, 100); err != nil || len(recs) != 0 {
		t.Errorf("Read after delete = %d records, %v", len(recs), err)
	}
	if items, _ := s.PendingOutbox(ctx, "ca"); len(items) != 0 {
		t.Errorf("outbox after delete: %d items", len(items))
	}
	dead, _ := s.ListDeadLetters(ctx, "")
	for _, d := range dead {
		if d.ConversationID == "ca" {
			t.Errorf("dead letter of ca left: %+v", d.ID)
		}
	}
	if _, err := s.GetAttachment(ctx, "att-ca"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAttachment after delete = %v", err)
	}
	if _, err := s.GetSession(ctx, "sess-ca"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after delete = %v", err)
	}
	if _, err := s.GetDataKey(ctx, "conv:ca"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDataKey after delete = %v (the key must be destroyed)", err)
	}
	if _, err := s.Append(ctx, "ca", []store.NewRecord{rec("late")}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Append after delete = %v, want ErrNotFound", err)
	}
	if recs, _ := s.Read(ctx, "ca", -1, 100); len(recs) != 0 {
		t.Errorf("a refused append left %d records", len(recs))
	}
	// The tombstone: a token minted before cannot start it again, until
	// the tombstone is pruned.
	again := store.Conversation{ID: "ca", BotID: "bot-1", SiteID: "site-1", UserID: "dl_alice", CreatedAt: epoch}
	if del, err := s.ConversationDeleted(ctx, "ca"); err != nil || !del {
		t.Errorf("ConversationDeleted(ca) = %v, %v; want true", del, err)
	}
	if del, err := s.ConversationDeleted(ctx, "cb"); err != nil || del {
		t.Errorf("ConversationDeleted(cb) = %v, %v; want false", del, err)
	}
	if created, err := s.CreateConversation(ctx, again); !errors.Is(err, store.ErrNotFound) || created {
		t.Errorf("CreateConversation of a deleted id = %v, %v; want ErrNotFound", created, err)
	}
	if _, err := s.DeleteConversation(ctx, "ca", epoch); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteConversation = %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteConversation(ctx, "never", epoch); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteConversation(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.PruneTombstones(ctx, epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConversation(ctx, again); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a tombstone from epoch was pruned by PruneTombstones(epoch): %v", err)
	}
	if err := s.PruneTombstones(ctx, epoch.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if created, err := s.CreateConversation(ctx, again); err != nil || !created {
		t.Errorf("CreateConversation after the tombstone expired = %v, %v", created, err)
	}
	if del, _ := s.ConversationDeleted(ctx, "ca"); del {
		t.Error("ConversationDeleted after the tombstone expired = true")
	}

	// cb is untouched.
	if recs, err := s.Read(ctx, "cb", -1, 100); err != nil || len(recs) != 2 {
		t.Errorf("cb's log = %d records, %v", len(recs), err)
	}
	if items, _ := s.PendingOutbox(ctx, "cb"); len(items) != 1 {
		t.Errorf("cb's outbox = %d items", len(items))
	}
	if _, err := s.GetAttachment(ctx, "att-cb"); err != nil {
		t.Errorf("cb's attachment: %v", err)
	}
	if _, err := s.GetSession(ctx, "sess-cb"); err != nil {
		t.Errorf("cb's session: %v", err)
	}
	if _, err := s.GetDataKey(ctx, "conv:cb"); err != nil {
		t.Errorf("cb's data key: %v", err)
	}
	if n, _ := s.CountDeadLetters(ctx); n != 1 {
		t.Errorf("%d dead letters left, want cb's 1", n)
	}
}

// A conversation deleted while appends race with it ends with nothing
// stored: every append either committed before (and was deleted) or
// failed with ErrNotFound.
func testDeleteWhileAppending(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var failed error
	var mu sync.Mutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Append(ctx, "c1", []store.NewRecord{rec("m")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "a", []byte("b"), nil }}})
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := s.DeleteConversation(ctx, "c1", epoch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed != nil {
		t.Fatalf("an append failed with something other than ErrNotFound: %v", failed)
	}
	if recs, _ := s.Read(ctx, "c1", -1, 1000); len(recs) != 0 {
		t.Fatalf("%d orphan records after the delete", len(recs))
	}
	if items, _ := s.PendingOutbox(ctx, "c1"); len(items) != 0 {
		t.Fatalf("%d orphan outbox items after the delete", len(items))
	}
}

func testExpiredConversations(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "idle")   // created at epoch, never appended to
	conv(t, s, "active") // appended to now
	conv(t, s, "ended")
	before := time.Now()
	if _, err := s.Append(ctx, "active", []store.NewRecord{rec("hi")}, nil); err != nil {
		t.Fatal(err)
	}
	end := rec("bye")
	end.EndsConversation = true
	if _, err := s.Append(ctx, "ended", []store.NewRecord{rec("hi"), end}, nil); err != nil {
		t.Fatal(err)
	}
	list := func(idleBefore time.Time, ended bool, after string, limit int) []string {
		t.Helper()
		ids, err := s.ExpiredConversations(ctx, "site-1", idleBefore, ended, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	}
	// Last activity: creation for "idle", the append for the others.
	eq(list(epoch.Add(time.Hour), false, "", 10), "idle")
	eq(list(epoch, false, "", 10))
	eq(list(epoch.Add(time.Hour), true, "", 10), "ended", "idle")
	eq(list(before.Add(-time.Second), true, "", 10), "ended", "idle")
	eq(list(time.Now().Add(time.Hour), false, "", 10), "active", "ended", "idle")
	eq(list(time.Now().Add(time.Hour), false, "", 2), "active", "ended")
	eq(list(time.Now().Add(time.Hour), false, "ended", 2), "idle")
	if ids, _ := s.ExpiredConversations(ctx, "other-site", time.Now().Add(time.Hour), true, "", 10); len(ids) != 0 {
		t.Fatalf("another site's query listed %v", ids)
	}
}

func testUserConversations(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	for id, user := range map[string]string{"c1": "dl_alice", "c2": "dl_bob", "c3": "dl_alice", "c4": ""} {
		if _, err := s.CreateConversation(ctx, store.Conversation{ID: id, BotID: "bot-1", SiteID: "site-1", UserID: user, CreatedAt: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.UserConversations(ctx, "dl_alice")
	if err != nil || len(ids) != 2 || ids[0] != "c1" || ids[1] != "c3" {
		t.Fatalf("UserConversations(dl_alice) = %v, %v", ids, err)
	}
	if ids, _ := s.UserConversations(ctx, ""); len(ids) != 0 {
		t.Fatalf("UserConversations(\"\") = %v: conversations without a user are nobody's", ids)
	}
	if ids, _ := s.UserConversations(ctx, "dl_carol"); len(ids) != 0 {
		t.Fatalf("UserConversations(unknown) = %v", ids)
	}
}

func testPruneActivities(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	if _, err := s.Append(ctx, "c1", []store.NewRecord{rec("a"), rec("b")}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	file := rec("c")
	file.Attachments = []store.Attachment{{ID: "f1", ContentType: "text/plain", Data: []byte("x"), CreatedAt: time.Now()}}
	if _, err := s.Append(ctx, "c1", []store.NewRecord{file}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "c1|2", []byte("c"), nil }}}); err != nil {
		t.Fatal(err)
	}
	future, past := time.Now().Add(time.Hour), epoch
	// The bot does not have seq 2 yet: only 0 and 1 go.
	n, err := s.PruneActivities(ctx, "c1", future, past)
	if err != nil || n != 2 {
		t.Fatalf("PruneActivities = %d, %v; want 2", n, err)
	}
	recs, _ := s.Read(ctx, "c1", -1, 10)
	if len(recs) != 1 || recs[0].Seq != 2 || recs[0].Visibility != store.VisibleAll {
		t.Fatalf("after the first prune: %+v", recs)
	}
	if _, err := s.GetAttachment(ctx, "f1"); err != nil {
		t.Fatalf("the undelivered activity's file was pruned: %v", err)
	}
	items, _ := s.PendingOutbox(ctx, "c1")
	if err := s.CompleteOutbox(ctx, items[0].ID); err != nil {
		t.Fatal(err)
	}
	// Delivered: the head is emptied, not removed (its number stays taken).
	if n, err := s.PruneActivities(ctx, "c1", future, past); err != nil || n != 1 {
		t.Fatalf("second PruneActivities = %d, %v; want 1", n, err)
	}
	recs, _ = s.Read(ctx, "c1", -1, 10)
	if len(recs) != 1 || recs[0].Visibility != store.VisibleNone || len(recs[0].Body) != 0 {
		t.Fatalf("head after prune = %+v, want emptied", recs)
	}
	if _, err := s.GetAttachment(ctx, "f1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the delivered activity's file stayed: %v", err)
	}
	if h, _ := s.Head(ctx, "c1"); h != 2 {
		t.Fatalf("Head after prune = %d, want 2", h)
	}
	got, err := s.Append(ctx, "c1", []store.NewRecord{rec("d")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "c1|3", []byte("d"), nil }}})
	if err != nil || got[0].Seq != 3 {
		t.Fatalf("append after prune = %+v, %v; want seq 3", got, err)
	}
	// The hard cap removes even what the bot does not have.
	// (seq 2's emptied row goes, seq 3 is emptied: 2 rows)
	if n, err := s.PruneActivities(ctx, "c1", past, future); err != nil || n != 2 {
		t.Fatalf("hard prune = %d, %v", n, err)
	}
	if items, _ := s.PendingOutbox(ctx, "c1"); len(items) != 0 {
		t.Fatalf("hard prune left %d outbox items", len(items))
	}
	// Nothing to do is not an error; the conversation itself stays.
	if n, err := s.PruneActivities(ctx, "c1", future, future); err != nil || n != 0 {
		t.Fatalf("idle prune = %d, %v", n, err)
	}
	if _, err := s.GetConversation(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
}
