package operator

import (
	"testing"

	"github.com/parley-gw/parley/internal/config"
)

// BenchmarkHashPasswordDefaults is the cost of one sign-in's hash with
// the default (OWASP) parameters.
func BenchmarkHashPasswordDefaults(b *testing.B) {
	d := config.DefaultOperators().Argon2
	p := Argon2Params{MemoryKiB: d.MemoryKiB, Iterations: d.Iterations, Parallelism: d.Parallelism}
	for b.Loop() {
		if _, err := HashPassword("violet kettle marching sideways", p); err != nil {
			b.Fatal(err)
		}
	}
}
