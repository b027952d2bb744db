package config

import "fmt"

// Store configures the embedded store.
type Store struct {
	// Durability is what an acknowledged activity survives. "full" (the
	// default): a power cut or kernel crash too (SQLite synchronous=FULL:
	// every commit is fsynced before the client gets its id). "normal": a
	// crash of the Parley process, but a power cut or kernel crash may
	// lose the last commits (synchronous=NORMAL in WAL mode: the WAL is
	// fsynced at checkpoints only); faster, for deployments that accept
	// that.
	Durability string `yaml:"durability"`
}

// Durability levels.
const (
	DurabilityFull   = "full"
	DurabilityNormal = "normal"
)

// DefaultStore is Store before the file and environment apply.
func DefaultStore() Store { return Store{Durability: DurabilityFull} }

func (s *Store) applyEnv(env func(string) (string, bool)) {
	if v, ok := env("PARLEY_STORE_DURABILITY"); ok {
		s.Durability = v
	}
}

func (s Store) validate() []error {
	switch s.Durability {
	case DurabilityFull, DurabilityNormal:
		return nil
	}
	return []error{fmt.Errorf("store.durability: %q is not one of full (every acknowledged activity survives a power cut), normal (survives a process crash; a power cut may lose the last commits)", s.Durability)}
}
