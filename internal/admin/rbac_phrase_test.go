package admin

import "testing"

// Every action in the permission table has a phrase for the refusals
// people read.
func TestEveryActionHasAPhrase(t *testing.T) {
	for _, a := range Actions() {
		if _, ok := actionPhrases[a]; !ok {
			t.Errorf("action %s has no phrase", a)
		}
	}
}
