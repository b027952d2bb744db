package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testDeleteEnrollmentsBy: an inviter's unused codes go, and only those:
// another operator's code and a bootstrap code (no creator) still enroll.
func testDeleteEnrollmentsBy(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, e := range []store.Enrollment{
		{Hash: []byte("bob-1"), Role: "owner", CreatedBy: "op-bob"},
		{Hash: []byte("bob-2"), Role: "operator", Bots: []string{"bot-a"}, CreatedBy: "op-bob"},
		{Hash: []byte("carol-1"), Role: "admin", CreatedBy: "op-carol"},
		{Hash: []byte("boot"), Role: "owner", Bootstrap: true},
	} {
		e.CreatedAt, e.ExpiresAt = epoch, epoch.Add(time.Hour)
		if err := s.CreateEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteEnrollmentsBy(ctx, ""); n != 0 || err != nil {
		t.Fatalf(`DeleteEnrollmentsBy("") = %d, %v; want 0 (bootstrap codes have no creator)`, n, err)
	}
	if n, err := s.DeleteEnrollmentsBy(ctx, "op-bob"); n != 2 || err != nil {
		t.Fatalf("DeleteEnrollmentsBy(op-bob) = %d, %v; want 2", n, err)
	}
	enroll := func(hash, id string) error {
		_, err := s.EnrollOperator(ctx, []byte(hash), epoch, store.Operator{ID: id, Name: id, CreatedAt: epoch, UpdatedAt: epoch})
		return err
	}
	for _, h := range []string{"bob-1", "bob-2"} {
		if err := enroll(h, "new-"+h); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("EnrollOperator(%s, deleted) = %v, want ErrNotFound", h, err)
		}
	}
	for _, h := range []string{"carol-1", "boot"} {
		if err := enroll(h, "new-"+h); err != nil {
			t.Fatalf("EnrollOperator(%s) = %v, want it kept", h, err)
		}
	}
}
