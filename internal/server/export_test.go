package server

import "github.com/parley-gw/parley/internal/conversation"

// Codec is the storage codec the server writes with (tests that fill a
// conversation directly through the store use it).
func (s *Server) Codec() conversation.Codec { return s.codec }
