// Package audit is the tamper-evident audit log: every admin action and
// security event, appended to a hash chain, verified, anchored and
// exported.
package audit

import "time"

// Outcome is how an action ended.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure" // refused: bad credentials, invalid input
	Denied  Outcome = "denied"  // authenticated, but the role or scope does not allow it
)

// Event is one thing to record. The log adds the position, the time (UTC)
// and the chain hashes.
type Event struct {
	// Actor is admin.Principal.Label(): "operator:ID", "token:ID",
	// "local:USER", or "anonymous" before sign-in.
	Actor string
	// Role is the actor's role, when known.
	Role string
	// Action is a dotted name: "session.login", "bots.write", "keys.destroy"...
	Action string
	// Target names the object: "bot:ID", "site:ID", "operator:ID"...
	Target  string
	Outcome Outcome
	// Client is the pseudonymized client address ("" for local).
	Client string
	// Detail holds short, non-secret facts (a reason, a field name).
	// Never a secret, a token, a password or message text.
	Detail map[string]string
}

// Entry is an event as the log holds it.
type Entry struct {
	Seq  int64
	Time time.Time
	Event
	// Prev is the previous entry's Hash (zero for the first); Hash covers
	// Seq, Time, the event and Prev.
	Prev []byte
	Hash []byte
}
