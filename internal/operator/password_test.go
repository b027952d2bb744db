package operator

import (
	"strings"
	"testing"
)

func TestPasswordHashRoundTripAndParameterChange(t *testing.T) {
	old := Argon2Params{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	phc, err := HashPassword("violet kettle marching sideways", old)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("PHC = %q", phc)
	}
	if ok, rehash := VerifyPassword(phc, "violet kettle marching sideways", old); !ok || rehash {
		t.Fatalf("right password: ok %v rehash %v", ok, rehash)
	}
	if ok, _ := VerifyPassword(phc, "violet kettle marching sideway", old); ok {
		t.Fatal("wrong password accepted")
	}
	// New parameters: the old hash still verifies (it carries its own)
	// and asks to be re-hashed; the new hash carries the new ones.
	cur := Argon2Params{MemoryKiB: 9216, Iterations: 2, Parallelism: 1}
	if ok, rehash := VerifyPassword(phc, "violet kettle marching sideways", cur); !ok || !rehash {
		t.Fatalf("after a parameter change: ok %v rehash %v, want true true", ok, rehash)
	}
	phc2, _ := HashPassword("violet kettle marching sideways", cur)
	if !strings.Contains(phc2, "$m=9216,t=2,p=1$") || phc2 == phc {
		t.Fatalf("new PHC = %q", phc2)
	}
	if ok, rehash := VerifyPassword(phc2, "violet kettle marching sideways", cur); !ok || rehash {
		t.Fatalf("new hash: ok %v rehash %v", ok, rehash)
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"plaintext", "$argon2id$v=19$m=8192,t=1,p=1$$"} {
		if ok, _ := VerifyPassword(bad, "plaintext", old); ok {
			t.Errorf("VerifyPassword(%q) accepted", bad)
		}
	}
}

func TestCheckPasswordRefusesWeakWithAMessage(t *testing.T) {
	for _, tc := range []struct {
		pw, want string // want: a phrase of the message ("" : accepted)
	}{
		{"short1!", "use at least 12"},
		{strings.Repeat("ab1-", 33), "at most 128"},
		{"1234567890123", "common"},               // on the list? else a run
		{"password1234", "common"},                // listed word + digits
		{"P@ssw0rd2026!", "common"},               // l33t + digits
		{"qwertyuiopas", "common"},                // keyboard row (listed or run)
		{"aaaaaaaaaaaaaaaa", "common"},            // listed, or too few characters
		{"abababababababab", "too few different"}, // two characters
		{"abcdefghijklmn", "consecutive"},         // a run
		{"alice-the-great-42", "your operator name"},
		{"my parley password", "parley"},
		{"violet kettle marching sideways", ""},
		{"Zq8#rT2!mW9@vL", ""},
	} {
		err := CheckPassword("alice", tc.pw)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckPassword(%q) = %v, want accepted", tc.pw, err)
		case tc.want != "" && err == nil:
			t.Errorf("CheckPassword(%q) accepted, want refused (%s)", tc.pw, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want) && !(tc.want == "common" && (strings.Contains(err.Error(), "consecutive") || strings.Contains(err.Error(), "too few"))):
			t.Errorf("CheckPassword(%q) = %q, want a message about %q", tc.pw, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), ":") {
			t.Errorf("message %q does not say what to do", err)
		}
	}
	if len(commonPasswords) < 9000 {
		t.Fatalf("the embedded list has %d entries", len(commonPasswords))
	}
}

func TestMatchTOTPSkewAndLength(t *testing.T) {
	if _, ok := matchTOTP("JBSWY3DPEHPK3PXP", "12345", epochTOTP); ok {
		t.Fatal("a 5-digit code matched")
	}
	if _, ok := matchTOTP("JBSWY3DPEHPK3PXP", "", epochTOTP); ok {
		t.Fatal("an empty code matched")
	}
}
