package server

import (
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/directline"
	"github.com/parley-gw/parley/internal/guard"
)

// rateLimits turns the validated configuration into the Direct Line rules.
func rateLimits(l config.Limits) map[directline.Route]directline.RouteLimits {
	rule := func(route directline.Route, scope string, r config.Rate) guard.Rule {
		perSecond, burst, _ := r.Parse() // validated at load
		return guard.Rule{Name: string(route) + "/" + scope, PerSecond: perSecond, Burst: burst}
	}
	site := func(route directline.Route, s config.SiteScoped) directline.RouteLimits {
		return directline.RouteLimits{Address: rule(route, "address", s.Address), Scoped: rule(route, "site", s.Site)}
	}
	conv := func(route directline.Route, c config.ConversationScoped) directline.RouteLimits {
		return directline.RouteLimits{Address: rule(route, "address", c.Address), Scoped: rule(route, "conversation", c.Conversation)}
	}
	return map[directline.Route]directline.RouteLimits{
		directline.RouteGenerate:  site(directline.RouteGenerate, l.Generate),
		directline.RouteStart:     site(directline.RouteStart, l.Start),
		directline.RouteRefresh:   conv(directline.RouteRefresh, l.Refresh),
		directline.RoutePost:      conv(directline.RoutePost, l.Post),
		directline.RouteUpload:    conv(directline.RouteUpload, l.Upload),
		directline.RouteStream:    conv(directline.RouteStream, l.Stream),
		directline.RouteReconnect: conv(directline.RouteReconnect, l.Reconnect),
		directline.RouteHistory:   conv(directline.RouteHistory, l.History),
	}
}

// Limiter is the Direct Line rate limiter (tests set its clock).
func (s *Server) Limiter() *guard.Memory { return s.limiter }
