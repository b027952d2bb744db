//go:build pkcs11

package pkcs11

import (
	"testing"
)

// BenchmarkPKCS11Wrap wraps and unwraps a 32-byte data key inside the
// token: one Encrypt and one Decrypt, the cost envelope encryption adds
// when a conversation's data key is created and opened.
func BenchmarkPKCS11Wrap(b *testing.B) {
	p := open(b, 1)
	_, a := newKey(b, p)
	dk, ad := dataKey(b), []byte("conversation:bench")
	b.ReportAllocs()
	for b.Loop() {
		ct, err := a.Encrypt(dk, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Decrypt(ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPKCS11WrapParallel is the same from GOMAXPROCS goroutines over
// a pool of 4 sessions.
func BenchmarkPKCS11WrapParallel(b *testing.B) {
	p := open(b, 4)
	_, a := newKey(b, p)
	dk, ad := dataKey(b), []byte("conversation:bench")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ct, err := a.Encrypt(dk, ad)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := a.Decrypt(ct, ad); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
