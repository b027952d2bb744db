package server

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/guard"
)

// Connection phases (issue 9, finding 13): headers are bounded by
// http.Server.ReadHeaderTimeout, idle keep-alive by IdleTimeout, and each
// request body and response by deadlines sized for its route: the fixed
// timeouts.body plus the route's size limit at timeouts.min_client_rate.
// GET requests have no body deadline (net/http's background read would
// cancel the request when it passed); the WebSocket stream clears both
// deadlines before its upgrade and bounds each write itself.

// fileRoute reports whether a path moves files (uploads, attachment
// transfers), which get upload-sized deadlines.
func fileRoute(path string) bool {
	return strings.HasSuffix(path, "/upload") || strings.Contains(path, "/attachments")
}

// phaseBudget is the deadline for moving n bytes at the slowest client
// rate the configuration allows for.
func (s *Server) phaseBudget(n int64) time.Duration {
	to := s.cfg.Timeouts
	return time.Duration(to.Body) + time.Duration(n)*time.Second/time.Duration(to.MinClientRate)
}

// setDeadlines bounds the body read and the response write of r.
func (s *Server) setDeadlines(w http.ResponseWriter, r *http.Request) {
	dl := s.cfg.DirectLine
	n := int64(dl.MaxActivityBytes)
	if fileRoute(r.URL.Path) {
		n += dl.MaxUploadBytes + 64<<10
	}
	budget := s.phaseBudget(n)
	rc := http.NewResponseController(w)
	// The response may wait for the bot, then carries at most n bytes.
	_ = rc.SetWriteDeadline(time.Now().Add(2*budget + time.Duration(dl.BotWait)))
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	_ = rc.SetReadDeadline(time.Now().Add(budget))
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody lifts the read deadline once the body is read, so that
// net/http's background read (which cancels the request when it fails)
// does not time out while the handler waits for the bot.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}

// capListener refuses connections past max, and past perClient from one
// client address (an IPv4 address or an IPv6 /64, guard.AddrKey), so that
// one address can never take every connection. Connections from trusted
// proxies are not capped per address: behind a proxy every connection
// comes from it, and the per-client caps apply at the HTTP level, to the
// address from X-Forwarded-For. A refused connection is accepted and
// closed at once (the client sees it closed or reset before any response),
// counted by the limit that refused it, and logged at most once a minute
// per limit. A closed slot is reused by the next connection.
type capListener struct {
	net.Listener
	max       int
	perClient int
	// exempt reports whether a peer is not capped per address.
	exempt  func(netip.Addr) bool
	refused func(limit string)
	warn    func(limit string, open int, client string)

	mu     sync.Mutex
	open   int
	byAddr map[string]int
	last   map[string]time.Time
}

// Limits named in parley_connections_refused_total{limit} and in the log.
const (
	limitConnections          = "max_connections"
	limitConnectionsPerClient = "max_connections_per_client"
)

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := l.peerKey(c)
		limit, open := l.admit(key)
		if limit == "" {
			return &cappedConn{Conn: c, l: l, key: key}, nil
		}
		_ = c.Close()
		l.refused(limit)
		l.mu.Lock()
		warn := time.Since(l.last[limit]) > time.Minute
		if warn {
			l.last[limit] = time.Now()
		}
		l.mu.Unlock()
		if warn {
			l.warn(limit, open, key)
		}
	}
}

// peerKey is the per-address key of c's peer, or "" for a peer that is not
// capped per address (a trusted proxy, or a peer without an IP address).
func (l *capListener) peerKey(c net.Conn) string {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return ""
	}
	a := ap.Addr().Unmap().WithZone("")
	if l.exempt != nil && l.exempt(a) {
		return ""
	}
	return guard.AddrKey(a)
}

// admit takes a slot for a connection from key, or names the limit that
// refuses it with the count of connections it already holds.
func (l *capListener) admit(key string) (limit string, open int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return limitConnections, l.open
	}
	if key != "" && l.byAddr[key] >= l.perClient {
		return limitConnectionsPerClient, l.byAddr[key]
	}
	l.open++
	if key != "" {
		l.byAddr[key]++
	}
	return "", 0
}

func (l *capListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key == "" {
		return
	}
	if n := l.byAddr[key] - 1; n > 0 {
		l.byAddr[key] = n
	} else {
		delete(l.byAddr, key)
	}
}

type cappedConn struct {
	net.Conn
	l    *capListener
	key  string
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.Conn.Close()
}
