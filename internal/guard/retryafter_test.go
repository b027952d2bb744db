package guard

import (
	"net/http"
	"testing"
	"time"
)

func TestSetRetryAfterRoundsUpNeverZero(t *testing.T) {
	for wait, want := range map[time.Duration]string{
		-time.Second: "1", 0: "1", time.Millisecond: "1", time.Second: "1",
		1500 * time.Millisecond: "2", time.Minute: "60",
	} {
		h := http.Header{}
		SetRetryAfter(h, wait)
		if got := h.Get("Retry-After"); got != want {
			t.Errorf("wait %v: Retry-After %q, want %q", wait, got, want)
		}
	}
}
