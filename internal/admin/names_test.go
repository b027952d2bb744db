package admin_test

import (
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

// Bot and site names: letters, digits, spaces and ._'- only, never blank
// and never with a space first or last (review: "   " was a name, and
// " Z " stood beside "z" as another).
func TestNamePattern(t *testing.T) {
	for name, ok := range map[string]bool{
		"Support": true, "Help desk": true, "a": true, "Z": true, "O'Brien bot": true, "bot-1.v2": true, "Ünïcödé": true,
		"   ": false, " Z ": false, " Z": false, "Z ": false, "": false, "a/b": false, "tab\there": false,
		"x234567890123456789012345678901234567890123456789012345678901234":  true,
		"x2345678901234567890123456789012345678901234567890123456789012345": false,
	} {
		if got := admin.NamePattern.MatchString(name); got != ok {
			t.Errorf("%q: accepted %v, want %v", name, got, ok)
		}
	}
}
