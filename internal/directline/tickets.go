package directline

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// StreamTickets remembers which stream credentials have opened a socket, so
// that each stream URL opens exactly one (issue 9, finding 12). A client
// that needs another socket asks GET /conversations/{id} for a fresh URL,
// as the official clients do on every reconnect. The in-memory set is per
// process; a shared store can implement this to make it cluster-wide.
type StreamTickets interface {
	// Use records the credential id, valid until exp. It reports false if
	// the id was already used.
	Use(id string, exp time.Time) bool
}

// memoryTickets is the in-process StreamTickets. An entry lives until its
// credential expires (60 s by default), so the set holds at most the
// stream URLs used within one credential lifetime.
type memoryTickets struct {
	mu        sync.Mutex
	used      map[string]time.Time
	now       func() time.Time
	lastSweep time.Time
}

// NewMemoryTickets returns an empty in-memory ticket set.
func NewMemoryTickets() StreamTickets {
	return &memoryTickets{used: map[string]time.Time{}, now: time.Now}
}

func (m *memoryTickets) Use(id string, exp time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.lastSweep) > 10*time.Second {
		for k, e := range m.used {
			if !e.After(now) {
				delete(m.used, k)
			}
		}
		m.lastSweep = now
	}
	if e, ok := m.used[id]; ok && e.After(now) {
		return false
	}
	m.used[id] = exp
	return true
}

// Len is the number of remembered credentials (for tests).
func (m *memoryTickets) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.used)
}

// handshakeError checks the WebSocket upgrade request the way the
// WebSocket library would, so that a bad one is answered in the Direct Line
// error shape rather than the library's plain text.
func handshakeError(w http.ResponseWriter, r *http.Request) *apiError {
	if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) {
		return errf(http.StatusBadRequest, "BadArgument", "the stream is a WebSocket: send an HTTP/1.1 GET upgrade request")
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return errf(http.StatusUpgradeRequired, "BadArgument", "the stream is a WebSocket: the request must carry Connection: Upgrade and Upgrade: websocket")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errf(http.StatusBadRequest, "BadArgument", "unsupported WebSocket version (want 13)")
	}
	// As the library checks it: one key, 16 bytes in base64 (RFC 6455).
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return errf(http.StatusBadRequest, "BadArgument", "missing or repeated Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return errf(http.StatusBadRequest, "BadArgument", "invalid Sec-WebSocket-Key (want 16 bytes in base64)")
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
