package testidp_test

import (
	"context"
	"encoding/json"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/testidp"
)

const importPath = "github.com/parley-gw/parley/internal/testidp"

// TestNotImportedByTheGateway: no non-test Go file of the module imports
// this package, except the e2e test command e2e/idp (whose import the
// walk must see, so the check is known to work).
func TestNotImportedByTheGateway(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	var importers []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == importPath {
				rel, _ := filepath.Rel(root, path)
				importers = append(importers, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked only %d Go files under %s", files, root)
	}
	sawE2E := false
	for _, f := range importers {
		if strings.HasPrefix(f, "e2e/") {
			sawE2E = sawE2E || f == "e2e/idp/main.go"
			continue
		}
		t.Errorf("%s imports %s, which is for tests only", f, importPath)
	}
	if !sawE2E {
		t.Errorf("the walk did not see e2e/idp/main.go import %s (importers: %v)", importPath, importers)
	}
}

// TestProvider: discovery, the login form refusing a wrong password, and
// a sign-in with the right one redirecting with a code.
func TestProvider(t *testing.T) {
	idp := testidp.Start(t, testidp.Options{ClientID: "c", ClientSecret: "s", RedirectURIs: []string{"https://app.example/cb"},
		User: "alice", Password: "pw"})
	c := idp.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(idp.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	_ = json.NewDecoder(res.Body).Decode(&disc)
	res.Body.Close()
	if disc["issuer"] != idp.URL || disc["issuer"] != idp.Issuer() || disc["token_endpoint"] != idp.URL+"/token" {
		t.Fatalf("discovery: %v", disc)
	}
	auth := idp.URL + "/auth?" + url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid"}, "state": {"state-long-enough"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}.Encode()
	for _, pw := range []string{"wrong", "pw"} {
		res, err = c.PostForm(auth, url.Values{"username": {"alice"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		switch {
		case pw == "wrong" && res.StatusCode != 200:
			t.Errorf("wrong password: %d", res.StatusCode)
		case pw == "pw" && (res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound || loc.Query().Get("code") == ""):
			t.Errorf("right password: %d %s", res.StatusCode, loc)
		}
	}
	if active, _ := idp.Introspect(context.Background(), "not-a-token"); active {
		t.Error("a made-up token is active")
	}
}
