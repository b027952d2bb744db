package admin_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

type events struct {
	list []audit.Event
	fail bool
}

func (r *events) Record(_ context.Context, e audit.Event) error {
	r.list = append(r.list, e)
	if r.fail {
		return errors.New("audit log unavailable")
	}
	return nil
}

func newService(t *testing.T) (*admin.Service, store.Store, *events) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rec := &events{}
	svc := admin.NewService(admin.Deps{Store: st, Recorder: rec,
		CheckEndpoint: func(context.Context, string) (string, error) { return "", nil }})
	return svc, st, rec
}

var (
	owner   = admin.Principal{Kind: admin.KindLocal, ID: "root", Role: admin.RoleOwner}
	opA     = admin.Principal{Kind: admin.KindOperator, ID: "op-a", Role: admin.RoleOperator, Bots: []string{"bot-a"}}
	auditor = admin.Principal{Kind: admin.KindOperator, ID: "aud", Role: admin.RoleAuditor}
)

func seed(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"bot-a", "bot-b"} {
		if err := st.CreateBot(ctx, store.Bot{ID: id, Name: id, Endpoint: "https://" + id + ".example.com/api", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSite(ctx, store.Site{ID: "site-" + id, BotID: id, Name: "web", EnhancedAuth: true, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// Every call is audited once: success, failure (with a reason), denied
// (role or scope); never a secret.
func TestServiceAudits(t *testing.T) {
	svc, st, rec := newService(t)
	seed(t, st)
	ctx := context.Background()
	secret, err := svc.RotateSiteSecret(ctx, opA, "site-bot-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateSiteSecret(ctx, opA, "site-bot-b", 1); admin.NotFoundObject(err) != "site" {
		t.Errorf("another team's site: %v, want not found", err)
	}
	if _, err := svc.RotateSiteSecret(ctx, opA, "site-zz", 1); admin.NotFoundObject(err) != "site" {
		t.Errorf("unknown site: %v", err)
	}
	if _, err := svc.RotateSiteSecret(ctx, auditor, "site-bot-a", 1); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("auditor: %v, want forbidden", err)
	}
	if _, err := svc.RotateSiteSecret(ctx, owner, "site-bot-a", 3); err == nil {
		t.Error("slot 3 accepted")
	}
	want := []struct{ outcome, reason string }{{"success", ""}, {"denied", "scope"}, {"failure", "not_found"}, {"denied", "role"}, {"failure", "invalid"}}
	if len(rec.list) != len(want) {
		t.Fatalf("events: %+v", rec.list)
	}
	for i, w := range want {
		e := rec.list[i]
		if string(e.Outcome) != w.outcome || e.Detail["reason"] != w.reason || e.Action != string(admin.SitesSecrets) {
			t.Errorf("event %d = %+v, want %s %s", i, e, w.outcome, w.reason)
		}
		for _, v := range e.Detail {
			if strings.Contains(v, secret) {
				t.Errorf("secret in the audit event %+v", e)
			}
		}
	}
	if rec.list[0].Actor != "operator:op-a" || rec.list[0].Target != "site:site-bot-a" {
		t.Errorf("event 0 = %+v", rec.list[0])
	}
}

// A scoped principal cannot register a bot, nor list another team's
// objects; an unscoped operator can register one.
func TestServiceScopes(t *testing.T) {
	svc, st, _ := newService(t)
	seed(t, st)
	ctx := context.Background()
	in := admin.BotCreate{Name: "New", Endpoint: "http://127.0.0.1:9/api", InsecureNoAuth: true}
	if _, err := svc.CreateBot(ctx, opA, in); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("scoped operator registers a bot: %v", err)
	}
	unscoped := opA
	unscoped.Bots = nil
	if _, err := svc.CreateBot(ctx, unscoped, in); err != nil {
		t.Errorf("unscoped operator: %v", err)
	}
	bots, err := svc.ListBots(ctx, opA)
	if err != nil || len(bots) != 1 || bots[0].ID != "bot-a" {
		t.Errorf("scoped ListBots = %v, %v", bots, err)
	}
	sites, err := svc.ListSites(ctx, opA, "")
	if err != nil || len(sites) != 1 || sites[0].BotID != "bot-a" {
		t.Errorf("scoped ListSites = %v, %v", sites, err)
	}
	if _, err := svc.ListKeys(ctx, admin.Principal{Kind: admin.KindToken, ID: "x", Role: admin.RoleOwner, Bots: []string{"bot-a"}}, ""); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("scoped owner lists keys: %v", err)
	}
	if _, err := svc.SetOrigins(ctx, owner, "site-bot-a", nil); err == nil {
		t.Error("nil origins accepted (an explicit empty list is required to clear)")
	}
	if s, err := svc.SetOrigins(ctx, owner, "site-bot-a", []string{}); err != nil || len(s.TrustedOrigins) != 0 {
		t.Errorf("empty origins: %v, %v", s.TrustedOrigins, err)
	}
}

// A success the audit log could not record is reported as an error.
func TestServiceRecorderFailure(t *testing.T) {
	svc, st, rec := newService(t)
	seed(t, st)
	rec.fail = true
	if _, err := svc.ListBots(context.Background(), owner); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Errorf("ListBots with a failing audit log: %v", err)
	}
}

// Erasing in bulk ('parley erase') keeps each principal to its scope:
// another team's conversation is left alone (not found to them), a
// scoped principal may not erase a user's tokens of every bot, and an
// auditor erases nothing. Each erasure is audited.
func TestEraseConversationsScopes(t *testing.T) {
	svc, st, rec := newService(t)
	seed(t, st)
	ctx := context.Background()
	for _, c := range []store.Conversation{{ID: "conv-a", BotID: "bot-a", SiteID: "site-bot-a", UserID: "dl_u"}, {ID: "conv-b", BotID: "bot-b", SiteID: "site-bot-b", UserID: "dl_u"}} {
		c.CreatedAt = time.Now()
		if _, err := st.CreateConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ids := []string{"conv-a", "conv-b"}
	adminA := admin.Principal{Kind: admin.KindOperator, ID: "adm-a", Role: admin.RoleAdmin, Bots: []string{"bot-a"}}
	if done, err := svc.EraseConversations(ctx, auditor, ids, time.Now()); len(done) != 0 || !errors.Is(err, admin.ErrForbidden) {
		t.Fatalf("auditor erased %d: %v", len(done), err)
	}
	if _, err := svc.EraseUserTokens(ctx, adminA, "dl_u"); !errors.Is(err, admin.ErrForbidden) {
		t.Errorf("scoped admin erasing a user's tokens of every bot: %v, want forbidden", err)
	}
	done, err := svc.EraseConversations(ctx, adminA, ids, time.Now())
	if err != nil || len(done) != 1 || done[0].Conversation != "conv-a" || !done[0].Scrubbed {
		t.Fatalf("scoped admin: %+v, %v; want conv-a only, scrubbed", done, err)
	}
	if _, err := st.GetConversation(ctx, "conv-b"); err != nil {
		t.Fatalf("another team's conversation was erased: %v", err)
	}
	if done, err := svc.EraseConversations(ctx, owner, ids, time.Now()); err != nil || len(done) != 1 || done[0].Conversation != "conv-b" {
		t.Fatalf("owner: %+v, %v; want conv-b (conv-a is gone already)", done, err)
	}
	var erased []string
	for _, e := range rec.list {
		if e.Action == string(admin.ConversationsErase) && e.Outcome == audit.Success {
			erased = append(erased, e.Actor+" "+e.Target)
		}
	}
	if len(erased) != 2 {
		t.Errorf("audited erasures = %v, want one by the scoped admin and one by the owner", erased)
	}
}
