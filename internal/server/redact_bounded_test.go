package server_test

import (
	"strings"
	"testing"
)

// A client's text that Parley logs bounded (User-Agent on an
// authentication failure, Origin on a refusal) is redacted before it is
// cut: a card number straddling the bound must not leave its first twelve
// digits in the log as a number too short to be recognised.
func TestBoundedLogValuesAreRedactedBeforeTheyAreCut(t *testing.T) {
	h := newHarness(t)
	_, conv, _ := h.started("dl_alice")
	const pan = "4111111111111111"
	// 243 bytes, a space, then the card: the bound (256) falls after its
	// twelfth digit.
	smuggled := strings.Repeat("a", 243) + " " + pan
	h.do("POST", "/conversations/"+conv+"/activities", "AAAA"+h.secret[4:], map[string]any{"type": "message", "text": "x"}, hdr{"User-Agent": smuggled})
	h.do("POST", "/tokens/generate", h.secret, map[string]any{"user": map[string]string{"id": "dl_bob"}}, hdr{"Origin": "https://" + strings.Repeat("a", 235) + ".example " + pan})
	logs := h.logs.String()
	if !strings.Contains(logs, "aaaaaaaaaa") {
		t.Fatalf("the smuggled values were not logged at all; the test proves nothing:\n%s", logs)
	}
	if strings.Contains(logs, pan[:12]) {
		t.Fatalf("a cut card number is in the logs:\n%s", logs)
	}
}
