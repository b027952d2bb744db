package conversation

import "testing"

// Ids are typed as command-line arguments (site, conversation): one that
// started with '-' was read as a flag (1 in 32 did, '-' or '_' first).
func TestNewIDNeverStartsLikeAFlag(t *testing.T) {
	for range 20000 {
		id := NewID()
		if id[0] == '-' || id[0] == '_' || len(id) != 22 || !ValidID(id) {
			t.Fatalf("NewID() = %q", id)
		}
	}
}
