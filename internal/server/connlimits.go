package server

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// capListener refuses connections past max: they are accepted and closed
// at once (the client sees the connection reset or closed before any
// response), counted, and logged at most once a minute. A closed slot is
// reused by the next connection.
type capListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused *atomic.Int64
	warn    func(open int64)
	lastMu  sync.Mutex
	last    time.Time
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); n > l.max {
			l.open.Add(-1)
			l.refused.Add(1)
			_ = c.Close()
			l.lastMu.Lock()
			if time.Since(l.last) > time.Minute {
				l.last = time.Now()
				l.lastMu.Unlock()
				l.warn(n - 1)
			} else {
				l.lastMu.Unlock()
			}
			continue
		}
		return &cappedConn{Conn: c, l: l}, nil
	}
}

type cappedConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
