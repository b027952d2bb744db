package adminapi_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

// A rotation with purgeRetired destroys key material, as the destroy
// route does; that route needs a recent re-authentication (and is never
// open to an API token), so the purge must need it too.
func TestRevRotatePurgeRetiredNeedsReauth(t *testing.T) {
	e := newEnv(t)
	e.withRetiredKey()
	body := map[string]any{"purpose": "log-pseudonym", "force": true, "purgeRetired": true}
	got := e.json("POST", admin.Prefix+"/keys/rotate", "owner", body)
	if got.status != 403 || got.errCode() != admin.CodeReauth {
		t.Fatalf("purge without re-authentication: %d %s, want 403 %s", got.status, got.body, admin.CodeReauth)
	}
	list := e.json("GET", admin.Prefix+"/keys?purpose=log-pseudonym", "owner", nil)
	var keys []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(list.body, &keys); err != nil {
		t.Fatalf("keys: %s", list.body)
	}
	i := slices.IndexFunc(keys, func(k struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}) bool {
		return k.ID == e.retiredKey
	})
	if i < 0 || keys[i].State == "destroyed" {
		t.Fatalf("retired key %s after a refused purge: %s", e.retiredKey, list.body)
	}
	// A plain rotation needs no re-authentication; a purge with it works.
	if got := e.json("POST", admin.Prefix+"/keys/rotate", "owner", map[string]any{"purpose": "log-pseudonym", "force": true}); got.status != 200 {
		t.Fatalf("plain rotation: %d %s", got.status, got.body)
	}
	if got := e.json("POST", admin.Prefix+"/keys/rotate", "owner:reauth", body); got.status != 200 {
		t.Fatalf("purge after re-authentication: %d %s", got.status, got.body)
	}
}
