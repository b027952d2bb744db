package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Masker masks detected data in user messages before they are stored
// and forwarded (a site's masking policy): card numbers become their last
// four digits ("**** **** **** 4242", the digits' grouping kept), and
// with AllPII the other personal data (SSNs, IBANs, emails, phone
// numbers) becomes placeholders ([ssn], [email], ...).
type Masker struct {
	kinds Kinds
}

// NewMasker returns a masker for cards only or for all PII.
func NewMasker(allPII bool) Masker {
	if allPII {
		return Masker{kinds: PII}
	}
	return Masker{kinds: KindCard}
}

// String masks s.
func (m Masker) String(s string) string { return Replace(s, m.kinds, LastFour) }

// JSON masks every string in a JSON value (object keys included, and
// numbers that read as card numbers, which become strings); changed is
// false, and out is raw itself, when nothing was masked.
func (m Masker) JSON(raw []byte) (out []byte, changed bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw, false, fmt.Errorf("mask: decode: %w", err)
	}
	v, changed = m.walk(v, 0)
	if !changed {
		return raw, false, nil
	}
	out, err = json.Marshal(v)
	if err != nil {
		return raw, false, fmt.Errorf("mask: encode: %w", err)
	}
	return out, true, nil
}

// maxJSONDepth bounds the nesting walked (conversation.Parse bounds it
// already; this is a second guard).
const maxJSONDepth = 64

func (m Masker) walk(v any, depth int) (any, bool) {
	if depth > maxJSONDepth {
		return v, false
	}
	switch x := v.(type) {
	case string:
		if s := m.String(x); s != x {
			return s, true
		}
	case json.Number:
		if s := m.String(string(x)); s != string(x) {
			return s, true
		}
	case []any:
		changed := false
		for i, e := range x {
			if ne, c := m.walk(e, depth+1); c {
				x[i], changed = ne, true
			}
		}
		return x, changed
	case map[string]any:
		changed := false
		for k, e := range x {
			ne, c := m.walk(e, depth+1)
			nk := m.String(k)
			if nk != k {
				delete(x, k)
				c = true
			}
			if c {
				x[nk], changed = ne, true
			}
		}
		return x, changed
	}
	return v, false
}
