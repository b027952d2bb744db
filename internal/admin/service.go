package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Recorder records audit events (internal/audit's Log is one).
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// KeyHandle is the gateway's keys, opened: the key set (rotate,
// destroy) and the envelope (sealing OAuth client secrets).
type KeyHandle struct {
	Set      *keyring.KeySet
	Envelope *keyring.Envelope
	// Codec opens what the store holds sealed (dead letters' activities);
	// nil where no caller needs it.
	Codec conversation.Codec
	// Close releases what opening took (an HSM's sessions); nil: nothing.
	Close func()
}

// Deps is what the service works on.
type Deps struct {
	Store  store.Store
	Config config.Config
	// Recorder receives an audit event for every call: success, failure
	// (invalid input, unknown object) and denied (role or scope).
	Recorder Recorder
	// KeyList lists keys without opening any (no master key needed).
	KeyList *keyring.KeySet
	// OpenKeys opens the keys for rotation, destruction and sealing.
	OpenKeys func(ctx context.Context) (KeyHandle, error)
	// Resolver looks up bot endpoint hosts (CheckEndpoint's default).
	Resolver connector.Resolver
	// CheckEndpoint checks where a bot endpoint points (SSRF rule); it
	// returns a warning when the host does not resolve yet. Nil: the
	// default, connector.CheckEndpoint with Config's private networks.
	CheckEndpoint func(ctx context.Context, endpoint string) (warning string, err error)
	// PublicURL picks Parley's public base URL for a bot's settings from
	// the one given and the configured one (nil: the default rule).
	PublicURL func(given, configured string) (string, error)
	// NewAppID makes a bot's app id (nil: a random UUID).
	NewAppID func() string
	// ConfigName names the configuration file when the configuration is a
	// production one (the CLI's --config, the server's): insecure bots are
	// then refused unless insecure_http. Empty: no configuration file (the
	// CLI's --data), insecure bots allowed on loopback.
	ConfigName string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Erased, when set, is told about each conversation the service
	// erased, after the store deleted it: a running server drops the
	// conversation's data key from memory and ends its open streams.
	Erased func(store.Erased)
}

// Service is the operators' service layer: the admin API and the CLI
// both call it. Every method checks the principal's role and bot scope
// itself (deny by default), answers another team's object as not found,
// and records an audit event.
type Service struct {
	d Deps
}

// NewService returns the service over d.
func NewService(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Recorder == nil {
		d.Recorder = NopRecorder{}
	}
	if d.NewAppID == nil {
		d.NewAppID = NewAppID
	}
	if d.PublicURL == nil {
		d.PublicURL = PublicURL
	}
	return &Service{d: d}
}

// Store is the store the service works on.
func (s *Service) Store() store.Store { return s.d.Store }

// Config is the configuration the service works with.
func (s *Service) Config() config.Config { return s.d.Config }

// NopRecorder records nothing.
type NopRecorder struct{}

// Record does nothing.
func (NopRecorder) Record(context.Context, audit.Event) error { return nil }

// ErrorKind classifies a service error for the API's status codes.
type ErrorKind int

// The kinds.
const (
	KindInvalid   ErrorKind = iota + 1 // 400
	KindNotFound                       // 404 (also another team's object)
	KindConflict                       // 409
	KindForbidden                      // 403
)

// Error is a service error: its kind and the error. Error() is the
// detailed message the CLI prints; Public, when set, is what the API says
// instead (no CLI flag names, never whether another team's id exists).
type Error struct {
	Kind   ErrorKind
	Err    error
	Public string
	// Object is the kind of object not found ("bot", "site"...).
	Object string
}

// NotFoundObject returns the kind of object err did not find ("" when
// err is no not-found error of the service).
func NotFoundObject(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind == KindNotFound {
		return e.Object
	}
	return ""
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus maps err to the admin API's status, code and message.
func HTTPStatus(err error) (int, string, string) {
	// First: for a change, the recorder's error (a full disk) must not say
	// that nothing was changed; a read whose access could not be recorded
	// is answered as the recorder's error (nothing was changed).
	var u *UnrecordedError
	if errors.As(err, &u) {
		if u.Read {
			if errors.Is(u.Err, store.ErrFull) {
				return http.StatusServiceUnavailable, CodeUnavailable, msgStorageFull
			}
			return http.StatusInternalServerError, CodeInternal, "this access could not be recorded in the audit log, so nothing is shown: see the server's log"
		}
		return http.StatusInternalServerError, CodeUnrecorded, "the change was made, but its audit event could not be recorded: see the server's log, and fix the audit log's storage"
	}
	if errors.Is(err, store.ErrFull) {
		return http.StatusServiceUnavailable, CodeUnavailable, msgStorageFull
	}
	if errors.Is(err, store.ErrStoreReplaced) {
		return http.StatusServiceUnavailable, CodeUnavailable, "the database file was removed or replaced while the server ran: nothing was changed; restore it (from your backup) and restart parley"
	}
	var e *Error
	if !errors.As(err, &e) {
		if errors.Is(err, store.ErrNotFound) {
			return http.StatusNotFound, CodeNotFound, "not found"
		}
		return http.StatusInternalServerError, CodeInternal, "the operation failed; see the server's log"
	}
	msg := e.Public
	if msg == "" {
		msg = APIMessage(e.Err.Error())
	}
	switch e.Kind {
	case KindInvalid:
		return http.StatusBadRequest, CodeBadRequest, msg
	case KindNotFound:
		return http.StatusNotFound, CodeNotFound, msg
	case KindConflict:
		return http.StatusConflict, CodeConflict, msg
	case KindForbidden:
		return http.StatusForbidden, CodeForbidden, msg
	}
	return http.StatusInternalServerError, CodeInternal, "the operation failed; see the server's log"
}

// msgStorageFull answers a change refused because the storage is full.
const msgStorageFull = "the storage is full: nothing was changed; free disk space where the data directory is (the server's log and /readyz say so) and try again"

// flagFields names the API's fields for the CLI's flags in shared
// messages.
var flagFields = strings.NewReplacer(
	"--client-attachment-urls", "clientAttachmentUrls", "--delivery-timeout", "deliveryTimeout",
	"--insecure-no-auth", "insecureNoAuth", "--public-url", "publicUrl", "--enhanced-auth", "enhancedAuth",
	"--on-end-of-conversation", "mode end-of-conversation", "--ephemeral", "mode ephemeral", "--default", "mode default",
	"--origin", "origin", "--name", "name", "--endpoint", "endpoint", "--after", "after", "--slot", "slot",
	"--purpose", "purpose", "--limit", "limit", "--auth", "auth", "--site", "site", "--bot", "bot",
	"--force", "force", "--since", "since", "--top", "top",
)

// APIMessage is a service message as the API says it: the CLI's flag
// names become the API's field names.
// Messages quoting a CLI command ('parley ...') stay as they are.
func APIMessage(msg string) string {
	if strings.Contains(msg, "'parley ") {
		return msg
	}
	return flagFields.Replace(msg)
}

func invalid(err error) error { return &Error{Kind: KindInvalid, Err: err} }

func invalidf(format string, args ...any) error { return invalid(fmt.Errorf(format, args...)) }

func conflict(err error) error { return &Error{Kind: KindConflict, Err: err} }

// notFound is an unknown object, or another team's (the same answer).
// It wraps store.ErrNotFound so the CLI's messages keep working.
func notFound(kind, id string) error {
	return &Error{Kind: KindNotFound, Err: fmt.Errorf("get %s %s: %w", kind, id, store.ErrNotFound), Public: fmt.Sprintf("no %s %q", kind, id), Object: kind}
}

// asNotFound turns a store ErrNotFound into the service's not found,
// keeping the store's error for the CLI.
func asNotFound(err error, kind, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: KindNotFound, Err: err, Public: fmt.Sprintf("no %s %q", kind, id), Object: kind}
	}
	return err
}

// ErrForbidden is the role or scope refusal.
var ErrForbidden = errors.New("forbidden")

// gatewayWide are the actions on objects that belong to no bot: a
// principal scoped to some bots never holds them (a scoped auditor does
// not read the keys, the operators, the whole audit log or the
// gateway-wide security report).
var gatewayWide = map[Action]bool{
	KeysRead: true, KeysManage: true,
	OperatorsRead: true, OperatorsManage: true,
	AuditRead: true, SecurityRead: true,
}

// GatewayWide reports whether action concerns gateway-wide objects only,
// refused to scoped principals.
func GatewayWide(a Action) bool { return gatewayWide[a] }

// op is one call in progress: who, what, on which target, for the audit
// event.
type op struct {
	s      *Service
	p      Principal
	action Action
	verb   string
	target string
	detail map[string]string
}

func (s *Service) op(p Principal, action Action, verb, target string) *op {
	return &op{s: s, p: p, action: action, verb: verb, target: target}
}

func (o *op) record(ctx context.Context, outcome audit.Outcome, reason string) error {
	d := map[string]string{"op": o.verb}
	for k, v := range o.detail {
		d[k] = v
	}
	if reason != "" {
		d["reason"] = reason
	}
	return o.s.d.Recorder.Record(ctx, audit.Event{Actor: o.p.Label(), Role: string(o.p.Role), Action: string(o.action),
		Target: o.target, Outcome: outcome, Client: o.p.Client, Detail: d})
}

// allow checks the role: 403, audited as denied. A scoped principal
// never holds a gateway-wide action.
func (o *op) allow(ctx context.Context) error {
	if !Grants(o.p.Role, o.action) || (gatewayWide[o.action] && len(o.p.Bots) > 0) {
		_ = o.record(ctx, audit.Denied, "role")
		return &Error{Kind: KindForbidden, Err: fmt.Errorf("%w: role %s may not %s", ErrForbidden, o.p.Role, o.action),
			Public: fmt.Sprintf("your role (%s) may not %s (%s)", o.p.Role, o.action.Phrase(), o.action)}
	}
	return nil
}

// erases checks that the principal may erase the conversations a
// deletion takes with it (none: nothing to check): deleting a site or a
// bot is day-to-day work, erasing its users' conversations is not.
func (o *op) erases(ctx context.Context, conversations int) error {
	if conversations == 0 || Grants(o.p.Role, ConversationsErase) {
		return nil
	}
	_ = o.record(ctx, audit.Denied, "role")
	return &Error{Kind: KindForbidden, Err: fmt.Errorf("%w: role %s may not %s", ErrForbidden, o.p.Role, ConversationsErase),
		Public: fmt.Sprintf("this would erase %d conversations with it, and your role (%s) may not %s (%s): ask an admin or an owner", conversations, o.p.Role, ConversationsErase.Phrase(), ConversationsErase)}
}

// scope checks that the object of kind and id, which belongs to botID,
// is in the principal's bot scope: another team's object is not found
// (404, so ids are not confirmed), audited as denied.
func (o *op) scope(ctx context.Context, botID, kind, id string) error {
	if !o.p.Scoped(botID) {
		_ = o.record(ctx, audit.Denied, "scope")
		return notFound(kind, id)
	}
	return nil
}

// done records the outcome of the call and returns err (with the
// recorder's error when recording a success failed).
func (o *op) done(ctx context.Context, err error) error {
	if err != nil {
		var e *Error
		reason := "error"
		if errors.As(err, &e) {
			switch e.Kind {
			case KindInvalid:
				reason = "invalid"
			case KindNotFound:
				reason = "not_found"
			case KindConflict:
				reason = "conflict"
			case KindForbidden:
				reason = "forbidden"
			}
		}
		_ = o.record(ctx, audit.Failure, reason)
		return err
	}
	if rerr := o.record(ctx, audit.Success, ""); rerr != nil {
		return &UnrecordedError{Err: rerr, Read: readVerbs[o.verb]}
	}
	return nil
}

// readVerbs are the operations that change nothing (a list, a read, a
// plan): when their access cannot be recorded, nothing was changed.
var readVerbs = map[string]bool{"list": true, "get": true, "report": true, "read_activity": true, "read_activities": true,
	"plan_delete": true, "plan_destroy": true}

// UnrecordedError means the call was served but its audit event could
// not be recorded: for a change, the change was made, and the call's
// result (a secret shown once) is valid and must still reach the caller,
// with this error beside it; for a read (Read), nothing was changed and
// the API shows nothing.
type UnrecordedError struct {
	Err  error
	Read bool
}

func (e *UnrecordedError) Error() string {
	return "done, but recording the audit event failed: " + e.Err.Error()
}
func (e *UnrecordedError) Unwrap() error { return e.Err }

// Unrecorded reports whether err only says that a change made was not
// recorded in the audit log (see UnrecordedError).
func Unrecorded(err error) bool {
	var u *UnrecordedError
	return errors.As(err, &u)
}
