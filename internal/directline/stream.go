package directline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/reqinfo"
)

// stream: GET /conversations/{id}/stream?watermark=&t= (WebSocket).
// The t credential is a 60-second stream token for this conversation only;
// it is checked at the upgrade, as is the Origin.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteStream) {
		return
	}
	id := r.PathValue("id")
	q := r.URL.Query()
	t := q.Get("t")
	if t == "" {
		a.fail(w, r, errf(http.StatusUnauthorized, "BadArgument", "Missing stream token"))
		return
	}
	c, err := a.issuer.Verify(t, identity.ScopeStream)
	if errors.Is(err, identity.ErrTokenExpired) {
		a.fail(w, r, errf(http.StatusForbidden, "TokenExpired", "Token expired"))
		return
	}
	if err != nil || c.Conv != id || c.Watermark == nil {
		a.fail(w, r, errf(http.StatusForbidden, "BadArgument", "Invalid stream token"))
		return
	}
	site, err := a.site(r.Context(), c.Site)
	if err != nil || site.BotID != c.Bot {
		a.fail(w, r, errf(http.StatusForbidden, "BadArgument", "Invalid stream token"))
		return
	}
	reqinfo.SetSite(r.Context(), site.ID) // for the access log and the streams by site
	if e := checkOrigin(r, site, c); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	conv, err := a.st.GetConversation(r.Context(), id)
	if err != nil || conv.SiteID != c.Site || conv.UserID != c.User {
		a.fail(w, r, errf(http.StatusNotFound, "BadArgument", "Conversation not found"))
		return
	}
	if !a.allowIn(w, r, RouteStream, id) {
		return
	}
	after := *c.Watermark
	if wm := q.Get("watermark"); wm != "-" {
		if after, err = conversation.ParseWatermark(wm); err != nil {
			a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "%v", err))
			return
		}
	}
	// Every refusal from here on is in the protocol's shape, before the
	// upgrade (the library would answer in plain text).
	if e := handshakeError(w, r); e != nil {
		a.fail(w, r, e)
		return
	}
	addr := a.clientAddr(r)
	if !a.streamClients.claim(addr) {
		throttled(w, 5*time.Second, "too many open streams from this client")
		return
	}
	claimed := true
	defer func() {
		if claimed {
			a.streamClients.unclaim(addr)
		}
	}()
	// The credential opens one socket: a client that needs another asks
	// GET /conversations/{id} for a fresh stream URL. It is remembered as
	// long as Verify accepts it: its exp plus the leeway.
	if c.ID == "" || c.Expiry == nil || !a.tickets.Use(c.ID, c.Expiry.Time().Add(identity.Leeway)) {
		a.fail(w, r, errf(http.StatusForbidden, "BadArgument", "Stream URL already used; get a new one from GET /conversations/{id}"))
		return
	}
	// The handler counts as a stream goroutine from here, so that shutdown
	// waits for its replay before the store closes.
	if !a.streamSet.enter(a) {
		a.fail(w, r, errf(http.StatusServiceUnavailable, "ServiceError", "Server shutting down"))
		return
	}
	defer a.streams.Done()
	// The request's read and write deadlines must not cut the socket; its
	// writes have their own deadlines.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// Origin was checked above against the conversation's trusted origins.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept has answered the client
	}
	ws.SetReadLimit(4096)
	// Subscribe, then replay the backlog here. The stream starts out owned
	// by this goroutine (running), so what is published meanwhile waits.
	st := &streamState{api: a, ws: ws, conv: id, last: after, running: true, addr: addr}
	claimed = false // the stream's reader gives it back
	defer func() {
		if !st.reading {
			a.streamClients.unclaim(addr)
		}
	}()
	st.sub = a.log.Hub().Subscribe(id, st.kick)
	if !st.catchUp(a.writeCtx) {
		st.sub.Close()
		ws.CloseNow()
		return
	}
	if !a.streamSet.add(st) {
		st.sub.Close()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	// An idle stream holds one goroutine: the reader, which must run for
	// the close handshake and the client's probes. Writes (new activities,
	// keep-alives) run on short-lived goroutines, one at a time per stream.
	st.reading = true
	st.ended = reqinfo.Hold(r.Context()) // the access log line is written when the stream ends
	go st.read()
	st.release()
}

// streamState is one open stream.
type streamState struct {
	api  *API
	ws   *websocket.Conn
	conv string
	sub  *conversation.Sub
	last int64 // watermark of the last activity sent; owned by the writer
	addr netip.Addr
	// reading: the reader goroutine owns the per-client claim (set by the
	// handler before it starts the reader).
	reading bool
	ended   func() // tells the server's middleware the stream ended

	lastWrite atomic.Int64 // unix nanoseconds of the last frame written

	mu      sync.Mutex
	running bool // a goroutine owns the writing side
	pending bool // activities are queued on the subscription
	ping    bool // a keep-alive is due
	closed  bool
}

// read consumes client frames (the "" probes and anything else) until the
// client leaves, the connection fails, or the server closes it.
func (s *streamState) read() {
	defer s.api.streams.Done()
	for {
		// A context without Done: the connection's own close ends the read.
		if _, _, err := s.ws.Read(context.Background()); err != nil {
			break
		}
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.sub.Close()
	s.api.streamSet.remove(s)
	s.ws.CloseNow()
	s.api.streamClients.unclaim(s.addr)
	if s.ended != nil {
		s.ended()
	}
}

// kick asks for a write: queued activities, or a keep-alive if ping.
func (s *streamState) kick() { s.want(false) }

func (s *streamState) want(ping bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ping {
		s.ping = true
	} else {
		s.pending = true
	}
	if s.running || s.closed {
		return
	}
	s.running = true
	// The reader's count on streams is held until closed is set, so this
	// Add never races with WaitStreams at zero.
	s.api.streams.Add(1)
	go s.run()
}

// release gives up the writing side, or starts a writer if work arrived.
func (s *streamState) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if (s.pending || s.ping) && !s.closed {
		s.api.streams.Add(1)
		go s.run()
		return
	}
	s.running = false
}

// run writes until nothing is wanted.
func (s *streamState) run() {
	defer s.api.streams.Done()
	ctx := s.api.writeCtx
	for {
		s.mu.Lock()
		pending, ping := s.pending, s.ping
		s.pending, s.ping = false, false
		if s.closed || (!pending && !ping) {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		ok := true
		if pending {
			ok = s.deliver(ctx)
		} else {
			ok = s.write(ctx, []byte{})
		}
		if !ok {
			s.mu.Lock()
			s.closed, s.running = true, false
			s.mu.Unlock()
			s.ws.CloseNow() // the reader sees it and cleans up
			return
		}
	}
}

func (s *streamState) write(ctx context.Context, frame []byte) bool {
	wctx, cancel := context.WithTimeout(ctx, s.api.writeBudget(len(frame)))
	defer cancel()
	if s.ws.Write(wctx, websocket.MessageText, frame) != nil {
		return false
	}
	s.lastWrite.Store(time.Now().UnixNano())
	return true
}

// writeEntries sends entries as frames of at most maxSetBytes each; with
// wm, each frame carries its own watermark (its last activity), so a
// client that reconnects after any frame resumes exactly there.
func (s *streamState) writeEntries(ctx context.Context, entries []conversation.Entry, wm bool) bool {
	for len(entries) > 0 {
		n, size := 0, setTail+16
		for n < len(entries) {
			add := len(entries[n].JSON) + 1
			if n > 0 && size+add > maxSetBytes {
				break
			}
			size += add
			n++
		}
		frame := entries[:n]
		entries = entries[n:]
		mark := ""
		if wm {
			s.last = frame[n-1].Seq
			mark = conversation.FormatWatermark(s.last)
		}
		if !s.writeSet(ctx, frame, mark, size) {
			return false
		}
	}
	return true
}

// writeSet streams one ActivitySet frame to the socket without building
// it in memory, within a deadline sized for a slow client.
func (s *streamState) writeSet(ctx context.Context, entries []conversation.Entry, wm string, size int) bool {
	wctx, cancel := context.WithTimeout(ctx, s.api.writeBudget(size))
	defer cancel()
	if size <= smallFrame {
		// Most frames (live activities) are small: built in a pooled
		// buffer and sent as one WebSocket frame in one write. A streamed
		// message would cost a second frame (the final empty fragment)
		// and a 32 KiB buffer per frame.
		buf, _ := s.api.frames.Get().(*bytes.Buffer)
		if buf == nil {
			buf = bytes.NewBuffer(make([]byte, 0, 4<<10))
		}
		defer s.api.frames.Put(buf)
		buf.Reset()
		sw := &setWriter{w: buf, stream: true}
		for _, e := range entries {
			sw.add(e)
		}
		if sw.finish(wm) != nil || s.ws.Write(wctx, websocket.MessageText, buf.Bytes()) != nil {
			return false
		}
		s.lastWrite.Store(time.Now().UnixNano())
		return true
	}
	wr, err := s.ws.Writer(wctx, websocket.MessageText)
	if err != nil {
		return false
	}
	bw := bufio.NewWriterSize(wr, 32<<10)
	sw := &setWriter{w: bw, stream: true}
	for _, e := range entries {
		sw.add(e)
	}
	if sw.finish(wm) != nil || bw.Flush() != nil || wr.Close() != nil {
		return false
	}
	s.lastWrite.Store(time.Now().UnixNano())
	return true
}

// smallFrame is the largest frame built whole before it is sent (pooled
// buffers of about this size; larger frames are streamed).
const smallFrame = 64 << 10

// catchUp sends everything after the last watermark from the store, one
// chunk at a time: a stream holds at most one chunk, and replays share
// the global read slots with history reads.
func (s *streamState) catchUp(ctx context.Context) bool {
	for {
		// Nothing (more) to replay, as for a new stream on a fresh
		// conversation or one that is up to date: no read slot is taken,
		// so busy slots never keep such a stream from opening.
		if head, err := s.api.st.Head(ctx, s.conv); err == nil && head <= s.last {
			return true
		}
		// A replay counts as a history read of its client, so that one
		// address's never-reading sockets cannot hold every slot.
		if !s.api.reads.claimWait(ctx, s.addr, historyQueueWait) {
			return false // busy: the client reconnects and resumes
		}
		if !s.api.reads.acquireSlot(ctx, historyQueueWait) {
			s.api.reads.unclaim(s.addr)
			return false
		}
		entries, err := s.api.readChunk(ctx, s.conv, s.last, pageSize)
		ok := err == nil && (len(entries) == 0 || s.writeEntries(ctx, entries, true))
		s.api.reads.releaseSlot()
		s.api.reads.unclaim(s.addr)
		if err != nil {
			if ctx.Err() == nil {
				s.api.logger.Error("stream read failed", "conversation", s.conv, "err", err)
			}
			return false
		}
		if !ok {
			return false
		}
		if len(entries) == 0 {
			return true
		}
	}
}

// streamSet is the open streams, for keep-alives and shutdown.
type streamSet struct {
	mu      sync.Mutex
	m       map[*streamState]struct{}
	closing bool
}

// enter counts a stream handler; false once the server is closing.
func (a *streamSet) enter(api *API) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return false
	}
	api.streams.Add(1)
	return true
}

// add registers s and counts its reader; false once the server is closing.
func (a *streamSet) add(s *streamState) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return false
	}
	if a.m == nil {
		a.m = map[*streamState]struct{}{}
	}
	a.m[s] = struct{}{}
	s.api.streams.Add(1)
	return true
}

func (a *streamSet) remove(s *streamState) {
	a.mu.Lock()
	delete(a.m, s)
	a.mu.Unlock()
}

func (a *streamSet) snapshot() []*streamState {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*streamState, 0, len(a.m))
	for s := range a.m {
		out = append(out, s)
	}
	return out
}

// keepAlives sends an empty frame on every stream that has been silent for
// half the keep-alive interval, so no stream is silent longer than the
// interval. One goroutine for all streams.
func (a *API) keepAlives() {
	every := a.cfg.KeepAlive / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-a.base.Done():
			return
		case now := <-t.C:
			limit := now.Add(-every).UnixNano()
			open := a.streamSet.snapshot()
			for _, s := range open {
				if s.lastWrite.Load() <= limit {
					s.want(true)
				}
			}
			a.endGone(a.base, open)
		}
	}
}

// goneOverlap: each round lists the deletions of the last minute again,
// so a deletion committed after the previous round with an earlier
// deletion time (the deleting process took that time before its commit)
// is still seen. maxGoneListed bounds one round's list.
const (
	goneOverlap   = time.Minute
	maxGoneListed = 100_000
)

// endGone ends the streams whose conversation was deleted by another
// process (the CLI: 'parley erase', 'site delete', 'bot delete') since
// the previous round: one query for the recent tombstones, whatever the
// number of open streams. Deletions made by this server end their streams
// at once (EndConversation). A failed query keeps every stream.
func (a *API) endGone(ctx context.Context, open []*streamState) {
	now := time.Now()
	since := a.goneSince
	if len(open) == 0 {
		a.goneSince = now.Add(-goneOverlap)
		return
	}
	ids, err := a.st.DeletedConversations(ctx, since, maxGoneListed)
	if err != nil {
		if ctx.Err() == nil { // not the shutdown
			a.logger.Warn("list deleted conversations for open streams", "err", err)
		}
		return
	}
	a.goneSince = now.Add(-goneOverlap)
	if len(ids) == 0 {
		return
	}
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	for _, s := range open {
		if gone[s.conv] {
			s.end()
		}
	}
}

// EndConversation ends the open streams of conversation conv at once (the
// server calls it when it erases conv). It returns how many it ended.
func (a *API) EndConversation(conv string) int {
	n := 0
	for _, s := range a.streamSet.snapshot() {
		if s.conv == conv {
			s.end()
			n++
		}
	}
	return n
}

// end stops writing to s and closes it with a normal close frame whose
// reason says the conversation ended: nothing more of it is sent, and a
// client that reconnects is told the conversation is not found.
func (s *streamState) end() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		go func() { _ = s.ws.Close(websocket.StatusNormalClosure, "conversation ended") }()
	}
}

// closeStreams ends every open stream with a close frame (going away), and
// refuses new ones. Idempotent.
func (a *API) closeStreams() {
	a.streamSet.mu.Lock()
	a.streamSet.closing = true
	a.streamSet.mu.Unlock()
	for _, s := range a.streamSet.snapshot() {
		go func() { _ = s.ws.Close(websocket.StatusGoingAway, "server shutting down") }()
	}
}

// deliver sends what the subscription queued, filling gaps from the store.
func (s *streamState) deliver(ctx context.Context) bool {
	events, lagged := s.sub.Take()
	if lagged {
		return s.catchUp(ctx)
	}
	for _, ev := range events {
		if ev.Update {
			if !s.writeEntries(ctx, ev.Entries, false) {
				return false
			}
			continue
		}
		var fresh []conversation.Entry
		for _, e := range ev.Entries {
			if e.Seq > s.last {
				fresh = append(fresh, e)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		if fresh[0].Seq != s.last+1 {
			// Appends finished out of order: fill the gap from the store.
			if !s.catchUp(ctx) {
				return false
			}
			continue
		}
		if !s.writeEntries(ctx, fresh, true) {
			return false
		}
	}
	return true
}
