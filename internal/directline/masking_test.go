package directline

import (
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

func TestMaskActivity(t *testing.T) {
	const in = `{"type":"message","id":"4242424242424242","text":"card 4242 4242 4242 4242, a@b.io",` +
		`"from":{"id":"4111111111111111"},"entities":[{"n":"4242424242424242"}],"value":{"pan":"4242424242424242"},` +
		`"attachments":[{"contentType":"text/plain","contentUrl":"data:text/plain,4242424242424242","content":"4242424242424242","name":"4242424242424242"}]}`
	tests := []struct {
		policy       store.MaskingPolicy
		want, intact []string
	}{
		{store.MaskingOff, []string{`"text":"card 4242 4242 4242 4242, a@b.io"`, `"pan":"4242424242424242"`}, nil},
		{"", []string{`"text":"card 4242 4242 4242 4242, a@b.io"`}, nil},
		{store.MaskingCards, []string{`"text":"card **** **** **** 4242, a@b.io"`, `"pan":"************4242"`, `"content":"************4242"`, `"name":"************4242"`, `"entities":[{"n":"************4242"}]`},
			[]string{`"id":"4242424242424242"`, `"from":{"id":"4111111111111111"}`, `data:text/plain,4242424242424242`}},
		{store.MaskingAllPII, []string{`"text":"card **** **** **** 4242, [email]"`}, []string{`"id":"4242424242424242"`}},
	}
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			act, err := conversation.Parse([]byte(in), conversation.Limits{MaxBytes: 1 << 16, MaxAttachments: 4})
			if err != nil {
				t.Fatal(err)
			}
			if e := maskActivity(tc.policy, act); e != nil {
				t.Fatal(e)
			}
			b, _ := act.Encode()
			for _, w := range append(tc.want, tc.intact...) {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s missing from %s", w, b)
				}
			}
		})
	}
}

// A card number in any member a client sends, not only the usual text
// fields, is masked: the policy is PCI DSS scope reduction, so no member
// may carry a PAN past it (from.name, label, an event's name and value,
// suggested actions, entities, members Parley does not know).
func TestMaskActivityEveryMember(t *testing.T) {
	const pan = "4111111111111111"
	in := `{"type":"message","id":"c|0000001","from":{"id":"dl_u","name":"` + pan + `"},"text":"x","label":"` + pan + `",` +
		`"name":"` + pan + `","locale":"` + pan + `","entities":[{"type":"x","card":"` + pan + `"}],` +
		`"suggestedActions":{"actions":[{"title":"` + pan + `"}]},"foo":{"bar":["` + pan + `"]}}`
	act, err := conversation.Parse([]byte(in), conversation.Limits{MaxBytes: 1 << 16, MaxAttachments: 4})
	if err != nil {
		t.Fatal(err)
	}
	if e := maskActivity(store.MaskingCards, act); e != nil {
		t.Fatal(e)
	}
	b, _ := act.Encode()
	if strings.Contains(string(b), pan) {
		t.Fatalf("a card number survived masking: %s", b)
	}
	for _, w := range []string{`"id":"c|0000001"`, `"id":"dl_u"`, `"type":"message"`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("%s missing from %s", w, b)
		}
	}
}
