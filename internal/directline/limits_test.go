package directline

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/guard"
)

// fixedWait is a Limiter that always answers the same wait.
type fixedWait time.Duration

func (f fixedWait) Allow(...guard.Bucket) time.Duration { return time.Duration(f) }

// A refusal is a 429 in the Direct Line error shape; Retry-After is whole
// seconds rounded up (never 0, which DirectLineJS and RFC clients would
// read as "now"), Retry-After-Ms the exact wait.
func TestLimitedAnswer(t *testing.T) {
	rule := guard.Rule{Name: "post/address", PerSecond: 1, Burst: 1}
	cases := []struct {
		wait    time.Duration
		sec, ms string
		refused bool
	}{
		{0, "", "", false},
		{time.Millisecond, "1", "1", true},
		{1500 * time.Millisecond, "2", "1500", true},
		{time.Minute, "60", "60000", true},
	}
	for _, c := range cases {
		a := &API{cfg: Config{Limiter: fixedWait(c.wait), RateLimits: map[Route]RouteLimits{RoutePost: {Address: rule, Scoped: rule}}}}
		for _, check := range []func(w *httptest.ResponseRecorder) bool{
			func(w *httptest.ResponseRecorder) bool {
				return a.allow(w, httptest.NewRequest("POST", "/", nil), RoutePost)
			},
			func(w *httptest.ResponseRecorder) bool {
				return a.allowIn(w, httptest.NewRequest("POST", "/", nil), RoutePost, "conv")
			},
		} {
			w := httptest.NewRecorder()
			if ok := check(w); ok == c.refused {
				t.Fatalf("wait %v: allowed=%v", c.wait, ok)
			}
			if !c.refused {
				if w.Code != 200 || w.Body.Len() != 0 {
					t.Fatalf("allowed request got an answer: %d %s", w.Code, w.Body)
				}
				continue
			}
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if w.Code != 429 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != "Throttled" {
				t.Fatalf("wait %v: %d %s", c.wait, w.Code, w.Body)
			}
			if w.Header().Get("Retry-After") != c.sec || w.Header().Get("Retry-After-Ms") != c.ms {
				t.Fatalf("wait %v: Retry-After %q, Retry-After-Ms %q; want %q, %q", c.wait, w.Header().Get("Retry-After"), w.Header().Get("Retry-After-Ms"), c.sec, c.ms)
			}
		}
	}
	// No limiter, or a rule that is off: everything passes.
	for _, a := range []*API{{}, {cfg: Config{Limiter: fixedWait(time.Hour)}}} {
		if !a.allow(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), RouteHistory) {
			t.Fatal("refused without a limit")
		}
	}
}

// Every 429 of the Direct Line API is the same answer, whether a rate limit
// or a per-client cap (open streams, history reads) refused the request:
// one error code for clients to act on, and the same Retry-After rounding.
func TestCapRefusalIsTheRateLimitAnswer(t *testing.T) {
	rule := guard.Rule{Name: "stream/address", PerSecond: 1, Burst: 1}
	a := &API{cfg: Config{Limiter: fixedWait(1500 * time.Millisecond), RateLimits: map[Route]RouteLimits{RouteStream: {Address: rule}}}}
	limited := httptest.NewRecorder()
	a.allow(limited, httptest.NewRequest("GET", "/", nil), RouteStream)
	capped := httptest.NewRecorder()
	throttled(capped, 1500*time.Millisecond, "too many open streams from this client")
	code := func(w *httptest.ResponseRecorder) string {
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return body.Error.Code
	}
	for _, h := range []string{"Retry-After", "Retry-After-Ms", "Cache-Control"} {
		if capped.Header().Get(h) != limited.Header().Get(h) {
			t.Errorf("%s: cap %q, rate limit %q", h, capped.Header().Get(h), limited.Header().Get(h))
		}
	}
	if capped.Code != limited.Code || code(capped) != code(limited) {
		t.Errorf("cap answers %d %q, rate limit %d %q", capped.Code, code(capped), limited.Code, code(limited))
	}
}
