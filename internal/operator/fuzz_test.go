package operator

import (
	"testing"
)

// FuzzVerifyPasswordPHC: a stored hash of any shape never panics nor
// verifies a password it was not made from.
func FuzzVerifyPasswordPHC(f *testing.F) {
	for _, s := range []string{"$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=8,t=1,p=1$$", "$argon2id$v=19$m=4294967295,t=1,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, phc string) {
		if _, _, _, err := parsePHC(phc); err != nil {
			return
		}
		p, _, _, _ := parsePHC(phc)
		if p.MemoryKiB > 1<<16 || p.Iterations > 4 {
			return // valid but too slow to compute in a fuzz loop
		}
		if ok, _ := VerifyPassword(phc, "fuzz password not in any seed", p); ok {
			t.Fatalf("%q verified an unrelated password", phc)
		}
	})
}
