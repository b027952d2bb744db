package adminapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/audit"
)

// revocable is an auditor's credential that can be revoked, or whose
// operator's request limit can be spent.
type revocable struct{ revoked, limited atomic.Bool }

func (a *revocable) Authenticate(*http.Request) (admin.Principal, error) {
	if a.revoked.Load() {
		return admin.Principal{}, errors.New("revoked")
	}
	if a.limited.Load() {
		return admin.Principal{}, fmt.Errorf("authenticate: %w", retryErr(time.Second))
	}
	return admin.Principal{Kind: admin.KindToken, ID: "tok", Role: admin.RoleAuditor}, nil
}

func (a *revocable) Reauthenticated(admin.Principal) bool { return false }

// endless follows: one entry a tick until the request ends.
type endless struct{}

func (endless) Entries(context.Context, int64, int) ([]audit.Entry, error) { return nil, nil }

func (endless) Export(ctx context.Context, w io.Writer, _ int64, follow bool) error {
	for i := 1; ; i++ {
		if _, err := fmt.Fprintf(w, "{\"seq\":%d}\n", i); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A followed export streams for as long as the client keeps the
// connection: it must end when the credential that opened it is revoked
// (token revoked or expired, session signed out or expired, operator
// disabled or demoted), not outlive it.
func TestRevFollowedExportEndsWhenTheCredentialDoes(t *testing.T) {
	auth := &revocable{}
	resp := followExport(t, auth, 50*time.Millisecond)
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatal("no first line")
	}
	auth.revoked.Store(true)
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the followed export still streams 3 s after its credential was revoked")
	}
}

// A spent request limit is not a revocation: the followed export goes on
// while its operator's other requests are refused, and still ends when
// the credential is revoked.
func TestFollowedExportOutlivesARateLimit(t *testing.T) {
	auth := &revocable{}
	resp := followExport(t, auth, 20*time.Millisecond)
	lines := make(chan struct{}, 1000)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- struct{}{}
		}
		close(lines)
	}()
	<-lines
	auth.limited.Store(true)
	// Ten rechecks while limited; the stream keeps coming.
	deadline := time.After(200 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case _, ok := <-lines:
			if !ok {
				t.Fatal("the followed export ended when its operator's request limit was spent")
			}
		case <-deadline:
			waiting = false
		}
	}
	auth.revoked.Store(true)
	end := time.After(3 * time.Second)
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return
			}
		case <-end:
			t.Fatal("the followed export still streams 3 s after its credential was revoked")
		}
	}
}

// followExport opens a followed export with auth's credential on an API
// that checks it every recheck; the body is closed when the test ends.
func followExport(t *testing.T, auth adminapi.Authenticator, recheck time.Duration) *http.Response {
	t.Helper()
	srv := httptest.NewServer(adminapi.New(adminapi.Config{Auth: auth, Audit: endless{}, RecheckEvery: recheck}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+admin.Prefix+"/audit/export?follow=1", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	return resp
}
