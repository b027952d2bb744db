package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testOperators is the OperatorStore contract (issue 13).
func testOperators(t *testing.T, s store.Store) {
	ctx := context.Background()
	op := store.Operator{ID: "op-1", Name: "Alice", Role: "owner", PasswordHash: "$argon2id$x", TOTPSealed: []byte{9, 9},
		CreatedAt: epoch, UpdatedAt: epoch}
	if err := s.CreateOperator(ctx, op); err != nil {
		t.Fatal(err)
	}
	dup := op
	dup.ID = "op-2"
	dup.Name = "alice" // case-insensitive
	if err := s.CreateOperator(ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateOperator(same name) = %v, want ErrExists", err)
	}
	got, err := s.OperatorByName(ctx, "ALICE")
	if err != nil || got.ID != "op-1" || got.Role != "owner" || got.PasswordHash != op.PasswordHash || len(got.Bots) != 0 ||
		string(got.TOTPSealed) != string(op.TOTPSealed) || got.TOTPConfirmed || !got.CreatedAt.Equal(epoch) {
		t.Fatalf("OperatorByName = %+v, %v", got, err)
	}
	if _, err := s.GetOperator(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetOperator(missing) = %v", err)
	}
	if _, err := s.OperatorBySSOSubject(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OperatorBySSOSubject(\"\") = %v", err)
	}
	if _, err := s.OperatorByEnrollHash(ctx, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OperatorByEnrollHash(nil) = %v", err)
	}

	// Update: role, bots, SSO subject, enrollment handle.
	got.Role, got.Bots, got.SSOSubject, got.TOTPConfirmed = "operator", []string{"bot-a", "bot-b"}, "sub-1", true
	got.EnrollHash, got.EnrollUntil, got.UpdatedAt = []byte("eh"), epoch.Add(time.Hour), epoch.Add(time.Minute)
	if err := s.UpdateOperator(ctx, got); err != nil {
		t.Fatal(err)
	}
	if g, err := s.OperatorBySSOSubject(ctx, "sub-1"); err != nil || g.ID != "op-1" || !slices.Equal(g.Bots, []string{"bot-a", "bot-b"}) || !g.TOTPConfirmed {
		t.Fatalf("OperatorBySSOSubject = %+v, %v", g, err)
	}
	if g, err := s.OperatorByEnrollHash(ctx, []byte("eh")); err != nil || g.ID != "op-1" || !g.EnrollUntil.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("OperatorByEnrollHash = %+v, %v", g, err)
	}
	other := store.Operator{ID: "op-2", Name: "Bob", Role: "auditor", SSOSubject: "sub-1", CreatedAt: epoch, UpdatedAt: epoch}
	if err := s.CreateOperator(ctx, other); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateOperator(same SSO subject) = %v, want ErrExists", err)
	}
	other.SSOSubject = ""
	if err := s.CreateOperator(ctx, other); err != nil {
		t.Fatal(err)
	}
	if ops, err := s.ListOperators(ctx); err != nil || len(ops) != 2 || ops[0].Name != "Alice" || ops[1].Name != "Bob" {
		t.Fatalf("ListOperators = %+v, %v", ops, err)
	}
	if err := s.UpdateOperator(ctx, store.Operator{ID: "nope", Name: "x", Role: "owner", UpdatedAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateOperator(missing) = %v", err)
	}

	// TOTP steps: strictly increasing, one winner among concurrent callers.
	if ok, err := s.AcceptTOTPStep(ctx, "op-1", 100); !ok || err != nil {
		t.Fatalf("AcceptTOTPStep(100) = %v, %v", ok, err)
	}
	for _, step := range []int64{100, 99} {
		if ok, err := s.AcceptTOTPStep(ctx, "op-1", step); ok || err != nil {
			t.Fatalf("AcceptTOTPStep(%d) after 100 = %v, %v: want refused", step, ok, err)
		}
	}
	var wins int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := s.AcceptTOTPStep(ctx, "op-1", 101); ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("concurrent AcceptTOTPStep(101): %d accepted, want 1", wins)
	}
	if g, _ := s.GetOperator(ctx, "op-1"); g.TOTPStep != 101 {
		t.Fatalf("TOTPStep = %d, want 101", g.TOTPStep)
	}

	// Recovery codes: single use, replaced as a set.
	if err := s.SetRecoveryCodes(ctx, "op-1", [][]byte{[]byte("r1"), []byte("r2")}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UseRecoveryCode(ctx, "op-1", []byte("r1")); !ok || err != nil {
		t.Fatalf("UseRecoveryCode = %v, %v", ok, err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, "op-1", []byte("r1")); ok {
		t.Fatal("a recovery code was accepted twice")
	}
	if ok, _ := s.UseRecoveryCode(ctx, "op-2", []byte("r2")); ok {
		t.Fatal("another operator's recovery code was accepted")
	}
	if n, _ := s.RecoveryCodesLeft(ctx, "op-1"); n != 1 {
		t.Fatalf("RecoveryCodesLeft = %d, want 1", n)
	}
	if err := s.SetRecoveryCodes(ctx, "op-1", [][]byte{[]byte("r3")}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, "op-1", []byte("r2")); ok {
		t.Fatal("a replaced recovery code was accepted")
	}
	if err := s.SetRecoveryCodes(ctx, "nope", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetRecoveryCodes(missing) = %v", err)
	}

	// Lockout after max failures in a row.
	for i := 1; i < 3; i++ {
		if until, err := s.LoginFailed(ctx, "op-2", epoch, 3, time.Minute); err != nil || !until.IsZero() {
			t.Fatalf("failure %d: locked until %v, %v", i, until, err)
		}
	}
	if until, err := s.LoginFailed(ctx, "op-2", epoch, 3, time.Minute); err != nil || !until.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("failure 3: locked until %v, %v; want %v", until, err, epoch.Add(time.Minute))
	}
	if g, _ := s.GetOperator(ctx, "op-2"); !g.LockedUntil.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("LockedUntil = %v", g.LockedUntil)
	}
	if err := s.LoginSucceeded(ctx, "op-2"); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetOperator(ctx, "op-2"); !g.LockedUntil.IsZero() || g.Failures != 0 {
		t.Fatalf("after LoginSucceeded: %+v", g)
	}

	// Enrollment codes: one use, expiring, the role and bots they grant.
	code := store.Enrollment{Hash: []byte("code-1"), Role: "operator", Bots: []string{"bot-a"}, CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	if err := s.CreateEnrollment(ctx, code); err != nil {
		t.Fatal(err)
	}
	newOp := store.Operator{ID: "op-3", Name: "alice", Role: "owner", CreatedAt: epoch, UpdatedAt: epoch}
	if _, err := s.EnrollOperator(ctx, code.Hash, epoch, newOp); !errors.Is(err, store.ErrExists) {
		t.Fatalf("EnrollOperator(taken name) = %v, want ErrExists", err)
	}
	newOp.Name = "Carol"
	if _, err := s.EnrollOperator(ctx, code.Hash, epoch.Add(2*time.Hour), newOp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EnrollOperator(expired) = %v, want ErrNotFound", err)
	}
	o3, err := s.EnrollOperator(ctx, code.Hash, epoch, newOp)
	if err != nil || o3.Role != "operator" || !slices.Equal(o3.Bots, []string{"bot-a"}) {
		t.Fatalf("EnrollOperator = %+v, %v (the code's role and bots, not the caller's)", o3, err)
	}
	if g, _ := s.GetOperator(ctx, "op-3"); g.Role != "operator" {
		t.Fatalf("enrolled operator's role = %q", g.Role)
	}
	newOp.ID, newOp.Name = "op-4", "Dave"
	if _, err := s.EnrollOperator(ctx, code.Hash, epoch, newOp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EnrollOperator(used code) = %v, want ErrNotFound", err)
	}
	for _, h := range []string{"b1", "b2"} {
		if err := s.CreateEnrollment(ctx, store.Enrollment{Hash: []byte(h), Role: "owner", Bootstrap: true, CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteBootstrapEnrollments(ctx); n != 2 || err != nil {
		t.Fatalf("DeleteBootstrapEnrollments = %d, %v", n, err)
	}
	if _, err := s.EnrollOperator(ctx, []byte("b1"), epoch, newOp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EnrollOperator(deleted bootstrap code) = %v", err)
	}

	// Sessions.
	sess := store.AdminSession{IDHash: []byte("s1"), OperatorID: "op-1", CreatedAt: epoch, LastSeen: epoch, ExpiresAt: epoch.Add(8 * time.Hour), Client: "c1"}
	if err := s.CreateAdminSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdminSession(ctx, store.AdminSession{IDHash: []byte("s9"), OperatorID: "nope", CreatedAt: epoch, LastSeen: epoch, ExpiresAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateAdminSession(no operator) = %v, want ErrNotFound", err)
	}
	if err := s.TouchAdminSession(ctx, sess.IDHash, epoch.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReauthAdminSession(ctx, sess.IDHash, epoch.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	g, err := s.GetAdminSession(ctx, sess.IDHash)
	if err != nil || g.OperatorID != "op-1" || !g.LastSeen.Equal(epoch.Add(time.Minute)) || !g.ReauthAt.Equal(epoch.Add(2*time.Minute)) || g.Client != "c1" {
		t.Fatalf("GetAdminSession = %+v, %v", g, err)
	}
	if err := s.CreateAdminSession(ctx, store.AdminSession{IDHash: []byte("s2"), OperatorID: "op-1", CreatedAt: epoch, LastSeen: epoch, ExpiresAt: epoch.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneAdminSessions(ctx, epoch.Add(time.Hour)); n != 1 || err != nil {
		t.Fatalf("PruneAdminSessions = %d, %v", n, err)
	}
	if err := s.DeleteAdminSession(ctx, sess.IDHash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAdminSession(ctx, sess.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAdminSession(deleted) = %v", err)
	}

	// API tokens.
	tok := store.APIToken{ID: "tok-1", Hash: []byte("th1"), Prefix: "ptk_abc", Name: "ci", Role: "operator", Bots: []string{"bot-a"},
		CreatedBy: "op-1", CreatedAt: epoch, ExpiresAt: epoch.Add(24 * time.Hour)}
	if err := s.CreateAPIToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx, store.APIToken{ID: "tok-x", Hash: []byte("thx"), CreatedBy: "nope", CreatedAt: epoch, ExpiresAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateAPIToken(no operator) = %v, want ErrNotFound", err)
	}
	if g, err := s.APITokenByHash(ctx, []byte("th1")); err != nil || g.ID != "tok-1" || !slices.Equal(g.Bots, tok.Bots) || !g.RevokedAt.IsZero() {
		t.Fatalf("APITokenByHash = %+v, %v", g, err)
	}
	if err := s.TouchAPIToken(ctx, "tok-1", epoch.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, "tok-1", epoch.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, "tok-1", epoch.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetAPIToken(ctx, "tok-1"); !g.RevokedAt.Equal(epoch.Add(2*time.Minute)) || !g.LastUsedAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("after revoke: %+v", g)
	}
	if err := s.RevokeAPIToken(ctx, "nope", epoch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeAPIToken(missing) = %v", err)
	}
	if l, err := s.ListAPITokens(ctx, "op-2"); err != nil || len(l) != 0 {
		t.Fatalf("ListAPITokens(op-2) = %+v, %v", l, err)
	}
	if l, err := s.ListAPITokens(ctx, ""); err != nil || len(l) != 1 {
		t.Fatalf("ListAPITokens(all) = %+v, %v", l, err)
	}

	// Deleting an operator takes its sessions, tokens and recovery codes.
	if err := s.CreateAdminSession(ctx, store.AdminSession{IDHash: []byte("s3"), OperatorID: "op-1", CreatedAt: epoch, LastSeen: epoch, ExpiresAt: epoch.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOperator(ctx, "op-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAdminSession(ctx, []byte("s3")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a deleted operator: %v", err)
	}
	if _, err := s.APITokenByHash(ctx, []byte("th1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token of a deleted operator: %v", err)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, "op-1"); n != 0 {
		t.Fatalf("recovery codes of a deleted operator: %d", n)
	}
	if err := s.DeleteOperator(ctx, "op-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteOperator(missing) = %v", err)
	}
	testLastOwner(t, s)
}

// testLastOwner: the last usable owner cannot be demoted, scoped,
// disabled or deleted; concurrent demotions of two owners leave one.
func testLastOwner(t *testing.T, s store.Store) {
	ctx := context.Background()
	own := func(id, name string) store.Operator {
		o := store.Operator{ID: id, Name: name, Role: "owner", TOTPConfirmed: true, CreatedAt: epoch, UpdatedAt: epoch}
		if err := s.CreateOperator(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	a := own("own-a", "Owner A")
	for name, mod := range map[string]func(o *store.Operator){
		"demote":  func(o *store.Operator) { o.Role = "admin" },
		"scope":   func(o *store.Operator) { o.Bots = []string{"bot-a"} },
		"disable": func(o *store.Operator) { o.Disabled = true },
	} {
		o := a
		mod(&o)
		if err := s.UpdateOperator(ctx, o); !errors.Is(err, store.ErrLastOwner) {
			t.Fatalf("%s the last owner: %v, want ErrLastOwner", name, err)
		}
	}
	if err := s.DeleteOperator(ctx, a.ID); !errors.Is(err, store.ErrLastOwner) {
		t.Fatalf("delete the last owner: %v, want ErrLastOwner", err)
	}
	if g, _ := s.GetOperator(ctx, a.ID); g.Role != "owner" || g.Disabled || len(g.Bots) != 0 {
		t.Fatalf("refused changes changed %+v", g)
	}
	b := own("own-b", "Owner B")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, o := range []store.Operator{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.Role = "admin"
			errs[i] = s.UpdateOperator(ctx, o)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent demotions of the two owners: %v, %v; want exactly one refused", errs[0], errs[1])
	}
	// An unenrolled owner does not count; with none usable before, a
	// change is not refused (bootstrap clears half-enrolled owners).
	half := store.Operator{ID: "own-c", Name: "Owner C", Role: "owner", CreatedAt: epoch, UpdatedAt: epoch}
	if err := s.CreateOperator(ctx, half); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOperator(ctx, half.ID); err != nil {
		t.Fatalf("delete an unenrolled owner: %v", err)
	}
}
