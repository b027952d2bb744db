package conversation

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseKeepsUnknownFields(t *testing.T) {
	in := `{"type":"message","text":"hi","deliveryMode":"stream","x-custom":{"a":[1,2]},"channelData":{"clientActivityID":"c1"}}`
	a, err := Parse([]byte(in), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := a.Encode()
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if m["deliveryMode"] != "stream" || m["x-custom"] == nil || m["channelData"].(map[string]any)["clientActivityID"] != "c1" {
		t.Fatalf("fields lost: %s", out)
	}
}

func TestParseRejects(t *testing.T) {
	for name, c := range map[string]struct {
		in      string
		missing bool
	}{
		"empty":            {"", true},
		"spaces":           {"   ", true},
		"array":            {"[]", false},
		"string":           {`"x"`, false},
		"no type":          {`{}`, true},
		"empty type":       {`{"type":""}`, true},
		"long type":        {`{"type":"` + strings.Repeat("t", 65) + `"}`, false},
		"channel type":     {`{"type":"ConversationUpdate"}`, false},
		"install type":     {`{"type":"installationUpdate"}`, false},
		"from array":       {`{"type":"message","from":[]}`, false},
		"from id number":   {`{"type":"message","from":{"id":1}}`, false},
		"long from id":     {`{"type":"message","from":{"id":"` + strings.Repeat("a", 300) + `"}}`, false},
		"entities object":  {`{"type":"message","entities":{}}`, false},
		"channelData list": {`{"type":"message","channelData":[]}`, false},
		"attachment str":   {`{"type":"message","attachments":["x"]}`, false},
		"attachment url":   {`{"type":"message","attachments":[{"contentUrl":5}]}`, false},
		"locale number":    {`{"type":"message","locale":5}`, false},
		"duplicate doc":    {`{"type":"message"}{"type":"message"}`, false},
	} {
		_, err := Parse([]byte(c.in), DefaultLimits)
		ve, ok := err.(*ValidationError)
		if !ok {
			t.Errorf("%s: err = %v, want a ValidationError", name, err)
			continue
		}
		if ve.Missing != c.missing {
			t.Errorf("%s: Missing = %v", name, ve.Missing)
		}
	}
	if _, err := Parse([]byte(`{"type":"message","text":"`+strings.Repeat("a", 2000)+`"}`), Limits{MaxBytes: 1024, MaxAttachments: 1}); err == nil {
		t.Error("oversized activity accepted")
	}
}

func TestIDsAndWatermarks(t *testing.T) {
	id := NewID()
	if !ValidID(id) || len(id) != 22 || NewID() == id {
		t.Fatalf("NewID %q", id)
	}
	for _, bad := range []string{"", "a/b", "a|b", "a b", strings.Repeat("a", 65), "é"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
	aid := ActivityID("conv", 42)
	if aid != "conv|0000042" {
		t.Fatalf("ActivityID = %q", aid)
	}
	if seq, ok := ParseActivityID("conv", aid); !ok || seq != 42 {
		t.Fatalf("ParseActivityID = %d %v", seq, ok)
	}
	for _, bad := range []string{"other|0000042", "conv|42", "conv|-000042", "conv", "conv|00000x2"} {
		if _, ok := ParseActivityID("conv", bad); ok {
			t.Errorf("ParseActivityID(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"": NoWatermark, "-": NoWatermark, "0": 0, "17": 17} {
		if got, err := ParseWatermark(in); err != nil || got != want {
			t.Errorf("ParseWatermark(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"a", "-1", "01", "+1", "1e3", " 1", "9999999999999999999"} {
		if _, err := ParseWatermark(bad); err == nil {
			t.Errorf("ParseWatermark(%q) accepted", bad)
		}
	}
}

func TestClockStrictlyIncreases(t *testing.T) {
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Clock{now: func() time.Time { return fixed }}
	prev := c.Next()
	for i := 0; i < 1000; i++ {
		n := c.Next()
		if !n.After(prev) || n.Format(TimestampFormat) <= prev.Format(TimestampFormat) {
			t.Fatalf("clock went %v -> %v", prev, n)
		}
		prev = n
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"type":"message","text":"hi"}`, `{"type":"event","name":"x","value":{}}`, `{"type":"m","a\"b":[1,{"c":"]}"}],"type":"n"}`, "{ \"type\" : \"m\" , \"k\\u00e9\" : [ ] }", `[]`, `{"type":"message","attachments":[{"name":"a"}]}`, "{\"type\":\"m\",\"from\":{\"id\":\"\\u0000\"}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data, DefaultLimits)
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("non-validation error %T: %v", err, err)
			}
			return
		}
		if a.Type() == "" {
			t.Fatal("accepted an activity without type")
		}
		// The members are exactly what encoding/json sees.
		var std map[string]json.RawMessage
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if len(std) != len(a) {
			t.Fatalf("members %d, encoding/json %d", len(a), len(std))
		}
		for k, v := range std {
			var c bytes.Buffer
			_ = json.Compact(&c, v)
			if got, ok := a[k]; !ok || string(got) != c.String() {
				t.Fatalf("member %q = %s, encoding/json %s", k, got, c.Bytes())
			}
		}
		// Whatever is accepted re-encodes and parses again to the same type.
		out, err := a.Encode()
		if err != nil {
			t.Fatalf("accepted activity does not encode: %v", err)
		}
		b, err := Parse(out, Limits{MaxBytes: 0, MaxAttachments: DefaultLimits.MaxAttachments})
		if err != nil || b.Type() != a.Type() {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzParseWatermark(f *testing.F) {
	for _, s := range []string{"", "-", "0", "12", "abc", "-5", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseWatermark(s)
		if err != nil {
			return
		}
		if n == NoWatermark {
			if s != "" && s != "-" {
				t.Fatalf("%q parsed as no watermark", s)
			}
			return
		}
		if n < 0 || FormatWatermark(n) != s {
			t.Fatalf("%q parsed as %d", s, n)
		}
	})
}

func TestEncodeIsCompactSortedAndFaithful(t *testing.T) {
	for _, in := range []string{
		`{"type":"message","text":"hi"}`,
		"{ \"type\" : \"message\",\n  \"text\": \"a <b> & \\\"c\\\" \\u2028\",\n  \"value\": { \"n\": [1, 2.5e3, null, true] } }",
		`{"type":"message","we\"ird\\key":1,"ключ":"значение","<k>":"&"}`,
		`{"type":"message","nested":{"b":{"c":[{"d":"e"}]},"a":[]},"empty":{}}`,
	} {
		a, err := Parse([]byte(in), DefaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var want, got any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("Encode produced invalid JSON %s: %v", out, err)
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("Encode changed the activity:\n in  %s\n out %s", in, out)
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, out)
		if compact.String() != string(out) {
			t.Errorf("Encode output is not compact: %s", out)
		}
		// Members in key order, as encoding/json writes maps.
		std, _ := json.Marshal(map[string]any(want.(map[string]any)))
		var stdKeys, outKeys []string
		for _, b := range [][]byte{std, out} {
			dec := json.NewDecoder(bytes.NewReader(b))
			_, _ = dec.Token()
			var keys []string
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, k.(string))
				var v json.RawMessage
				_ = dec.Decode(&v)
			}
			if stdKeys == nil {
				stdKeys = keys
			} else {
				outKeys = keys
			}
		}
		if !reflect.DeepEqual(stdKeys, outKeys) {
			t.Errorf("key order %v, want %v", outKeys, stdKeys)
		}
	}
}

func TestEncodeExceptDropsStampedMembers(t *testing.T) {
	a, _ := Parse([]byte(`{"type":"message","id":"forged","timestamp":"1999-01-01T00:00:00Z","conversation":{"id":"other"},"text":"x"}`), DefaultLimits)
	out := a.encodeExcept(stampedKeys[:])
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range stampedKeys {
		if _, ok := m[k]; ok {
			t.Errorf("%s kept: %s", k, out)
		}
	}
	st := &stamp{id: "c|0000001", members: []byte(`"conversation":{"id":"c"},"id":"c|0000001","timestamp":"2026-11-29T00:00:00.0000000Z"`)}
	if err := json.Unmarshal(withStamp(out, st), &m); err != nil || m["id"] != "c|0000001" || m["text"] != "x" || m["conversation"].(map[string]any)["id"] != "c" {
		t.Errorf("stamped = %v, %v", m, err)
	}
	if err := json.Unmarshal(withStamp([]byte(`{}`), st), &m); err != nil {
		t.Errorf("stamping an empty object: %v", err)
	}
}
