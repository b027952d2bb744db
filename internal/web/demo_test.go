package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// page fetches the demo page of d served by a real HTTP server.
func servePage(t *testing.T, d *Demo) (*httptest.Server, *http.Response, string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if d.Origin == "" {
		d.Origin = srv.URL
	}
	d.Log = slog.New(slog.DiscardHandler)
	d.Register(mux)
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return srv, res, string(b)
}

var scriptTag = regexp.MustCompile(`<script[^>]*>`)

// checkScripts: every script of the page is the bundle or carries the
// page's nonce, which is the CSP's; the CSP allows exactly the bundle.
func checkScripts(t *testing.T, res *http.Response, page, bundleURL string) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)' (\S+);`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("CSP script-src is not a nonce and one source: %q", csp)
	}
	if m[2] != bundleURL {
		t.Errorf("CSP allows script from %q, want exactly %q", m[2], bundleURL)
	}
	if strings.Contains(csp, "unsafe-inline' ;") || strings.Contains(strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0], "unsafe") {
		t.Errorf("script-src allows unsafe sources: %q", csp)
	}
	for _, d := range []string{"frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP lacks %s: %q", d, csp)
		}
	}
	tags := scriptTag.FindAllString(page, -1)
	if len(tags) != 3 {
		t.Fatalf("want 3 scripts (error hook, bundle, start), got %q", tags)
	}
	for _, tag := range tags {
		if strings.Contains(tag, `id="webchat-script"`) {
			if !strings.Contains(tag, `src="`+bundleURL+`"`) {
				t.Errorf("bundle tag %q does not load %q", tag, bundleURL)
			}
			continue
		}
		if !strings.Contains(tag, `nonce="`+m[1]+`"`) {
			t.Errorf("inline script %q lacks the CSP's nonce", tag)
		}
	}
	// A fresh nonce on every load.
	res2, err := http.Get(res.Request.URL.String())
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.Header.Get("Content-Security-Policy") == csp {
		t.Error("the nonce is the same on two loads")
	}
}

func TestPageLoadsThePinnedBundleWithItsIntegrity(t *testing.T) {
	_, res, page := servePage(t, &Demo{WebChatURL: PinnedWebChatURL, WebChatIntegrity: PinnedWebChatIntegrity})
	if strings.Contains(PinnedWebChatURL, "latest") || !strings.Contains(PinnedWebChatURL, "/"+PinnedWebChatVersion+"/") {
		t.Fatalf("the default bundle is not pinned to a version: %s", PinnedWebChatURL)
	}
	want := `<script id="webchat-script" src="` + PinnedWebChatURL + `" integrity="` + PinnedWebChatIntegrity + `" crossorigin="anonymous"></script>`
	if !strings.Contains(page, want) {
		t.Fatalf("no %s in the page:\n%s", want, page)
	}
	checkScripts(t, res, page, PinnedWebChatURL)
	// The fix-it message is in the page, hidden until the script fails.
	for _, s := range []string{`id="webchat-help" role="alert" hidden`, "--webchat-file node_modules/botframework-webchat/dist/webchat.js", "--webchat-url", "botframework-webchat@" + PinnedWebChatVersion} {
		if !strings.Contains(page, s) {
			t.Errorf("the page does not say %q", s)
		}
	}
}

func TestPageWithAnotherURLAndNoIntegrity(t *testing.T) {
	u := "https://static.example.com/chat/webchat.js?v=3"
	_, res, page := servePage(t, &Demo{WebChatURL: u})
	if strings.Contains(page, "integrity=") || strings.Contains(page, "crossorigin") {
		t.Fatalf("integrity attribute without a hash given:\n%s", page)
	}
	// The CSP carries no query (a source expression cannot).
	checkScripts(t, res, strings.ReplaceAll(page, "?v=3", ""), "https://static.example.com/chat/webchat.js")
}

func TestLocalBundleRoute(t *testing.T) {
	bundle := []byte("window.WebChat = {};\n")
	d := &Demo{WebChatURL: PinnedWebChatURL, WebChatBundle: bundle, WebChatIntegrity: Integrity(bundle)}
	srv, res, page := servePage(t, d)
	local := srv.URL + BundlePath
	if !strings.Contains(page, `src="`+local+`" integrity="`+Integrity(bundle)+`"`) || strings.Contains(page, "cdn.botframework.com/botframework-webchat/4") {
		t.Fatalf("the page does not load the local bundle with its hash:\n%s", page)
	}
	checkScripts(t, res, page, local)
	r, err := http.Get(local)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(body) != string(bundle) || r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("GET %s = %d %q %q", BundlePath, r.StatusCode, r.Header.Get("Content-Type"), body)
	}
	// Without a local bundle there is no such route.
	srv2, _, _ := servePage(t, &Demo{WebChatURL: PinnedWebChatURL})
	if r, err := http.Get(srv2.URL + BundlePath); err != nil || r.StatusCode != 404 {
		t.Fatalf("GET %s without --webchat-file = %v %v", BundlePath, r.StatusCode, err)
	}
}

// Integrity is what openssl computes, the SRI recipe.
func TestIntegrityMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	f := filepath.Join(t.TempDir(), "webchat.js")
	b := []byte("console.log('x');\n")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", "openssl dgst -sha384 -binary "+f+" | openssl base64 -A").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha384-" + strings.TrimSpace(string(out)); Integrity(b) != want {
		t.Fatalf("Integrity = %s, openssl %s", Integrity(b), want)
	}
	if !MatchesIntegrity(b, Integrity(b)) || MatchesIntegrity(append(b, ' '), Integrity(b)) {
		t.Fatal("MatchesIntegrity")
	}
}

// The pinned version is the one the e2e tests install, and the pinned hash
// is that npm package's dist/webchat.js (when e2e/node_modules exists).
func TestPinnedBundleIsTheE2EOne(t *testing.T) {
	raw, err := os.ReadFile("../../e2e/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	if v := pkg.Dependencies["botframework-webchat"]; v != PinnedWebChatVersion {
		t.Fatalf("e2e uses botframework-webchat %q, the demo pins %q: change both together (and PinnedWebChatIntegrity)", v, PinnedWebChatVersion)
	}
	b, err := os.ReadFile("../../e2e/node_modules/botframework-webchat/dist/webchat.js")
	if os.IsNotExist(err) {
		t.Skip("e2e/node_modules not installed (cd e2e && npm ci --ignore-scripts): the hash is not checked")
	} else if err != nil {
		t.Fatal(err)
	}
	if Integrity(b) != PinnedWebChatIntegrity {
		t.Fatalf("PinnedWebChatIntegrity = %s, but the npm bundle's is %s", PinnedWebChatIntegrity, Integrity(b))
	}
}

func TestCheckIntegrity(t *testing.T) {
	good := Integrity([]byte("x"))
	if err := CheckIntegrity(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "sha384", "md5-abc", "sha384-" + strings.Repeat("A", 10), "SHA384-" + good[7:], good + " sha256-x", "sha384-" + good[7:] + "AAAA"} {
		if err := CheckIntegrity(bad); err == nil || !strings.Contains(err.Error(), "--webchat-integrity") {
			t.Errorf("CheckIntegrity(%q) = %v", bad, err)
		}
	}
}

func TestCheckWebChatURL(t *testing.T) {
	for _, ok := range []string{PinnedWebChatURL, "http://127.0.0.1:9/webchat.js", "http://localhost/webchat.js", "https://x.example/a/webchat.js?v=1"} {
		if err := CheckWebChatURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"webchat.js", "/demo/webchat.js", "http://cdn.example.com/webchat.js", "ftp://x/webchat.js", "javascript:alert(1)",
		"https://u:p@x.example/webchat.js", "https://x.example/a;script-src *", "https://x.example/a,b", "https://x.example/'unsafe-inline'", "https://x.example/w.js#f"} {
		if err := CheckWebChatURL(bad); err == nil || !strings.Contains(err.Error(), "--webchat-url") {
			t.Errorf("CheckWebChatURL(%q) = %v", bad, err)
		}
	}
}

func TestLoadBundleErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.js")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ path, want string }{
		"missing":   {filepath.Join(dir, "nope.js"), "no such file"},
		"directory": {dir, "is not a regular file"},
		"empty":     {empty, "is empty"},
	} {
		_, err := LoadBundle(c.path)
		if err == nil || !strings.Contains(err.Error(), "--webchat-file") || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "npm install botframework-webchat@"+PinnedWebChatVersion) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The demo page opened under another name of the same loopback listener
// (localhost instead of 127.0.0.1) is sent to the one origin the gateway
// trusts: under the other name the bundle (same-origin resource policy)
// and the Direct Line calls (trusted origin) were refused, and the page
// stayed blank.
func TestPageUnderAnotherHostNameRedirectsToTheOrigin(t *testing.T) {
	srv, _, _ := servePage(t, &Demo{WebChatURL: PinnedWebChatURL, WebChatIntegrity: PinnedWebChatIntegrity})
	u, _ := url.Parse(srv.URL)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "localhost:" + u.Port()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || res.Header.Get("Location") != srv.URL+"/" {
		t.Fatalf("GET / as localhost: %d Location %q; want 307 to %s/", res.StatusCode, res.Header.Get("Location"), srv.URL)
	}
}
