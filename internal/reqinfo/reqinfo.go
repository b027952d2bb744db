// Package reqinfo carries what a handler learns about a request to the
// server's middleware, which logs and counts it when the request ends:
// the site the request was authenticated for, and whether it goes on
// after its handler returned (a WebSocket stream served by goroutines of
// its own). The middleware puts an Info in the request's context; handlers
// annotate it with SetSite and Hold.
package reqinfo

import (
	"context"
	"sync"
	"sync/atomic"
)

// Info is one request's annotations; safe for concurrent use (a stream's
// goroutines may annotate it).
type Info struct {
	site atomic.Pointer[string]

	mu       sync.Mutex
	held     bool   // Hold was called
	released bool   // ... and its release too
	finish   func() // the middleware's end of request, waiting for release
}

type key struct{}

// With returns ctx carrying a new Info, and that Info.
func With(ctx context.Context) (context.Context, *Info) {
	i := &Info{}
	return context.WithValue(ctx, key{}, i), i
}

// From returns ctx's Info, or nil.
func From(ctx context.Context) *Info {
	i, _ := ctx.Value(key{}).(*Info)
	return i
}

// SetSite records the site (its id) a request was authenticated for; a
// no-op when ctx carries no Info (a handler called outside the server).
func SetSite(ctx context.Context, site string) {
	if i := From(ctx); i != nil && site != "" {
		i.site.Store(&site)
	}
}

// Site is the site set on i, or "" (none, or i is nil).
func (i *Info) Site() string {
	if i == nil {
		return ""
	}
	if p := i.site.Load(); p != nil {
		return *p
	}
	return ""
}

// Hold tells the middleware that the request goes on after its handler
// returns (an upgraded WebSocket served by other goroutines): its end is
// when the returned release is called (once; later calls do nothing). A
// no-op when ctx carries no Info.
func Hold(ctx context.Context) (release func()) {
	i := From(ctx)
	if i == nil {
		return func() {}
	}
	i.mu.Lock()
	i.held = true
	i.mu.Unlock()
	return sync.OnceFunc(func() {
		i.mu.Lock()
		i.released = true
		f := i.finish
		i.finish = nil
		i.mu.Unlock()
		if f != nil {
			f()
		}
	})
}

// Finish runs f at the request's end: now, or when a Hold is released if
// the handler held the request (the middleware calls it when the handler
// returns).
func (i *Info) Finish(f func()) {
	i.mu.Lock()
	if i.held && !i.released {
		i.finish = f
		i.mu.Unlock()
		return
	}
	i.mu.Unlock()
	f()
}
