package storetest

import (
	"context"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

func testLegacyContent(t *testing.T, s store.Store) {
	ctx := context.Background()
	if p, err := s.LegacyPending(ctx); err != nil || p {
		t.Fatalf("LegacyPending on a new store = %v, %v; want false", p, err)
	}
	seed(t, s)
	conv(t, s, "c1")
	body := func(format byte, s string) []byte { return append([]byte{format}, s...) }
	recs := []store.NewRecord{
		{Build: func(int64) ([]byte, error) { return body(0, "plain-0"), nil }},
		{Build: func(int64) ([]byte, error) { return body(1, "sealed-1"), nil }},
		{Build: func(int64) ([]byte, error) { return body(0, "plain-2"), nil },
			Attachments: []store.Attachment{{ID: "att-plain", ContentType: "text/plain", Name: "a", Data: body(0, "file"), CreatedAt: epoch}}},
	}
	out := []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "c1|0", body(0, "to bot"), nil }},
		{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return "c1|1", body(1, "to bot sealed"), nil }}}
	if _, err := s.Append(ctx, "c1", recs, out); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAttachment(ctx, store.Attachment{ID: "att-sealed", ConversationID: "c1", ContentType: "text/plain", Name: "b", Data: body(1, "x"), CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	pend, _ := s.PendingOutbox(ctx, "c1")
	if err := s.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: pend[0].ID}, LastAttemptAt: epoch, DeadAt: epoch}); err != nil {
		t.Fatal(err)
	}
	// Activities page by page: only the plain ones, in order.
	p1, err := s.ListLegacy(ctx, store.LegacyActivity, store.LegacyBlob{}, 1)
	if err != nil || len(p1) != 1 || p1[0].Seq != 0 || string(p1[0].Body) != "\x00plain-0" {
		t.Fatalf("ListLegacy activities page 1 = %+v, %v", p1, err)
	}
	p2, err := s.ListLegacy(ctx, store.LegacyActivity, p1[0], 10)
	if err != nil || len(p2) != 1 || p2[0].Seq != 2 {
		t.Fatalf("ListLegacy activities page 2 = %+v, %v", p2, err)
	}
	for _, k := range []struct {
		kind string
		n    int
	}{{store.LegacyOutbox, 0}, {store.LegacyDeadLetter, 1}, {store.LegacyAttachment, 1}} {
		got, err := s.ListLegacy(ctx, k.kind, store.LegacyBlob{}, 10)
		if err != nil || len(got) != k.n {
			t.Fatalf("ListLegacy(%s) = %+v, %v; want %d", k.kind, got, err, k.n)
		}
		for _, b := range got {
			if b.Body[0] != 0 || b.ConversationID != "c1" || b.ID == "" {
				t.Fatalf("ListLegacy(%s) item = %+v", k.kind, b)
			}
		}
	}
	// A replacement against a stale body changes nothing.
	stale := p1[0]
	stale.Body = []byte("\x00something else")
	if ok, err := s.ReplaceLegacy(ctx, stale, body(1, "new")); err != nil || ok {
		t.Fatalf("ReplaceLegacy(stale) = %v, %v; want false", ok, err)
	}
	if ok, err := s.ReplaceLegacy(ctx, p1[0], body(1, "sealed-0")); err != nil || !ok {
		t.Fatalf("ReplaceLegacy = %v, %v", ok, err)
	}
	r, _ := s.GetRecord(ctx, "c1", 0)
	if string(r.Body) != "\x01sealed-0" {
		t.Fatalf("after ReplaceLegacy the record holds %q", r.Body)
	}
	att, _ := s.ListLegacy(ctx, store.LegacyAttachment, store.LegacyBlob{}, 10)
	if ok, err := s.ReplaceLegacy(ctx, att[0], body(1, "sealed file")); err != nil || !ok {
		t.Fatalf("ReplaceLegacy(attachment) = %v, %v", ok, err)
	}
	if a, _ := s.GetAttachment(ctx, "att-plain"); string(a.Data) != "\x01sealed file" {
		t.Fatalf("attachment after ReplaceLegacy = %q", a.Data)
	}
	dl, _ := s.ListLegacy(ctx, store.LegacyDeadLetter, store.LegacyBlob{}, 10)
	if ok, err := s.ReplaceLegacy(ctx, dl[0], body(1, "sealed dl")); err != nil || !ok {
		t.Fatalf("ReplaceLegacy(dead letter) = %v, %v", ok, err)
	}
	if left, _ := s.ListLegacy(ctx, store.LegacyActivity, store.LegacyBlob{}, 10); len(left) != 1 {
		t.Fatalf("plain activities left = %d, want 1", len(left))
	}
	if err := s.ClearLegacyPending(ctx); err != nil {
		t.Fatal(err)
	}
}
