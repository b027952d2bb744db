package operator

import (
	"fmt"
	"testing"
	"time"
)

// TestCeremoniesBounded: the waiting ceremonies are bounded; expired ones
// make room; take is single use.
func TestCeremoniesBounded(t *testing.T) {
	var c ceremonies
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxCeremonies {
		if !c.put(fmt.Sprint(i), ceremony{expires: now.Add(time.Minute)}, now) {
			t.Fatalf("put %d refused", i)
		}
	}
	if c.put("one more", ceremony{expires: now.Add(time.Minute)}, now) {
		t.Fatal("put beyond the bound accepted")
	}
	later := now.Add(2 * time.Minute) // every one expired
	if !c.put("after expiry", ceremony{expires: later.Add(time.Minute)}, later) {
		t.Fatal("expired ceremonies did not make room")
	}
	if _, ok := c.take("after expiry"); !ok {
		t.Fatal("take found nothing")
	}
	if _, ok := c.take("after expiry"); ok {
		t.Fatal("a second take found the ceremony again")
	}
}
