package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testNoOrphansAfterDelete: a bot's upload (PutAttachment) or a sign-in
// session (PutSession) that races a DeleteConversation (the sweeper,
// `parley erase` in another process) must not leave rows behind that no
// later deletion would find: both refuse a conversation that does not
// exist, and store nothing.
func testNoOrphansAfterDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	if _, err := s.DeleteConversation(ctx, "c1", epoch); err != nil {
		t.Fatal(err)
	}
	late := store.Attachment{ID: "att-late", ConversationID: "c1", ContentType: "text/plain", Name: "passport-jane-doe.pdf", Data: []byte{1, 2}, CreatedAt: epoch}
	if err := s.PutAttachment(ctx, late); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutAttachment into a deleted conversation = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAttachment(ctx, "att-late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the late attachment was stored: GetAttachment = %v", err)
	}
	if err := s.PutSession(ctx, store.Session{ID: "sess-late", ConversationID: "c1", UserID: "dl_u", ExpiresAt: epoch.Add(time.Hour)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutSession into a deleted conversation = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, "sess-late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the late session was stored: GetSession = %v", err)
	}
	// Never created: the same.
	if err := s.PutAttachment(ctx, store.Attachment{ID: "att-none", ConversationID: "nope", ContentType: "text/plain", Name: "n", Data: []byte{1}, CreatedAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutAttachment into an unknown conversation = %v, want ErrNotFound", err)
	}
}
