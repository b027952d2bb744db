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

