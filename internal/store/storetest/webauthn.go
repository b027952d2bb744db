package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testWebAuthn is the WebAuthnStore contract (issue 13).
func testWebAuthn(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"op-a", "op-b"} {
		if err := s.CreateOperator(ctx, store.Operator{ID: id, Name: id, Role: "admin", PasswordHash: "$argon2id$x", CreatedAt: epoch, UpdatedAt: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ListWebAuthnCredentials(ctx, "op-a"); err != nil || len(got) != 0 {
		t.Fatalf("ListWebAuthnCredentials(none) = %v, %v", got, err)
	}
	aaguid := bytes.Repeat([]byte{0xab}, 16)
	c1 := store.WebAuthnCredential{ID: "pk_1", OperatorID: "op-a", CredentialID: []byte{1, 2, 3}, PublicKey: []byte{0xa5, 1}, SignCount: 5,
		AAGUID: aaguid, Transports: []string{"usb", "internal"}, AttestationFormat: "none", BackupEligible: true, BackupState: true,
		Name: "YubiKey", CreatedAt: epoch}
	if err := s.AddWebAuthnCredential(ctx, c1); err != nil {
		t.Fatal(err)
	}
	c2 := store.WebAuthnCredential{ID: "pk_2", OperatorID: "op-a", CredentialID: []byte{4, 5}, PublicKey: []byte{0xa5, 2}, Name: "phone",
		CreatedAt: epoch.Add(time.Minute)}
	if err := s.AddWebAuthnCredential(ctx, c2); err != nil {
		t.Fatal(err)
	}
	// A credential id belongs to one operator; ids are unique.
	dup := c1
	dup.ID, dup.OperatorID = "pk_3", "op-b"
	if err := s.AddWebAuthnCredential(ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("AddWebAuthnCredential(same credential id) = %v, want ErrExists", err)
	}
	dup = c2
	dup.CredentialID = []byte{9}
	if err := s.AddWebAuthnCredential(ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("AddWebAuthnCredential(same id) = %v, want ErrExists", err)
	}
	orphan := store.WebAuthnCredential{ID: "pk_4", OperatorID: "nobody", CredentialID: []byte{7}, PublicKey: []byte{1}, CreatedAt: epoch}
	if err := s.AddWebAuthnCredential(ctx, orphan); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddWebAuthnCredential(unknown operator) = %v, want ErrNotFound", err)
	}
	got, err := s.ListWebAuthnCredentials(ctx, "op-a")
	if err != nil || len(got) != 2 || got[0].ID != "pk_1" || got[1].ID != "pk_2" {
		t.Fatalf("ListWebAuthnCredentials = %+v, %v", got, err)
	}
	g := got[0]
	if !bytes.Equal(g.CredentialID, c1.CredentialID) || !bytes.Equal(g.PublicKey, c1.PublicKey) || g.SignCount != 5 || !bytes.Equal(g.AAGUID, aaguid) ||
		len(g.Transports) != 2 || g.Transports[1] != "internal" || g.AttestationFormat != "none" || !g.BackupEligible || !g.BackupState ||
		g.Name != "YubiKey" || !g.CreatedAt.Equal(epoch) || !g.LastUsedAt.IsZero() || g.OperatorID != "op-a" {
		t.Fatalf("stored credential = %+v", g)
	}
	if got, err := s.ListWebAuthnCredentials(ctx, "op-b"); err != nil || len(got) != 0 {
		t.Fatalf("another operator's list = %v, %v", got, err)
	}
	if c, err := s.WebAuthnCredentialByCredentialID(ctx, []byte{4, 5}); err != nil || c.ID != "pk_2" || c.OperatorID != "op-a" {
		t.Fatalf("WebAuthnCredentialByCredentialID = %+v, %v", c, err)
	}
	if _, err := s.WebAuthnCredentialByCredentialID(ctx, []byte{8}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("WebAuthnCredentialByCredentialID(missing) = %v", err)
	}

	// The counter must increase; the same or a lower one is refused.
	now := epoch.Add(time.Hour)
	for _, tc := range []struct {
		op, id string
		n      uint32
		ok     bool
	}{
		{"op-a", "pk_1", 5, false}, // equal: replay or clone
		{"op-a", "pk_1", 4, false}, // lower
		{"op-b", "pk_1", 6, false}, // another operator's credential
		{"op-a", "pk_1", 6, true},
		{"op-a", "pk_1", 6, false},
		{"op-a", "pk_2", 0, true}, // no counter: 0 and 0
		{"op-a", "pk_2", 0, true},
		{"op-a", "pk_2", 3, true},  // starts counting
		{"op-a", "pk_2", 0, false}, // and may not go back to 0
		{"op-a", "pk_9", 9, false},
	} {
		ok, err := s.UseWebAuthnCredential(ctx, tc.op, tc.id, tc.n, now)
		if err != nil || ok != tc.ok {
			t.Fatalf("UseWebAuthnCredential(%s, %s, %d) = %v, %v; want %v", tc.op, tc.id, tc.n, ok, err, tc.ok)
		}
	}
	got, _ = s.ListWebAuthnCredentials(ctx, "op-a")
	if got[0].SignCount != 6 || !got[0].LastUsedAt.Equal(now) || got[1].SignCount != 3 {
		t.Fatalf("after use: %+v", got)
	}

	// Concurrent assertions with the same counter: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := s.UseWebAuthnCredential(ctx, "op-a", "pk_1", 7, now); err == nil && ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("concurrent UseWebAuthnCredential: %d won, want 1", wins.Load())
	}

	if err := s.DeleteWebAuthnCredential(ctx, "op-b", "pk_2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteWebAuthnCredential(another operator's) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteWebAuthnCredential(ctx, "op-a", "pk_2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebAuthnCredential(ctx, "op-a", "pk_2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteWebAuthnCredential(again) = %v, want ErrNotFound", err)
	}
	// Removing the operator removes its passkeys.
	if err := s.DeleteOperator(ctx, "op-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebAuthnCredentialByCredentialID(ctx, c1.CredentialID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("passkey after DeleteOperator: %v, want ErrNotFound", err)
	}
	if got, err := s.ListWebAuthnCredentials(ctx, "op-a"); err != nil || len(got) != 0 {
		t.Fatalf("list after DeleteOperator = %v, %v", got, err)
	}
}
