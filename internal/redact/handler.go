package redact

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
)

// Handler is a slog.Handler that redacts every record before the handler
// it wraps sees it: the message, every attribute key and string value,
// group names, errors' text, the values of slog.LogValuer and any other
// value (formatted with %+v, then redacted) at any depth of groups.
// Attributes whose key names a user id or a client address (see
// PseudonymizedKeys) and values made by User and Client are replaced by
// their pseudonyms, or by a placeholder when the handler has no key.
type Handler struct {
	inner slog.Handler
	ps    *Pseudonymizer
	// addrsInMessage pseudonymizes IP addresses written in the message
	// itself (net/http's server error log: "TLS handshake error from
	// 203.0.113.7:5555: EOF").
	addrsInMessage bool
}

// NewHandler wraps inner; ps may be nil (no pseudonym key yet).
func NewHandler(inner slog.Handler, ps *Pseudonymizer) *Handler {
	if h, ok := inner.(*Handler); ok {
		inner = h.inner
	}
	return &Handler{inner: inner, ps: ps}
}

// WithPseudonymizer returns h redacting with ps: h itself with ps swapped
// in when it is a redacting handler already (attributes it was given
// earlier stay as they were redacted then), else h wrapped.
func WithPseudonymizer(h slog.Handler, ps *Pseudonymizer) slog.Handler {
	if r, ok := h.(*Handler); ok {
		return &Handler{inner: r.inner, ps: ps, addrsInMessage: r.addrsInMessage}
	}
	return NewHandler(h, ps)
}

// AddrsInMessage returns h also pseudonymizing IP addresses (with or
// without a port) written in record messages, for loggers that put the
// client's address in their text (http.Server's ErrorLog).
func AddrsInMessage(h slog.Handler) slog.Handler {
	r, ok := h.(*Handler)
	if !ok {
		r = NewHandler(h, nil)
	}
	return &Handler{inner: r.inner, ps: r.ps, addrsInMessage: true}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	msg := r.Message
	if h.addrsInMessage {
		msg = h.addrs(msg)
	}
	nr := slog.NewRecord(r.Time, r.Level, String(msg), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.attr(a, notPseudo, 0))
		return true
	})
	return h.inner.Handle(ctx, nr)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for k, a := range as {
		out[k] = h.attr(a, notPseudo, 0)
	}
	return &Handler{inner: h.inner.WithAttrs(out), ps: h.ps, addrsInMessage: h.addrsInMessage}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(String(name)), ps: h.ps, addrsInMessage: h.addrsInMessage}
}

// maxDepth bounds group nesting (and LogValuer chains) followed.
const maxDepth = 16

func (h *Handler) attr(a slog.Attr, pk pseudoKind, depth int) slog.Attr {
	if a.Value.Kind() == slog.KindLogValuer { // Kind first: Any boxes other kinds
		if p, ok := a.Value.Any().(Pseudo); ok {
			return slog.String(String(a.Key), h.pseudonym(p.kind, p.v))
		}
	}
	if k := kindOfKey(a.Key); k != notPseudo {
		pk = k
	}
	key := String(a.Key)
	v := a.Value.Resolve()
	if pk != notPseudo && v.Kind() != slog.KindGroup {
		return slog.String(key, h.pseudonym(pk, valueText(v)))
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(key, String(v.String()))
	case slog.KindGroup:
		if depth >= maxDepth {
			return slog.String(key, "[too deep]")
		}
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for k, ga := range g {
			out[k] = h.attr(ga, pk, depth+1)
		}
		return slog.Attr{Key: key, Value: slog.GroupValue(out...)}
	case slog.KindInt64:
		if n := v.Int64(); n > 999_999_999_999 || n < -999_999_999_999 { // 13 digits or more: a card number?
			if s := strconv.FormatInt(n, 10); String(s) != s {
				return slog.String(key, String(s))
			}
		}
	case slog.KindUint64:
		if n := v.Uint64(); n > 999_999_999_999 {
			if s := strconv.FormatUint(n, 10); String(s) != s {
				return slog.String(key, String(s))
			}
		}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case nil:
			return slog.Attr{Key: key, Value: v}
		case []string:
			out := make([]string, len(x))
			for k, s := range x {
				out[k] = String(s)
			}
			return slog.Any(key, out)
		default:
			return slog.String(key, String(valueText(v)))
		}
	}
	return slog.Attr{Key: key, Value: v}
}

// valueText is a value as text: an error's message, else %+v. A value
// whose Error or String method panics (a typed nil pointer) shows as
// "[unprintable]".
func valueText(v slog.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = "[unprintable]"
		}
	}()
	if v.Kind() != slog.KindAny {
		return v.String()
	}
	switch x := v.Any().(type) {
	case error:
		return x.Error()
	case string:
		return x
	default:
		return fmt.Sprintf("%+v", x)
	}
}

func (h *Handler) pseudonym(k pseudoKind, v string) string {
	if v == "" {
		return ""
	}
	if h.ps == nil {
		if k == pseudoAddr {
			return NoKeyAddr
		}
		return NoKeyUser
	}
	if k == pseudoAddr {
		return h.ps.Addr(v)
	}
	return h.ps.User(v)
}

// addrs replaces the IP addresses among msg's space-separated words
// (trailing ":,;" aside; a port is kept out of the pseudonym) by their
// pseudonyms.
func (h *Handler) addrs(msg string) string {
	words := strings.Split(msg, " ")
	changed := false
	for k, w := range words {
		t := strings.TrimRight(w, ":,;")
		if t == "" {
			continue
		}
		var ok bool
		if ap, err := netip.ParseAddrPort(t); err == nil {
			ok = ap.Addr().IsValid()
		} else if _, err := netip.ParseAddr(strings.Trim(t, "[]")); err == nil {
			ok = true
		}
		if ok {
			words[k] = h.pseudonym(pseudoAddr, t) + w[len(t):]
			changed = true
		}
	}
	if !changed {
		return msg
	}
	return strings.Join(words, " ")
}
