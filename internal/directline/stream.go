package directline

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/identity"
)

// stream: GET /conversations/{id}/stream?watermark=&t= (WebSocket).
// The t credential is a 60-second stream token for this conversation only;
// it is checked at the upgrade, as is the Origin.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
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
	if e := checkOrigin(r, site, c); e != nil {
		a.refuseOrigin(w, r, e)
		return
	}
	conv, err := a.st.GetConversation(r.Context(), id)
	if err != nil || conv.SiteID != c.Site || conv.UserID != c.User {
		a.fail(w, r, errf(http.StatusNotFound, "BadArgument", "Conversation not found"))
		return
	}
	after := *c.Watermark
	if wm := q.Get("watermark"); wm != "-" {
		if after, err = conversation.ParseWatermark(wm); err != nil {
			a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "%v", err))
			return
		}
	}
	// Origin was checked above against the conversation's trusted origins.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept has answered the client
	}
	ws.SetReadLimit(4096)
	// Subscribe, then replay the backlog here; the long-lived part runs in
	// fresh goroutines so that an idle stream holds neither the request nor
	// the deep stack the replay needed.
	st := &streamState{api: a, ws: ws, conv: id, last: after}
	st.sub = a.log.Hub().Subscribe(id)
	if !st.catchUp(a.base) {
		st.sub.Close()
		ws.CloseNow()
		return
	}
	a.streams.Add(1)
	go func() {
		defer a.streams.Done()
		defer ws.CloseNow()
		defer st.sub.Close()
		st.live(a.base)
	}()
}

// streamState is one open stream.
type streamState struct {
	api  *API
	ws   *websocket.Conn
	conv string
	sub  *conversation.Sub
	last int64 // watermark of the last activity sent
}

func (s *streamState) write(ctx context.Context, frame []byte) bool {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return s.ws.Write(wctx, websocket.MessageText, frame) == nil
}

// catchUp sends everything after the last watermark from the store.
func (s *streamState) catchUp(ctx context.Context) bool {
	for {
		entries, err := s.api.log.Read(ctx, s.conv, s.last, pageSize)
		if err != nil {
			if ctx.Err() == nil {
				s.api.logger.Error("stream read failed", "conversation", s.conv, "err", err)
			}
			return false
		}
		if len(entries) == 0 {
			return true
		}
		s.last = entries[len(entries)-1].Seq
		if !s.write(ctx, activitySet(entries, conversation.FormatWatermark(s.last), true)) {
			return false
		}
		if len(entries) < pageSize {
			return true
		}
	}
}

// live pushes new activities until the client leaves or the server stops.
func (s *streamState) live(base context.Context) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	// Reader: ignore the client's "" probes (and anything else); a close or
	// error ends the stream.
	go func() {
		defer cancel()
		for {
			if _, _, err := s.ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	keepAlive := time.NewTicker(s.api.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			if base.Err() != nil {
				_ = s.ws.Close(websocket.StatusGoingAway, "server shutting down")
			}
			return
		case <-keepAlive.C:
			if !s.write(ctx, []byte{}) {
				return
			}
		case <-s.sub.Signal():
			if !s.deliver(ctx) {
				return
			}
		}
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
			if !s.write(ctx, activitySet(ev.Entries, "", true)) {
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
		s.last = fresh[len(fresh)-1].Seq
		if !s.write(ctx, activitySet(fresh, conversation.FormatWatermark(s.last), true)) {
			return false
		}
	}
	return true
}

// writeTimeout bounds one frame write to a slow client.
const writeTimeout = 10 * time.Second
