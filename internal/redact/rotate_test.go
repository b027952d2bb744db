package redact

import (
	"bytes"
	"errors"
	"testing"
)

// A rotating pseudonymizer follows its key source: a new key id switches
// the pseudonyms; a failing source or a short key keeps the key in use.
func TestRotatingPseudonymizerFollowsItsSource(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	id, key, fail := "k1", k1, error(nil)
	p, err := NewRotatingPseudonymizer(func() (string, []byte, error) { return id, key, fail })
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := NewPseudonymizer("k1", k1)
	p2, _ := NewPseudonymizer("k2", k2)
	if got := p.User("u"); got != p1.User("u") {
		t.Fatalf("before rotation: %s, want %s", got, p1.User("u"))
	}
	id, key = "k2", k2
	if got := p.User("u"); got != p2.User("u") || p.KeyID() != "k2" {
		t.Fatalf("after rotation: %s under %s, want %s under k2", got, p.KeyID(), p2.User("u"))
	}
	fail = errors.New("keys not loaded")
	if got := p.Addr("10.0.0.1"); got != p2.Addr("10.0.0.1") {
		t.Fatalf("failing source: %s, want the key in use (%s)", got, p2.Addr("10.0.0.1"))
	}
	fail, id, key = nil, "short", make([]byte, 8)
	if got := p.User("u"); got != p2.User("u") {
		t.Fatalf("short key: %s, want the key in use", got)
	}
	if _, err := NewRotatingPseudonymizer(func() (string, []byte, error) { return "", nil, errors.New("no key") }); err == nil {
		t.Fatal("built without a key")
	}
}
