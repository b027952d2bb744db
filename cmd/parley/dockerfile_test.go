package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
)

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	cmd  string // upper case: FROM, RUN, USER...
	args string
}

// dockerStages splits a Dockerfile into its stages (each starts at FROM).
func dockerStages(t *testing.T, text string) [][]dockerInstr {
	t.Helper()
	var stages [][]dockerInstr
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			return
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func find(stage []dockerInstr, cmd string) []string {
	var out []string
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// jsonArgs parses an exec-form instruction (["a", "b"]).
func jsonArgs(t *testing.T, what, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("Dockerfile %s %s: not the exec (JSON) form: %v", what, s, err)
	}
	return v
}

// TestDockerfileConsistent checks the Dockerfile against go.mod, the
// configuration and what the README promises of the image (CI has no
// Docker engine to build it).
func TestDockerfileConsistent(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerStages(t, string(b))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a final one", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// The build stage uses go.mod's Go version.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)\s*$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	goVersion := string(m[1])
	from := find(build, "FROM")[0]
	image, _, _ := strings.Cut(from, " ")
	if !regexp.MustCompile(`^golang:` + regexp.QuoteMeta(goVersion) + `(-[a-z0-9.]+)?$`).MatchString(image) {
		t.Errorf("build stage FROM %s, want golang:%s (go.mod)", image, goVersion)
	}
	stageName := ""
	if f := strings.Fields(from); len(f) == 3 && strings.EqualFold(f[1], "AS") {
		stageName = f[2]
	} else {
		t.Errorf("build stage FROM %q has no AS name", from)
	}

	// A static, reproducible build of ./cmd/parley with the version linked in.
	var goBuild string
	for _, r := range find(build, "RUN") {
		if strings.Contains(r, "go build") {
			goBuild = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/parley", "-X main.version=", "-s -w"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("build stage's go build %q lacks %s", goBuild, want)
		}
	}
	if strings.Contains(goBuild, "-tags pkcs11") {
		t.Error("the static image cannot hold the PKCS#11 (cgo) variant")
	}

	// The final stage: no toolchain, binary from the build stage.
	base, _, _ := strings.Cut(find(final, "FROM")[0], " ")
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want scratch or distroless/static", base)
	}
	copied := false
	for _, c := range find(final, "COPY") {
		if strings.Contains(c, "--from="+stageName) && strings.HasSuffix(c, " /parley") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("final stage does not COPY --from=%s ... /parley", stageName)
	}
	if len(find(final, "RUN")) > 0 {
		t.Error("final stage has RUN: it needs a shell, which a static image has not")
	}

	// Non-root, by number.
	users := find(final, "USER")
	if len(users) == 0 {
		t.Fatal("final stage has no USER: it would run as root")
	}
	uid, gid, _ := strings.Cut(users[len(users)-1], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final USER %q: want a numeric uid other than 0", users[len(users)-1])
	}
	if gid != "" {
		if n, err := strconv.Atoi(gid); err != nil || n == 0 {
			t.Errorf("final USER %q: want a numeric gid other than 0", users[len(users)-1])
		}
	}

	// Data on a volume, where the configuration puts it.
	sample, err := config.Load("../../parley.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parley.yaml: %v", err)
	}
	vols := find(final, "VOLUME")
	if len(vols) != 1 {
		t.Fatalf("final stage VOLUME = %q, want one", vols)
	}
	vol := jsonArgs(t, "VOLUME", vols[0])
	if !slices.Equal(vol, []string{config.Default().DataDir}) || sample.DataDir != config.Default().DataDir {
		t.Errorf("VOLUME %v, want [%s] = default data_dir = parley.yaml's data_dir (%s)", vol, config.Default().DataDir, sample.DataDir)
	}
	owned := false
	for _, c := range find(final, "COPY") {
		if strings.Contains(c, "--chown="+users[len(users)-1]) && strings.HasSuffix(c, " "+vol[0]) {
			owned = true
		}
	}
	if !owned {
		t.Errorf("the volume's directory %s is not made by a COPY --chown=%s: a new volume would be owned by root", vol[0], users[len(users)-1])
	}

	// How it starts.
	ep := find(final, "ENTRYPOINT")
	if len(ep) != 1 || !slices.Equal(jsonArgs(t, "ENTRYPOINT", ep[0]), []string{"/parley"}) {
		t.Errorf("ENTRYPOINT = %q, want [\"/parley\"]", ep)
	}
	cmd := find(final, "CMD")
	if len(cmd) != 1 {
		t.Fatalf("CMD = %q", cmd)
	}
	if args := jsonArgs(t, "CMD", cmd[0]); len(args) != 3 || args[0] != "serve" || args[1] != "--config" {
		t.Errorf("CMD = %v, want [serve --config <file>]", args)
	}
	if !strings.Contains(string(b), "--read-only") || !strings.Contains(string(b), "-v parley-data:"+vol[0]) {
		t.Error("the Dockerfile's comment does not show docker run --read-only with the data volume")
	}
}

// TestDockerfileIgnore checks that the build context leaves out what is
// big, local or secret.
func TestDockerfileIgnore(t *testing.T) {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(".dockerignore is missing: the build context would hold node_modules and local data")
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.TrimPrefix(l, "/"))
		}
	}
	for _, want := range []string{"**/node_modules", "e2e/screenshots", "e2e/.certs", "parley-data", "data", "*.db", "master.key", ".git"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
