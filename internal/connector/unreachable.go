package connector

import (
	"errors"
	"net"
	"syscall"
)

// UnreachableError is a delivery attempt that could not reach the bot at
// all: its host name does not resolve, or nothing listens at its address.
// The item stays queued and is retried, but a client waiting for the
// outcome is told at once, with the reason, instead of waiting out
// directline.bot_wait for a timeout.
type UnreachableError struct{ Reason string }

func (e *UnreachableError) Error() string { return "the bot is unreachable: " + e.Reason }

// BotUnreachable gives the reason to callers that do not import this
// package (they declare the one-method interface).
func (e *UnreachableError) BotUnreachable() string { return e.Reason }

// unreachable recognizes an attempt that never reached the bot; the reason
// names no URL.
func unreachable(err error) *UnreachableError {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return &UnreachableError{Reason: "its host name does not resolve (check the bot's endpoint: parley bot list)"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &UnreachableError{Reason: "nothing accepts connections at its endpoint (is the bot running?)"}
	}
	return nil
}
