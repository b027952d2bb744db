// Package audit is the tamper-evident audit log: every admin action and
// security event, appended to a hash chain, verified, anchored and
// exported.
package audit

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

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
	Actor string `json:"actor"`
	// Role is the actor's role, when known.
	Role string `json:"role,omitempty"`
	// Action is a dotted name: "session.login", "bots.write", "keys.destroy"...
	Action string `json:"action"`
	// Target names the object: "bot:ID", "site:ID", "operator:ID"...
	Target  string  `json:"target,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Client is the pseudonymized client address ("" for local).
	Client string `json:"client,omitempty"`
	// Detail holds short, non-secret facts (a reason, a field name).
	// Never a secret, a token, a password or message text.
	Detail map[string]string `json:"detail,omitempty"`
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
	// MAC authenticates Hash under a key derived from the audit-checkpoint
	// key KeyID: only a holder of the master key can write an entry that
	// verifies.
	KeyID string
	MAC   []byte
}

// entryJSON is an entry's JSON form (export, the admin API): hashes in
// hex, the time in RFC 3339 with nanoseconds, UTC, so an exported line
// carries everything its hash covers and can be re-hashed outside Parley.
type entryJSON struct {
	Seq    int64             `json:"seq"`
	Time   string            `json:"time"`
	Actor  string            `json:"actor"`
	Role   string            `json:"role"`
	Action string            `json:"action"`
	Target string            `json:"target"`
	Out    Outcome           `json:"outcome"`
	Client string            `json:"client"`
	Detail map[string]string `json:"detail,omitempty"`
	Prev   string            `json:"prev"`
	Hash   string            `json:"hash"`
	KeyID  string            `json:"keyId"`
	MAC    string            `json:"mac"`
}

// MarshalJSON writes the entry's JSON form.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(entryJSON{Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Role: e.Role,
		Action: e.Action, Target: e.Target, Out: e.Outcome, Client: e.Client, Detail: e.Detail,
		Prev: hex.EncodeToString(e.Prev), Hash: hex.EncodeToString(e.Hash), KeyID: e.KeyID, MAC: hex.EncodeToString(e.MAC)})
}

// UnmarshalJSON reads the JSON form MarshalJSON writes.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("audit entry time: %w", err)
	}
	prev, err := hex.DecodeString(j.Prev)
	if err != nil {
		return fmt.Errorf("audit entry prev: %w", err)
	}
	hash, err := hex.DecodeString(j.Hash)
	if err != nil {
		return fmt.Errorf("audit entry hash: %w", err)
	}
	mac, err := hex.DecodeString(j.MAC)
	if err != nil {
		return fmt.Errorf("audit entry mac: %w", err)
	}
	if len(prev) == 0 {
		prev = nil
	}
	if len(mac) == 0 {
		mac = nil
	}
	*e = Entry{Seq: j.Seq, Time: t.UTC(), Event: Event{Actor: j.Actor, Role: j.Role, Action: j.Action, Target: j.Target,
		Outcome: j.Out, Client: j.Client, Detail: j.Detail}, Prev: prev, Hash: hash, KeyID: j.KeyID, MAC: mac}
	return nil
}
