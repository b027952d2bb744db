package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

// consoleFileNames lists the embedded console files.
func consoleFileNames(t *testing.T) []string {
	t.Helper()
	var names []string
	err := fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, "console/"))
		}
		return err
	})
	if err != nil || len(names) == 0 {
		t.Fatalf("console files: %v %v", names, err)
	}
	return names
}

func readConsoleFile(t *testing.T, name string) string {
	t.Helper()
	b, err := consoleFiles.ReadFile("console/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestConsoleHeaders(t *testing.T) {
	h := Console()
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	cases := []struct {
		path, cache, ctype string
		status             int
	}{
		{"/", "no-store", "text/html; charset=utf-8", 200},
		{"/index.html", "no-store", "text/html; charset=utf-8", 200},
		{"/bots", "no-store", "text/html; charset=utf-8", 200},
		{"/dead-letters", "no-store", "text/html; charset=utf-8", 200},
		{"/app.js", "no-cache", "text/javascript; charset=utf-8", 200},
		{"/console.css", "no-cache", "text/css; charset=utf-8", 200},
		{"/missing.js", "no-store", "", 404},
		{"/admin/v2/bots", "no-store", "", 404},
		{"/admin/", "no-store", "", 302},
		{"/admin", "no-store", "", 302},
	}
	for _, c := range cases {
		res := get(t, h, "GET", c.path)
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.path, res.StatusCode, c.status)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != csp {
			t.Errorf("%s: CSP %q, want %q", c.path, got, csp)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", c.path, got)
		}
		if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", c.path, got)
		}
		if got := res.Header.Get("Cache-Control"); got != c.cache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		if c.ctype != "" && res.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, res.Header.Get("Content-Type"), c.ctype)
		}
	}
	if ConsoleCSP != csp {
		t.Errorf("ConsoleCSP = %q", ConsoleCSP)
	}
}

func TestConsoleMethodsAndRevalidation(t *testing.T) {
	h := Console()
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		res := get(t, h, m, "/")
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
	res := get(t, h, "HEAD", "/app.js")
	if res.StatusCode != 200 {
		t.Errorf("HEAD /app.js: %d", res.StatusCode)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on an asset")
	}
	res = get(t, h, "GET", "/app.js", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", res.StatusCode)
	}
	res = get(t, h, "GET", "/../console.go")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("/../console.go: %d", res.StatusCode)
	}
}

// No file of the console refers to anything outside its own origin: the
// CSP would block it, and the console must work with no network but the
// admin listener.
func TestConsoleNoExternalReferences(t *testing.T) {
	// The SVG namespace is a name, not a request.
	const svgNS = "http://www.w3.org/2000/svg"
	// Examples in help text use the reserved example names (RFC 6761),
	// which never resolve.
	example := regexp.MustCompile(`https://(www\.)?(example\.com|[a-z]+\.example)\b`)
	external := regexp.MustCompile(`(?i)\b(https?|ftp|wss?):\/\/|["'(=\s]\/\/[a-z0-9]|@import|url\(\s*["']?(https?:|\/\/)`)
	for _, name := range consoleFileNames(t) {
		body := example.ReplaceAllString(strings.ReplaceAll(readConsoleFile(t, name), svgNS, ""), "")
		for i, line := range strings.Split(body, "\n") {
			if loc := external.FindStringIndex(line); loc != nil {
				t.Errorf("%s:%d: external reference %q", name, i+1, strings.TrimSpace(line))
			}
		}
	}
	// Every src and href in the page is the console's own path, a fragment
	// or data:.
	page := readConsoleFile(t, "index.html")
	for _, m := range regexp.MustCompile(`\b(src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		u := m[2]
		if !(strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//")) && !strings.HasPrefix(u, "#") && !strings.HasPrefix(u, "data:") {
			t.Errorf("index.html: %s=%q is not the console's own", m[1], u)
		}
	}
	names := consoleFileNames(t)
	for _, m := range regexp.MustCompile(`\b(?:src|href)="/([a-z0-9-]+\.(?:js|css))"`).FindAllStringSubmatch(page, -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("index.html loads /%s, which is not embedded", m[1])
		}
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range regexp.MustCompile(`from '\./([a-z0-9-]+\.js)'`).FindAllStringSubmatch(readConsoleFile(t, name), -1) {
			if !slices.Contains(names, m[1]) {
				t.Errorf("%s imports ./%s, which is not embedded", name, m[1])
			}
		}
	}
}

// No inline script, inline event handler or inline style (the CSP would
// block them), and the scripts never write HTML from strings (every
// server value goes in as text).
func TestConsoleNoInlineCode(t *testing.T) {
	page := readConsoleFile(t, "index.html")
	for _, m := range regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], `src="/`) || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %q", m[0])
		}
	}
	for _, name := range consoleFileNames(t) {
		body := readConsoleFile(t, name)
		checks := map[string]*regexp.Regexp{
			"inline event handler": regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`),
			"inline style":         regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=|setAttribute\(\s*['"](style|on[a-z]+)['"]`),
			"javascript: URL":      regexp.MustCompile(`(?i)javascript:`),
		}
		if strings.HasSuffix(name, ".js") {
			checks["HTML from a string"] = regexp.MustCompile(`\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|\.on[a-z]+\s*=[^=]`)
		}
		for what, re := range checks {
			if loc := re.FindStringIndex(body); loc != nil {
				t.Errorf("%s: %s: %q", name, what, body[max(0, loc[0]-20):min(len(body), loc[1]+40)])
			}
		}
	}
}

// Every form control in the console has a label (or an aria-label), and
// the scripts make no controls of their own (so this check sees them all).
func TestConsoleLabels(t *testing.T) {
	page := readConsoleFile(t, "index.html")
	ids := map[string]int{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		ids[m[1]]++
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q is used %d times", id, n)
		}
	}
	controls := regexp.MustCompile(`(?s)<(input|select|textarea)\b([^>]*)>`).FindAllStringSubmatch(page, -1)
	if len(controls) < 20 {
		t.Fatalf("only %d form controls found: is the check still reading the page?", len(controls))
	}
	for _, m := range controls {
		attrs := m[2]
		if strings.Contains(attrs, `type="hidden"`) || strings.Contains(attrs, `aria-label="`) {
			continue
		}
		id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(attrs)
		if id == nil {
			t.Errorf("<%s%s> has no id, so no label", m[1], attrs)
			continue
		}
		if !strings.Contains(page, `<label for="`+id[1]+`"`) {
			t.Errorf("<%s id=%q> has no <label for>", m[1], id[1])
		}
		if !strings.Contains(attrs, `name="`) {
			t.Errorf("<%s id=%q> has no name", m[1], id[1])
		}
	}
	for _, name := range consoleFileNames(t) {
		if strings.HasSuffix(name, ".js") {
			if loc := regexp.MustCompile(`createElement\(\s*'(input|select|textarea)'|h\('(input|select|textarea)'`).FindStringIndex(readConsoleFile(t, name)); loc != nil {
				t.Errorf("%s makes a form control in script; put it in index.html with a label", name)
			}
		}
	}
}

// Every page is reachable: each navigation link has its page (a template
// and a function in pages.js), is served by the handler, and needs a real
// action; each page is linked (the public ones from the sign-in flow).
func TestConsolePagesReachable(t *testing.T) {
	h := Console()
	page := readConsoleFile(t, "index.html")
	scripts := readConsoleFile(t, "pages.js")
	templates := map[string]bool{}
	for _, m := range regexp.MustCompile(`<template id="page-([a-z-]+)">`).FindAllStringSubmatch(page, -1) {
		templates[m[1]] = true
	}
	fns := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  async (?:([a-z]+)|'([a-z-]+)')\(main`).FindAllStringSubmatch(scripts, -1) {
		fns[m[1]+m[2]] = true
	}
	linked := map[string]bool{"signin": true, "home": true} // signin: where app.js sends the signed-out; home: "/" (the brand link)
	if !strings.Contains(page, `href="/enroll"`) {
		t.Error("the sign-in page does not link to enrollment")
	} else {
		linked["enroll"] = true
	}
	known := admin.Actions()
	nav := regexp.MustCompile(`<a href="(/[a-z-]+)" data-link data-page="([a-z-]+)" data-action="([a-z.]+)">`).FindAllStringSubmatch(page, -1)
	if len(nav) < 10 {
		t.Fatalf("navigation has %d links", len(nav))
	}
	for _, m := range nav {
		href, name, action := m[1], m[2], m[3]
		linked[name] = true
		if href != "/"+name {
			t.Errorf("link %s goes to page %s", href, name)
		}
		if !templates[name] || !fns[name] {
			t.Errorf("page %s: template %v, function %v", name, templates[name], fns[name])
		}
		if !slices.Contains(known, admin.Action(action)) {
			t.Errorf("page %s needs %q, which is not an admin action", name, action)
		}
		res := get(t, h, "GET", href)
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || !strings.Contains(string(b), `id="page-`+name+`"`) {
			t.Errorf("GET %s: %d, not the console", href, res.StatusCode)
		}
	}
	for name := range templates {
		if !linked[name] {
			t.Errorf("page %s is linked from nowhere", name)
		}
		if !fns[name] {
			t.Errorf("page %s has no function in pages.js", name)
		}
	}
	// Forms that change something say which action they need, so the
	// console hides them from roles without it.
	for _, m := range regexp.MustCompile(`data-action="([a-z.]+)"`).FindAllStringSubmatch(page, -1) {
		if !slices.Contains(known, admin.Action(m[1])) {
			t.Errorf("data-action %q is not an admin action", m[1])
		}
	}
}

// roles.js (what the navigation hides) is the permission table of
// internal/admin, action by action and role by role.
func TestConsoleRolesMatchPermissions(t *testing.T) {
	js := readConsoleFile(t, "roles.js")
	rows := regexp.MustCompile(`(?m)^  '([a-z.]+)': \[([^\]]*)\],$`).FindAllStringSubmatch(js, -1)
	seen := map[admin.Action]bool{}
	for _, m := range rows {
		a := admin.Action(m[1])
		seen[a] = true
		var roles []admin.Role
		for _, r := range regexp.MustCompile(`'([a-z]+)'`).FindAllStringSubmatch(m[2], -1) {
			roles = append(roles, admin.Role(r[1]))
		}
		for _, r := range admin.Roles {
			if got, want := slices.Contains(roles, r), admin.Grants(r, a); got != want {
				t.Errorf("roles.js: %s for %s is %v, the permission table says %v", a, r, got, want)
			}
		}
	}
	for _, a := range admin.Actions() {
		if !seen[a] {
			t.Errorf("roles.js lacks %s", a)
		}
	}
	if len(seen) != len(admin.Actions()) {
		t.Errorf("roles.js has %d actions, the table %d", len(seen), len(admin.Actions()))
	}
}

// Every request the console makes is same-origin with the session cookie,
// and the API client sends the CSRF token on every state-changing one.
func TestConsoleFetchRules(t *testing.T) {
	call := regexp.MustCompile(`\bfetch\(([^;]*)`)
	n := 0
	for _, name := range consoleFileNames(t) {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range call.FindAllStringSubmatch(readConsoleFile(t, name), -1) {
			n++
			if !strings.Contains(m[1], "credentials: 'same-origin'") && !strings.Contains(m[1], "init)") {
				t.Errorf("%s: fetch(%s…) without credentials: 'same-origin'", name, m[1][:min(60, len(m[1]))])
			}
		}
	}
	if n == 0 {
		t.Fatal("no fetch call found: is the check still reading the scripts?")
	}
	api := readConsoleFile(t, "api.js")
	for _, want := range []string{
		"credentials: 'same-origin'",
		"if (method !== 'GET' && method !== 'HEAD') {\n    if (csrf) headers['X-CSRF-Token'] = csrf;",
		"res = await fetch(PREFIX + path, init);",
	} {
		if !strings.Contains(api, want) {
			t.Errorf("api.js lacks %q", want)
		}
	}
}
