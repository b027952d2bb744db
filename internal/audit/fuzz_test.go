package audit_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/parley-gw/parley/internal/audit"
)

// FuzzParseHead: --head is operator input; what parses prints back the same.
func FuzzParseHead(f *testing.F) {
	f.Add("12:" + "ab00000000000000000000000000000000000000000000000000000000000000")
	f.Add("1:")
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := audit.ParseHead(s)
		if err != nil {
			return
		}
		h2, err := audit.ParseHead(h.String())
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("%q parsed to %v, which does not parse back (%v)", s, h, err)
		}
	})
}

// FuzzAnchorLine: anchor-file lines and exported entries are read back
// from files others could write; decoding never panics, and what decodes
// encodes to an equal value.
func FuzzAnchorLine(f *testing.F) {
	f.Add(`{"seq":3,"hash":"00ff","time":"2026-12-01T12:00:00.5Z","keyId":"ac-x","signature":"AAAA"}`)
	f.Add(`{"seq":1,"time":"2026-12-01T12:00:00Z","actor":"a","action":"x.y","outcome":"success","prev":"","hash":"00","keyId":"k","mac":"01"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var c audit.Checkpoint
		if json.Unmarshal([]byte(s), &c) == nil {
			b, err := json.Marshal(c)
			var c2 audit.Checkpoint
			if err != nil || json.Unmarshal(b, &c2) != nil || c2.Seq != c.Seq || string(c2.Hash) != string(c.Hash) || !c2.Time.Equal(c.Time) || string(c2.Signature) != string(c.Signature) {
				t.Fatalf("checkpoint %q does not round-trip: %s", s, b)
			}
		}
		var e audit.Entry
		if json.Unmarshal([]byte(s), &e) == nil {
			b, err := json.Marshal(e)
			var e2 audit.Entry
			if err != nil || json.Unmarshal(b, &e2) != nil || string(audit.Canonical(e)) != string(audit.Canonical(e2)) {
				t.Fatalf("entry %q does not round-trip: %s", s, b)
			}
		}
	})
}
