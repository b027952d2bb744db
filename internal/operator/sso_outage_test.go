package operator_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/operator"
	"github.com/parley-gw/parley/internal/store"
)

// providerNet routes Parley's calls to the SSO provider: to the provider
// (up), to a closed port (down: connection refused), or to a listener
// that accepts and never answers (hung).
type providerNet struct {
	mode             atomic.Int32 // 0 up, 1 down, 2 hung
	downAddr, hungAt string
}

const (
	netUp int32 = iota
	netDown
	netHung
)

func newProviderNet(t *testing.T) *providerNet {
	t.Helper()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := closed.Addr().String()
	closed.Close()
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			held.Lock()
			conns = append(conns, c) // never read, never answered
			held.Unlock()
		}
	}()
	t.Cleanup(func() {
		hung.Close()
		held.Lock()
		for _, c := range conns {
			c.Close()
		}
		held.Unlock()
	})
	return &providerNet{downAddr: down, hungAt: hung.Addr().String()}
}

func (p *providerNet) client(base *http.Client) *http.Client {
	tr := base.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // each call dials: the mode applies at once
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch p.mode.Load() {
		case netDown:
			addr = p.downAddr
		case netHung:
			addr = p.hungAt
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

// An SSO provider that is down, then hangs, then comes back: meanwhile
// each sign-in answers 503 with what to do, within the provider timeout
// and never queued behind another sign-in's attempt; once it is back, the
// next sign-in works. A provider that goes away between the start and the
// callback gives a 503 and an audited failure, not a session.
func TestSSOProviderDownThenBack(t *testing.T) {
	const timeout = time.Second
	var idp *ssoIdP
	pn := newProviderNet(t)
	h := newHarness(t, func(h *harness) {
		h.clock.t = time.Now()
		idp = newSSOIdP(t, h.srv.URL+admin.Prefix+"/sso/callback")
		h.httpClient = pn.client(idp.Client())
		h.settings.SSO.Timeout = config.Duration(timeout)
		h.settings.SSO.Issuer, h.settings.SSO.ClientID, h.settings.SSO.ClientSecret = idp.URL, ssoClientID, ssoSecret
		h.settings.SSO.RedirectURL = h.srv.URL + admin.Prefix + "/sso/callback"
	})
	now := h.clock.Now()
	if err := h.st.CreateOperator(t.Context(), store.Operator{ID: "op_sso", Name: "alice", Role: "auditor", SSOSubject: "sub-alice", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	plain := noRedirects()
	start := func() (*http.Response, string) {
		t.Helper()
		res, err := plain.Get(h.srv.URL + admin.Prefix + "/sso/login")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := res.Body.Read(buf)
		b.Write(buf[:n])
		return res, b.String()
	}
	wantUnavailable := func(what string, res *http.Response, body string) {
		t.Helper()
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) ||
			!strings.Contains(body, "cannot be reached") || !strings.Contains(body, "name, password and code") || res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %s (Retry-After %q), want 503 unavailable saying what to do", what, res.StatusCode, body, res.Header.Get("Retry-After"))
		}
	}

	pn.mode.Store(netDown)
	res, body := start()
	wantUnavailable("provider down", res, body)
	if !strings.Contains(h.logs.String(), "cannot be reached") {
		t.Errorf("the log does not say why: %s", h.logs.String())
	}

	// Hung: two sign-ins at once each give up after the timeout; they do
	// not wait for each other (serialized, the pair would take 2 s).
	pn.mode.Store(netHung)
	began := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			res, body := start()
			wantUnavailable("provider hung", res, body)
		})
	}
	wg.Wait()
	if took := time.Since(began); took >= 2*timeout {
		t.Errorf("two sign-ins against a hung provider took %v: they queued (timeout %v)", took, timeout)
	} else {
		t.Logf("two sign-ins against a hung provider: %v (timeout %v)", took.Round(time.Millisecond), timeout)
	}

	// Back: signed in.
	pn.mode.Store(netUp)
	res, cookie := ssoSignIn(t, h, idp, false)
	if res.StatusCode != http.StatusFound || cookie == "" {
		t.Fatalf("provider back: %d, cookie %v", res.StatusCode, cookie != "")
	}

	// Gone between the start and the callback: 503, audited, no session.
	state, callback := ssoToCallback(t, h, idp)
	pn.mode.Store(netDown)
	req, _ := http.NewRequest("GET", callback, nil)
	req.AddCookie(state)
	back, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _ := back.Body.Read(buf)
	back.Body.Close()
	wantUnavailable("provider gone at the callback", back, string(buf[:n]))
	for _, c := range back.Cookies() {
		if c.Name == operator.CookieLoopback && c.Value != "" {
			t.Fatal("a session without the provider's confirmation")
		}
	}
	if f := h.rec.find("session.sso", audit.Failure); len(f) != 1 || f[0].Detail["reason"] != "provider unreachable" {
		t.Fatalf("audit: %+v", f)
	}
}
