package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// fillIn stores, in conversation id of bot and site, two activities, an
// outbox item, a dead letter, an attachment, a session and a data key.
func fillIn(t *testing.T, s store.Store, bot, site, id, user string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateConversation(ctx, store.Conversation{ID: id, BotID: bot, SiteID: site, UserID: user, CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	ob := func(aid string) []store.NewOutbox {
		return []store.NewOutbox{{BotID: bot, Build: func([]int64) (string, []byte, error) { return aid, []byte("body " + aid), nil }}}
	}
	file := rec("upload")
	file.Attachments = []store.Attachment{{ID: "att-" + id, ContentType: "text/plain", Name: "f.txt", Data: []byte("file of " + id), CreatedAt: epoch}}
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

// lifecycleSeed: bot-1 with site-1 (conversations ca, cb) and site-2
// (cc); bot-2 with site-3 (cd). Every site has two secrets, bot-2 one
// client secret.
func lifecycleSeed(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	seed(t, s) // bot-1, site-1 (one secret)
	if err := s.SetSiteSecret(ctx, "site-1", 1, []byte{1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	b2 := store.Bot{ID: "bot-2", Name: "Two", Endpoint: "https://two.example/api/messages", SecretHashes: [2][]byte{{7, 7}, nil}, CreatedAt: epoch}
	if err := s.CreateBot(ctx, b2); err != nil {
		t.Fatal(err)
	}
	for i, st := range []store.Site{
		{ID: "site-2", BotID: "bot-1", Name: "app", SecretHashes: [2][]byte{{2, 1}, {2, 2}}, CreatedAt: epoch},
		{ID: "site-3", BotID: "bot-2", Name: "web", SecretHashes: [2][]byte{{3, 1}, {3, 2}}, CreatedAt: epoch},
	} {
		if err := s.CreateSite(ctx, st); err != nil {
			t.Fatalf("CreateSite %d: %v", i, err)
		}
	}
	fillIn(t, s, "bot-1", "site-1", "ca", "dl_alice")
	fillIn(t, s, "bot-1", "site-1", "cb", "dl_bob")
	fillIn(t, s, "bot-1", "site-2", "cc", "dl_carol")
	fillIn(t, s, "bot-2", "site-3", "cd", "dl_dave")
}

// gone checks that conversation id and everything under it is gone, and
// that the delivery worker's calls on its former outbox items behave.
func gone(t *testing.T, s store.Store, id string, outboxIDs []int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetConversation(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConversation(%s) = %v; want ErrNotFound", id, err)
	}
	if recs, err := s.Read(ctx, id, -1, 100); err != nil || len(recs) != 0 {
		t.Errorf("Read(%s) = %d records, %v", id, len(recs), err)
	}
	if items, _ := s.PendingOutbox(ctx, id); len(items) != 0 {
		t.Errorf("outbox of %s: %d items left", id, len(items))
	}
	if _, err := s.GetAttachment(ctx, "att-"+id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("attachment of %s: %v", id, err)
	}
	if _, err := s.GetSession(ctx, "sess-"+id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of %s: %v", id, err)
	}
	if _, err := s.GetDataKey(ctx, store.DataKeyScope(id)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("data key of %s: %v (must be destroyed)", id, err)
	}
	if del, err := s.ConversationDeleted(ctx, id); err != nil || !del {
		t.Errorf("ConversationDeleted(%s) = %v, %v; want a tombstone", id, del, err)
	}
	if _, err := s.Append(ctx, id, []store.NewRecord{rec("late")}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Append(%s) after delete = %v; want ErrNotFound", id, err)
	}
	if err := s.PutAttachment(ctx, store.Attachment{ID: "late-" + id, ConversationID: id, ContentType: "text/plain", Data: []byte("x"), CreatedAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutAttachment(%s) after delete = %v; want ErrNotFound", id, err)
	}
	// A delivery worker that held these items finds them gone.
	for _, oid := range outboxIDs {
		if err := s.CompleteOutbox(ctx, oid); err != nil {
			t.Errorf("CompleteOutbox(%d) of a deleted item = %v; want nil", oid, err)
		}
		if err := s.RetryOutbox(ctx, oid, 2, epoch, epoch.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RetryOutbox(%d) of a deleted item = %v; want ErrNotFound", oid, err)
		}
		if err := s.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: oid}, DeadAt: epoch}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeadLetterOutbox(%d) of a deleted item = %v; want ErrNotFound", oid, err)
		}
	}
}

// intact checks that conversation id still holds what fillIn stored.
func intact(t *testing.T, s store.Store, id string) {
	t.Helper()
	ctx := context.Background()
	if recs, err := s.Read(ctx, id, -1, 100); err != nil || len(recs) != 2 {
		t.Errorf("Read(%s) = %d records, %v; want 2 (another site's or bot's conversation)", id, len(recs), err)
	}
	if items, _ := s.PendingOutbox(ctx, id); len(items) != 1 {
		t.Errorf("outbox of %s: %d items; want 1", id, len(items))
	}
	if _, err := s.GetDataKey(ctx, store.DataKeyScope(id)); err != nil {
		t.Errorf("data key of %s: %v", id, err)
	}
	if _, err := s.GetAttachment(ctx, "att-"+id); err != nil {
		t.Errorf("attachment of %s: %v", id, err)
	}
}

func outboxIDs(t *testing.T, s store.Store, convs ...string) []int64 {
	t.Helper()
	var ids []int64
	for _, c := range convs {
		items, err := s.PendingOutbox(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			ids = append(ids, it.ID)
		}
	}
	return ids
}

// testDeleteSite: the plan counts what the deletion removes; the deletion
// removes the site, its secrets and every conversation of it with its
// content and data key, in one go, and nothing of the other sites.
func testDeleteSite(t *testing.T, s store.Store) {
	ctx := context.Background()
	lifecycleSeed(t, s)
	plan, err := s.PlanDeleteSite(ctx, "site-1")
	if err != nil {
		t.Fatal(err)
	}
	want := store.Removal{SiteIDs: []string{"site-1"}, Conversations: 2, Activities: 4, Attachments: 2, Sessions: 2, DataKeys: 2, OutboxItems: 2, DeadLetters: 2, SecretSlots: 2}
	if !reflect.DeepEqual(plan, want) {
		t.Fatalf("PlanDeleteSite = %+v\nwant %+v", plan, want)
	}
	if _, err := s.GetSite(ctx, "site-1"); err != nil {
		t.Fatalf("the plan changed something: %v", err)
	}
	held := outboxIDs(t, s, "ca", "cb")
	got, err := s.DeleteSite(ctx, "site-1", epoch, store.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DeleteSite = %+v\nwant %+v", got, want)
	}
	if _, err := s.GetSite(ctx, "site-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSite after delete = %v", err)
	}
	for _, h := range [][]byte{{1, 2, 3}, {1, 1, 1}} {
		if _, err := s.SiteBySecretHash(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SiteBySecretHash(%v) after delete = %v; the secret must stop working", h, err)
		}
	}
	gone(t, s, "ca", held[:1])
	gone(t, s, "cb", held[1:])
	// A token minted for the site before cannot start a conversation.
	if created, err := s.CreateConversation(ctx, store.Conversation{ID: "new", BotID: "bot-1", SiteID: "site-1", UserID: "dl_x", CreatedAt: epoch}); !errors.Is(err, store.ErrNotFound) || created {
		t.Errorf("CreateConversation on a deleted site = %v, %v; want ErrNotFound", created, err)
	}
	intact(t, s, "cc")
	intact(t, s, "cd")
	if dead, _ := s.ListDeadLetters(ctx, ""); len(dead) != 2 {
		t.Errorf("dead letters left: %d; want 2 (cc's and cd's)", len(dead))
	}
	if _, err := s.DeleteSite(ctx, "site-1", epoch, store.DeleteOptions{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteSite = %v; want ErrNotFound", err)
	}
	if _, err := s.PlanDeleteSite(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PlanDeleteSite(unknown) = %v; want ErrNotFound", err)
	}
	// The name is free again.
	if err := s.CreateSite(ctx, store.Site{ID: "site-1b", BotID: "bot-1", Name: "web", CreatedAt: epoch}); err != nil {
		t.Errorf("CreateSite with a deleted site's name = %v", err)
	}
}

// testDeleteBot: a bot with sites is refused without cascade, changing
// nothing; with cascade it goes with its sites, their conversations and
// its secrets; another bot keeps everything.
func testDeleteBot(t *testing.T, s store.Store) {
	ctx := context.Background()
	lifecycleSeed(t, s)
	if err := s.PutDataKey(ctx, store.DataKey{Scope: "bot:bot-1", KEKID: "kek-1", Wrapped: []byte("w"), CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	r, err := s.DeleteBot(ctx, "bot-1", epoch, store.DeleteOptions{})
	if !errors.Is(err, store.ErrHasSites) || !reflect.DeepEqual(r.SiteIDs, []string{"site-1", "site-2"}) {
		t.Fatalf("DeleteBot without cascade = %+v, %v; want ErrHasSites naming site-1, site-2", r, err)
	}
	if _, err := s.GetBot(ctx, "bot-1"); err != nil {
		t.Fatalf("a refused DeleteBot removed the bot: %v", err)
	}
	intact(t, s, "ca")
	plan, err := s.PlanDeleteBot(ctx, "bot-1")
	if err != nil {
		t.Fatal(err)
	}
	want := store.Removal{BotID: "bot-1", SiteIDs: []string{"site-1", "site-2"}, Conversations: 3, Activities: 6, Attachments: 3, Sessions: 3, DataKeys: 4, OutboxItems: 3, DeadLetters: 3, SecretSlots: 4}
	if !reflect.DeepEqual(plan, want) {
		t.Fatalf("PlanDeleteBot = %+v\nwant %+v", plan, want)
	}
	held := outboxIDs(t, s, "ca", "cb", "cc")
	got, err := s.DeleteBot(ctx, "bot-1", epoch, store.DeleteOptions{Cascade: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DeleteBot = %+v\nwant %+v", got, want)
	}
	if _, err := s.GetBot(ctx, "bot-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBot after delete = %v", err)
	}
	if sites, _ := s.ListSites(ctx, "bot-1"); len(sites) != 0 {
		t.Errorf("sites of the deleted bot: %d", len(sites))
	}
	if _, err := s.GetDataKey(ctx, "bot:bot-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the bot's data key after delete = %v", err)
	}
	for i, c := range []string{"ca", "cb", "cc"} {
		gone(t, s, c, held[i:i+1])
	}
	if dead, _ := s.ListDeadLetters(ctx, "bot-1"); len(dead) != 0 {
		t.Errorf("dead letters of the deleted bot: %d", len(dead))
	}
	intact(t, s, "cd")
	if bots, _ := s.ListBots(ctx); len(bots) != 1 || bots[0].ID != "bot-2" {
		t.Errorf("bots left = %+v; want bot-2 only", bots)
	}
	if _, err := s.DeleteBot(ctx, "bot-1", epoch, store.DeleteOptions{Cascade: true}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteBot = %v; want ErrNotFound", err)
	}
	if _, err := s.PlanDeleteBot(ctx, "bot-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PlanDeleteBot(deleted) = %v; want ErrNotFound", err)
	}
	// A bot without sites goes without cascade.
	lone := store.Bot{ID: "bot-3", Name: "Lone", Endpoint: "https://lone.example/api/messages", CreatedAt: epoch}
	if err := s.CreateBot(ctx, lone); err != nil {
		t.Fatal(err)
	}
	if r, err := s.DeleteBot(ctx, "bot-3", epoch, store.DeleteOptions{}); err != nil || r.BotID != "bot-3" || len(r.SiteIDs) != 0 {
		t.Errorf("DeleteBot(no sites) = %+v, %v", r, err)
	}
}

// testUpdateBotAuthAndSite: switching authentication replaces both
// secret slots in the same change; a site is renamed and its enhanced
// authentication switched, names checked as at creation.
func testUpdateBotAuthAndSite(t *testing.T, s store.Store) {
	ctx := context.Background()
	lifecycleSeed(t, s)
	b, err := s.GetBot(ctx, "bot-1") // insecure, no secrets
	if err != nil {
		t.Fatal(err)
	}
	b.InsecureNoAuth, b.SecretHashes, b.Name, b.DeliveryTimeout = false, [2][]byte{{4, 2}, nil}, "Echo 2", 30*time.Second
	if err := s.UpdateBotAuth(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBot(ctx, "bot-1")
	if err != nil || got.InsecureNoAuth || string(got.SecretHashes[0]) != string([]byte{4, 2}) || got.SecretHashes[1] != nil || got.Name != "Echo 2" || got.Endpoint != b.Endpoint ||
		got.DeliveryTimeout != 30*time.Second {
		t.Fatalf("after UpdateBotAuth = %+v, %v", got, err)
	}
	b.Name = "two"
	if err := s.UpdateBotAuth(ctx, b); !errors.Is(err, store.ErrNameTaken) {
		t.Errorf("UpdateBotAuth(rename to a taken name) = %v; want ErrNameTaken", err)
	}
	if err := s.UpdateBotAuth(ctx, store.Bot{ID: "nope", Name: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateBotAuth(unknown) = %v; want ErrNotFound", err)
	}

	if err := s.UpdateSite(ctx, "site-1", "Website", false); err != nil {
		t.Fatal(err)
	}
	site, err := s.GetSite(ctx, "site-1")
	if err != nil || site.Name != "Website" || site.EnhancedAuth || !reflect.DeepEqual(site.TrustedOrigins, []string{"https://a.example"}) || site.SecretHashes[0] == nil {
		t.Fatalf("after UpdateSite = %+v, %v", site, err)
	}
	if err := s.UpdateSite(ctx, "site-1", "APP", true); !errors.Is(err, store.ErrNameTaken) {
		t.Errorf("UpdateSite(rename to a sibling's name) = %v; want ErrNameTaken", err)
	}
	if site, _ := s.GetSite(ctx, "site-1"); site.Name != "Website" || site.EnhancedAuth {
		t.Errorf("a refused UpdateSite changed the site: %+v", site)
	}
	if err := s.UpdateSite(ctx, "site-1", "web", true); err != nil {
		t.Errorf("UpdateSite to a name another bot's site has = %v", err)
	}
	if err := s.UpdateSite(ctx, "nope", "x", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateSite(unknown) = %v; want ErrNotFound", err)
	}
}

// testListConversations: summaries by site or bot, most recently active
// first, with counts and never content.
func testListConversations(t *testing.T, s store.Store) {
	ctx := context.Background()
	lifecycleSeed(t, s)
	all, err := s.ListConversations(ctx, store.ConversationFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("ListConversations() = %d, %v; want 4", len(all), err)
	}
	c := all[0]
	for _, x := range all {
		if x.ID == "ca" {
			c = x
		}
	}
	if c.ID != "ca" || c.BotID != "bot-1" || c.SiteID != "site-1" || c.UserID != "dl_alice" || c.Activities != 2 || c.PendingDeliveries != 1 || c.DeadLetters != 1 || c.Attachments != 1 ||
		!c.CreatedAt.Equal(epoch) || c.LastActivityAt.Before(epoch) || !c.EndedAt.IsZero() {
		t.Errorf("summary of ca = %+v", c)
	}
	for i := 1; i < len(all); i++ {
		if all[i].LastActivityAt.After(all[i-1].LastActivityAt) {
			t.Errorf("not most recently active first: %s after %s", all[i].ID, all[i-1].ID)
		}
	}
	ids := func(f store.ConversationFilter) []string {
		got, err := s.ListConversations(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range got {
			out = append(out, g.ID)
		}
		return out
	}
	if got := ids(store.ConversationFilter{SiteID: "site-2"}); !reflect.DeepEqual(got, []string{"cc"}) {
		t.Errorf("site-2's = %v", got)
	}
	if got := ids(store.ConversationFilter{BotID: "bot-2"}); !reflect.DeepEqual(got, []string{"cd"}) {
		t.Errorf("bot-2's = %v", got)
	}
	if got := ids(store.ConversationFilter{BotID: "bot-1"}); len(got) != 3 {
		t.Errorf("bot-1's = %v", got)
	}
	if got := ids(store.ConversationFilter{BotID: "bot-2", SiteID: "site-1"}); len(got) != 0 {
		t.Errorf("bot-2 and site-1 = %v; want none", got)
	}
	if got := ids(store.ConversationFilter{Limit: 2}); len(got) != 2 {
		t.Errorf("limit 2 = %v", got)
	}
	if got := ids(store.ConversationFilter{SiteID: "nope"}); len(got) != 0 {
		t.Errorf("unknown site = %v", got)
	}
}

// testDeleteBotWhileServing: appends, uploads, sessions, data keys and new
// conversations racing a cascading DeleteBot either land before it (and
// are removed with it) or fail with ErrNotFound; nothing is left behind.
func testDeleteBotWhileServing(t *testing.T, s store.Store) {
	ctx := context.Background()
	lifecycleSeed(t, s)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	var failed error
	var started []string
	note := func(err error) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			mu.Lock()
			failed = err
			mu.Unlock()
		}
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				_, err := s.CreateConversation(ctx, store.Conversation{ID: id, BotID: "bot-1", SiteID: "site-1", UserID: "dl_w", CreatedAt: epoch})
				note(err)
				if err != nil {
					continue
				}
				mu.Lock()
				started = append(started, id)
				mu.Unlock()
				_, err = s.Append(ctx, id, []store.NewRecord{rec("m")}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "a", []byte("b"), nil }}})
				note(err)
				note(s.PutAttachment(ctx, store.Attachment{ID: "f-" + id, ConversationID: id, ContentType: "text/plain", Data: []byte("x"), CreatedAt: epoch}))
				note(s.PutSession(ctx, store.Session{ID: "s-" + id, ConversationID: id, UserID: "dl_w", ExpiresAt: epoch.Add(time.Hour)}))
				err = s.PutDataKey(ctx, store.DataKey{Scope: store.DataKeyScope(id), KEKID: "kek-1", Wrapped: []byte("w"), CreatedAt: epoch})
				if !errors.Is(err, store.ErrExists) {
					note(err)
				}
				_, err = s.Append(ctx, "ca", []store.NewRecord{rec("more")}, nil)
				note(err)
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := s.DeleteBot(ctx, "bot-1", epoch, store.DeleteOptions{Cascade: true}); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed != nil {
		t.Fatalf("a racing write failed with something other than ErrNotFound: %v", failed)
	}
	if len(started) == 0 {
		t.Fatal("no conversation started before the delete: the race was not exercised")
	}
	for _, id := range append(started, "ca", "cb", "cc") {
		if recs, _ := s.Read(ctx, id, -1, 100); len(recs) != 0 {
			t.Errorf("%d orphan records in %s", len(recs), id)
		}
		if items, _ := s.PendingOutbox(ctx, id); len(items) != 0 {
			t.Errorf("%d orphan outbox items in %s", len(items), id)
		}
		if _, err := s.GetAttachment(ctx, "f-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("orphan attachment of %s: %v", id, err)
		}
		if _, err := s.GetSession(ctx, "s-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("orphan session of %s: %v", id, err)
		}
		if _, err := s.GetDataKey(ctx, store.DataKeyScope(id)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("orphan data key of %s: %v", id, err)
		}
	}
	if left, _ := s.ListConversations(ctx, store.ConversationFilter{BotID: "bot-1", Limit: 100000}); len(left) != 0 {
		t.Errorf("%d conversations of the deleted bot left", len(left))
	}
	intact(t, s, "cd")
}
