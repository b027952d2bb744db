package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testDeadLetterGetDrop: GetDeadLetter returns one dead letter with its
// bot and conversation; DropDeadLetter deletes it (the outbox does not
// get it back), and both answer ErrNotFound afterwards and for an
// unknown id.
func testDeadLetterGetDrop(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, site := seed(t, s)
	fillIn(t, s, b.ID, site.ID, "conv-dl", "")
	dls, err := s.ListDeadLetters(ctx, "")
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDeadLetters = %v, %v", dls, err)
	}
	d, err := s.GetDeadLetter(ctx, dls[0].ID)
	if err != nil || d.BotID != b.ID || d.ConversationID != "conv-dl" || d.ActivityID != dls[0].ActivityID || string(d.Body) != string(dls[0].Body) {
		t.Fatalf("GetDeadLetter = %+v, %v; want %+v", d, err, dls[0])
	}
	pendingBefore, _ := s.PendingOutbox(ctx, "conv-dl")
	if err := s.DropDeadLetter(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDeadLetter(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDeadLetter after drop: %v, want ErrNotFound", err)
	}
	if err := s.DropDeadLetter(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DropDeadLetter twice: %v, want ErrNotFound", err)
	}
	if _, err := s.RedeliverDeadLetter(ctx, d.ID, epoch); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RedeliverDeadLetter after drop: %v, want ErrNotFound", err)
	}
	if pending, _ := s.PendingOutbox(ctx, "conv-dl"); len(pending) != len(pendingBefore) {
		t.Errorf("pending outbox %d after drop, want %d (a drop never redelivers)", len(pending), len(pendingBefore))
	}
	if n, err := s.CountDeadLetters(ctx); err != nil || n != 0 {
		t.Errorf("CountDeadLetters = %d, %v; want 0", n, err)
	}
	if _, err := s.GetDeadLetter(ctx, 987654); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDeadLetter(unknown) = %v, want ErrNotFound", err)
	}
}
