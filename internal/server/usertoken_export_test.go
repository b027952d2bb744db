package server

import (
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/usertoken"
)

// UserTokens is the user token service (tests point its HTTP client at
// a test identity provider's CA).
func (s *Server) UserTokens() *usertoken.Service { return s.userTokens }

// Envelope seals under the gateway's data keys (tests seal a
// connection's client secret as the CLI does).
func (s *Server) Envelope() *keyring.Envelope { return s.envelope }
