package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testAttachmentNeedsConversation: a file, or a sign-in session (it holds
// the user id), is stored only while its conversation exists. A bot's upload that races an erasure (the server's
// caches still know the conversation for a few seconds) must not leave a
// row behind the erasure receipt.
func testAttachmentNeedsConversation(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	a := store.Attachment{ID: "att-orphan", ConversationID: "c1", ContentType: "text/plain", Name: "n", Data: []byte{1}, CreatedAt: epoch}
	if _, err := s.DeleteConversation(ctx, "c1", epoch); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAttachment(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutAttachment to a deleted conversation = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAttachment(ctx, "att-orphan"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused file was stored: %v", err)
	}
	se := store.Session{ID: "sid-orphan", ConversationID: "c1", UserID: "dl_erased", ExpiresAt: epoch.Add(3600e9)}
	if err := s.PutSession(ctx, se); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutSession to a deleted conversation = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, "sid-orphan"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused session (a user id) was stored: %v", err)
	}
	a.ConversationID, a.ID = "never", "att-never"
	if err := s.PutAttachment(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutAttachment to an unknown conversation = %v, want ErrNotFound", err)
	}
}
