package server

import (
	"context"
	"crypto/x509"
	"net/http"
)

// TrustWebhookRoots makes the alert webhooks trust roots (a test receiver's
// certificate) as well as nothing else: the SSRF guard stays.
func (s *Server) TrustWebhookRoots(roots *x509.CertPool) {
	s.threat.client.Transport.(*http.Transport).TLSClientConfig.RootCAs = roots
}

// ThreatTick flushes the failure counts and checks the alert rules now.
func (s *Server) ThreatTick(ctx context.Context) { s.threat.det.Tick(ctx) }
