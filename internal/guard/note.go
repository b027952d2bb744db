package guard

import (
	"context"
	"net/http"
	"sync"
)

// Note is what the handlers learned about one request's failure, for the
// threat detector that watches every 401, 403 and 429 answer
// (internal/threat): the surface and reason AuthFailures recorded, and the
// site once the caller's credential named one. The detector puts an empty
// Note in the request's context (WithNote) and reads it after the answer.
type Note struct {
	mu                    sync.Mutex
	surface, reason, site string
}

type noteKey struct{}

// WithNote returns r with an empty Note in its context, and the Note.
func WithNote(r *http.Request) (*http.Request, *Note) {
	n := &Note{}
	return n.Attach(r), n
}

// Attach returns r with n (which must be empty) in its context: for a
// caller that allocates n with its own state.
func (n *Note) Attach(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), noteKey{}, n))
}

func noteOf(r *http.Request) *Note {
	n, _ := r.Context().Value(noteKey{}).(*Note)
	return n
}

// NoteSite records that r's credential belongs to site (a request without
// a Note is left alone).
func NoteSite(r *http.Request, site string) {
	if n := noteOf(r); n != nil {
		n.mu.Lock()
		n.site = site
		n.mu.Unlock()
	}
}

// NoteFailure records r's failure surface and reason (what AuthFailures
// records; handlers that only refuse may call it directly).
func NoteFailure(r *http.Request, surface, reason string) {
	if n := noteOf(r); n != nil {
		n.mu.Lock()
		n.surface, n.reason = surface, reason
		n.mu.Unlock()
	}
}

// Get reads the Note.
func (n *Note) Get() (surface, reason, site string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.surface, n.reason, n.site
}
