package admin

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// changeVerbs are the operations that change something: an unrecorded
// one answers "the change was made".
var changeVerbs = map[string]bool{"create": true, "update": true, "delete": true, "set_origins": true, "set": true,
	"rotate_secret": true, "rotate": true, "rewrap": true, "revoke": true, "redeliver": true, "erase": true, "drop": true,
	"destroy": true}

// Every operation's verb is either a read or a change: a new verb must be
// placed, or an unrecorded read would claim a change (HTTPStatus).
func TestEveryVerbIsAReadOrAChange(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	verb := regexp.MustCompile(`s\.op\(p, \w+, "([a-z_]+)"`)
	var seen int
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range verb.FindAllStringSubmatch(string(src), -1) {
			seen++
			if readVerbs[m[1]] == changeVerbs[m[1]] {
				t.Errorf("%s: verb %q is in neither or both of readVerbs and changeVerbs", f, m[1])
			}
		}
	}
	if seen < 30 {
		t.Fatalf("found %d operations; the pattern no longer matches how they are made", seen)
	}
	for v := range readVerbs {
		if changeVerbs[v] {
			t.Errorf("verb %q is both", v)
		}
	}
	// The two verbs made at run time (destroyKey).
	for _, v := range []string{"plan_destroy", "destroy"} {
		if readVerbs[v] == changeVerbs[v] {
			t.Errorf("verb %q is in neither or both", v)
		}
	}
}
