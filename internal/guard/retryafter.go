package guard

import (
	"net/http"
	"strconv"
	"time"
)

// SetRetryAfter sets Retry-After to wait in whole seconds, rounded up and
// never 0 (RFC 9110; 0 would read as "now"). Every edge's throttled
// answer uses it, so all agree on the rounding.
func SetRetryAfter(h http.Header, wait time.Duration) {
	wait = max(wait, time.Millisecond)
	h.Set("Retry-After", strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
}
