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

// testListEnrollments: the unexpired codes are listed oldest first with
// what they grant (never a code: only its hash); one is deleted by its
// hash, an unknown hash is ErrNotFound.
func testListEnrollments(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, e := range []store.Enrollment{
		{Hash: []byte("first"), Role: "operator", Bots: []string{"bot-a"}, CreatedBy: "op-1"},
		{Hash: []byte("second"), Role: "owner", Bootstrap: true},
		{Hash: []byte("expired"), Role: "admin"},
	} {
		e.CreatedAt = epoch.Add(time.Duration(i) * time.Minute)
		e.ExpiresAt = epoch.Add(time.Hour)
		if string(e.Hash) == "expired" {
			e.ExpiresAt = epoch.Add(time.Minute)
		}
		if err := s.CreateEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListEnrollments(ctx, epoch.Add(30*time.Minute))
	if err != nil || len(list) != 2 || string(list[0].Hash) != "first" || string(list[1].Hash) != "second" {
		t.Fatalf("ListEnrollments = %+v, %v; want first and second, oldest first", list, err)
	}
	if e := list[0]; e.Role != "operator" || len(e.Bots) != 1 || e.Bots[0] != "bot-a" || e.CreatedBy != "op-1" || e.Bootstrap || !e.ExpiresAt.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("first = %+v", e)
	}
	if !list[1].Bootstrap {
		t.Fatalf("second = %+v, want a bootstrap code", list[1])
	}
	if err := s.DeleteEnrollment(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEnrollment(ctx, []byte("first")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteEnrollment(deleted) = %v, want ErrNotFound", err)
	}
	if _, err := s.EnrollOperator(ctx, []byte("first"), epoch, store.Operator{ID: "x", Name: "x", CreatedAt: epoch, UpdatedAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EnrollOperator(deleted code) = %v", err)
	}
}
