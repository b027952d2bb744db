package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	out, _, err := run(t, nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "parley ") || !strings.Contains(out, "commit ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version = %q, want the version, a commit line and %s", out, runtime.Version())
	}
	out, _, err = run(t, nil, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info buildInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version --json = %q: %v", out, err)
	}
	if info.Version == "" || info.GoVersion != runtime.Version() {
		t.Fatalf("version --json = %+v", info)
	}
	if _, _, err := run(t, nil, "version", "extra"); err == nil {
		t.Fatal("version with an argument: accepted")
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}
	for name, c := range map[string]struct {
		linked string
		bi     *debug.BuildInfo
		ok     bool
		want   buildInfo
	}{
		"go install module@version": {"(devel)", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}, true,
			buildInfo{Version: "v1.4.0", GoVersion: "go1.26.8"}},
		"go build in a checkout": {"(devel)", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs}, true,
			buildInfo{Version: "(devel)", Commit: "0123abcd", Modified: true, GoVersion: "go1.26.8"}},
		"ldflags win over the module version": {"v2.0.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: vcs[:1]}, true,
			buildInfo{Version: "v2.0.0", Commit: "0123abcd", GoVersion: "go1.26.8"}},
		"no build info": {"(devel)", nil, false,
			buildInfo{Version: "(devel)", GoVersion: runtime.Version()}},
	} {
		if got := readBuildInfo(c.linked, c.bi, c.ok); got != c.want {
			t.Errorf("%s: %+v, want %+v", name, got, c.want)
		}
	}
	s := buildInfo{Version: "v1", Commit: "abc", Modified: true, GoVersion: "go1.26.8"}.String()
	if !strings.Contains(s, "parley v1") || !strings.Contains(s, "commit abc (modified)") || !strings.Contains(s, "go1.26.8") {
		t.Fatalf("String() = %q", s)
	}
}

// TestVersionLdflags builds the binary as the Dockerfile does and checks
// that -X main.version reaches `parley version` (a renamed variable would
// silently leave "(devel)").
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "parley")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v9.8.7-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info buildInfo
	if err := json.Unmarshal(out, &info); err != nil || info.Version != "v9.8.7-test" {
		t.Fatalf("version --json = %q (%v), want version v9.8.7-test", out, err)
	}
}
