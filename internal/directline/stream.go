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
	defer ws.CloseNow()
	ws.SetReadLimit(4096)
	a.serveStream(r.Context(), ws, id, after)
}

// writeTimeout bounds one frame write to a slow client.
const writeTimeout = 10 * time.Second

func (a *API) serveStream(ctx context.Context, ws *websocket.Conn, conv string, after int64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Reader: ignore the client's "" probes (and anything else); a close or
	// error ends the stream.
	go func() {
		defer cancel()
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	sub := a.log.Hub().Subscribe(conv)
	defer sub.Close()

	write := func(frame []byte) bool {
		wctx, wcancel := context.WithTimeout(ctx, writeTimeout)
		defer wcancel()
		return ws.Write(wctx, websocket.MessageText, frame) == nil
	}
	last := after
	// catchUp sends everything after last from the store.
	catchUp := func() bool {
		for {
			entries, err := a.log.Read(ctx, conv, last, pageSize)
			if err != nil {
				if ctx.Err() == nil {
					a.logger.Error("stream read failed", "conversation", conv, "err", err)
				}
				return false
			}
			if len(entries) == 0 {
				return true
			}
			last = entries[len(entries)-1].Seq
			if !write(activitySet(entries, conversation.FormatWatermark(last), true)) {
				return false
			}
			if len(entries) < pageSize {
				return true
			}
		}
	}
	if !catchUp() {
		return
	}
	keepAlive := time.NewTicker(a.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.done:
			_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case <-keepAlive.C:
			if !write([]byte{}) {
				return
			}
		case <-sub.Signal():
			events, lagged := sub.Take()
			if lagged {
				if !catchUp() {
					return
				}
				continue
			}
			for _, ev := range events {
				if ev.Update {
					if !write(activitySet(ev.Entries, "", true)) {
						return
					}
					continue
				}
				var fresh []conversation.Entry
				for _, e := range ev.Entries {
					if e.Seq > last {
						fresh = append(fresh, e)
					}
				}
				if len(fresh) == 0 {
					continue
				}
				if fresh[0].Seq != last+1 {
					// Appends finished out of order: fill the gap from the store.
					if !catchUp() {
						return
					}
					continue
				}
				last = fresh[len(fresh)-1].Seq
				if !write(activitySet(fresh, conversation.FormatWatermark(last), true)) {
					return
				}
			}
		}
	}
}
