package admin

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/permissions.md")

// TestPermissionDoc fails when docs/permissions.md is not what the
// permission table and the routes give; -update rewrites it.
func TestPermissionDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "permissions.md")
	want := PermissionDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./internal/admin -run TestPermissionDoc -update)", err)
	}
	if string(got) != want {
		t.Errorf("docs/permissions.md is stale: go test ./internal/admin -run TestPermissionDoc -update")
	}
}
