package directline

import (
	"context"
	"sync"
	"time"
)

// Preflight policy (issue 9, finding 11). A preflight carries no token, so
// it is granted to an origin that some site could accept:
//   - an origin in any site's static trusted list;
//   - an origin bound into a token this process issued (sites without a
//     static list take their origins from tokens/generate), until the token
//     expires;
//   - any origin while some site has enhanced authentication off and no
//     static list, since that site accepts every origin anyway.
//
// The request itself is still checked against its own site's list.
type preflightOrigins struct {
	mu     sync.Mutex
	at     time.Time // when static was loaded
	static map[string]bool
	anyOK  bool                 // a site accepts any origin
	issued map[string]time.Time // origin -> latest token expiry
	swept  time.Time
}

// maxIssuedOrigins bounds the origins remembered from tokens.
const maxIssuedOrigins = 100_000

// rememberOrigins records origins bound into a token valid until exp.
func (a *API) rememberOrigins(origins []string, exp time.Time) {
	if len(origins) == 0 {
		return
	}
	p := &a.preflight
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.issued == nil {
		p.issued = map[string]time.Time{}
	}
	now := time.Now()
	if now.Sub(p.swept) > time.Minute || len(p.issued) >= maxIssuedOrigins {
		for o, e := range p.issued {
			if !e.After(now) {
				delete(p.issued, o)
			}
		}
		p.swept = now
	}
	for _, o := range origins {
		if _, known := p.issued[o]; !known && len(p.issued) >= maxIssuedOrigins {
			continue
		}
		if exp.After(p.issued[o]) {
			p.issued[o] = exp
		}
	}
}

// preflightAllowed reports whether a preflight from origin (normalized)
// is granted.
func (a *API) preflightAllowed(ctx context.Context, origin string) bool {
	p := &a.preflight
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.static == nil || now.Sub(p.at) >= siteCacheTTL {
		sites, err := a.st.ListSites(ctx, "")
		if err != nil {
			a.logger.Error("list sites for preflight", "err", err)
			if p.static == nil {
				return false
			}
		} else {
			static, anyOK := map[string]bool{}, false
			for _, s := range sites {
				for _, o := range s.TrustedOrigins {
					static[o] = true
				}
				if !s.EnhancedAuth && len(s.TrustedOrigins) == 0 {
					anyOK = true
				}
			}
			p.static, p.anyOK, p.at = static, anyOK, now
		}
	}
	if p.anyOK || p.static[origin] {
		return true
	}
	return p.issued[origin].After(now)
}
