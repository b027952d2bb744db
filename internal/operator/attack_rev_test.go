package operator_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
)

// The bootstrap code printed at start (to stderr: often a shared log)
// must stop working once an owner exists, also when that owner enrolled
// with another code (an owner invite made with the CLI).
func TestRevBootstrapCodeDiesWhenAnOwnerEnrolls(t *testing.T) {
	h := newHarness(t)
	boot := h.bootstrapCode()
	code, _, err := h.svc.Invite(context.Background(), admin.Principal{Kind: admin.KindLocal, ID: "root", Role: admin.RoleOwner},
		admin.RoleOwner, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = append(h.secrets, code)
	h.enroll(code, "alice", "violet kettle marching sideways")
	r := h.do(&client{}, "POST", "/enroll", map[string]string{"code": boot, "name": "mallory", "password": "granite puzzle whistle evening"})
	h.want(r, 401, "unauthenticated")
}

// Inviting an owner hands out every right, including the routes that
// need a recent re-authentication (the new owner can re-authenticate
// and demote or remove the others): it needs one too, so a stolen
// session cookie or an owner API token cannot mint a full owner.
func TestRevOwnerInviteNeedsReauth(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "owner"}), 403, "reauth_required")
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "owner", "name": "sso-owner", "sso_subject": "sub-1"}), 403, "reauth_required")
	// An owner API token: never re-authenticated.
	r := h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci"})
	h.want(r, 201, "")
	tok := r.body["token"].(string)
	h.secrets = append(h.secrets, tok)
	h.want(h.do(&client{bearer: tok}, "POST", "/operators", map[string]any{"role": "owner"}), 403, "reauth_required")
	// Lesser roles need no re-authentication; an owner after it does.
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "admin"}), 200, "")
	h.reauth(owner)
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "owner"}), 200, "")
}
