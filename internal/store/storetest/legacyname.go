package storetest

import (
	"context"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testLegacyAttachmentNames: file names stored in the clear are listed
// (not the sealed ones, nor empty names) and replaced only while unchanged.
func testLegacyAttachmentNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	for _, a := range []store.Attachment{
		{ID: "att-1", ConversationID: "c1", ContentType: "text/plain", Name: "passport-jane.pdf", Data: []byte{1, 2}, CreatedAt: epoch},
		{ID: "att-2", ConversationID: "c1", ContentType: "text/plain", Name: "sealed:AQID", Data: []byte{1, 2}, CreatedAt: epoch},
		{ID: "att-3", ConversationID: "c1", ContentType: "text/plain", Name: "", Data: []byte{1, 2}, CreatedAt: epoch},
	} {
		if err := s.PutAttachment(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListLegacy(ctx, store.LegacyAttachmentName, store.LegacyBlob{}, 10)
	if err != nil || len(got) != 1 || got[0].ID != "att-1" || got[0].ConversationID != "c1" || string(got[0].Body) != "passport-jane.pdf" {
		t.Fatalf("ListLegacy(names) = %+v, %v; want att-1 only", got, err)
	}
	stale := got[0]
	stale.Body = []byte("other.pdf")
	if ok, err := s.ReplaceLegacy(ctx, stale, []byte("sealed:BBBB")); err != nil || ok {
		t.Fatalf("ReplaceLegacy(stale name) = %v, %v; want false", ok, err)
	}
	if ok, err := s.ReplaceLegacy(ctx, got[0], []byte("sealed:CCCC")); err != nil || !ok {
		t.Fatalf("ReplaceLegacy(name) = %v, %v", ok, err)
	}
	if a, _ := s.GetAttachment(ctx, "att-1"); a.Name != "sealed:CCCC" {
		t.Fatalf("name after ReplaceLegacy = %q", a.Name)
	}
	if left, _ := s.ListLegacy(ctx, store.LegacyAttachmentName, store.LegacyBlob{}, 10); len(left) != 0 {
		t.Fatalf("plain names left = %+v", left)
	}
}
