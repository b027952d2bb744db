package conversation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
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
	for _, s := range []string{`{"type":"message","text":"hi"}`, `{"type":"event","name":"x","value":{}}`, `{"type":"m","a\"b":[1,{"c":"]}"}],"type":"n"}`, "{ \"type\" : \"m\" , \"k\\u00e9\" : [ ] }", `[]`, `{"type":"message","attachments":[{"name":"a"}]}`, "{\"type\":\"m\",\"from\":{\"id\":\"\\u0000\"}}",
		`{"type":"message","Conversation":{"id":"x"}}`, `{"type":"m","ID":"x","Timestamp":"t"}`, "{\"type\":\"m\",\"\u017ferviceUrl\":\"x\"}",
		`{"type":"m","text":"a","Text":"b"}`, `{"type":"m","text":"a","text":"b"}`, `{"type":"m","from":{"id":"a","ID":"b"}}`} {
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
		// No name twice, no two names that fold together, and nothing but
		// Parley's own exact names folds to a name Parley owns, by
		// encoding/json's rule (bytes.EqualFold is its foldName equality).
		dec := json.NewDecoder(bytes.NewReader(data))
		_, _ = dec.Token()
		var names []string
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, k.(string))
			var v json.RawMessage
			_ = dec.Decode(&v)
		}
		if len(names) != len(a) {
			t.Fatalf("accepted %d members for %d names: a duplicate", len(a), len(names))
		}
		for i, k := range names {
			for _, o := range names[i+1:] {
				if bytes.EqualFold([]byte(k), []byte(o)) {
					t.Fatalf("accepted %q beside %q", k, o)
				}
			}
			for _, r := range fuzzOwned {
				if k != r && bytes.EqualFold([]byte(k), []byte(r)) {
					t.Fatalf("accepted %q, a case variant of %q", k, r)
				}
			}
		}
		// Once the edges set Parley's members, a case-insensitive,
		// last-wins decoder reads exactly those.
		st := a.Clone()
		st.Set("id", "P-id")
		st.Set("timestamp", "P-ts")
		st.Set("conversation", map[string]string{"id": "P-conv"})
		st.Set("from", Account{ID: "P-from", Role: "user"})
		st.Set("recipient", Account{ID: "P-bot", Role: "bot"})
		st.Set("channelId", "P-channel")
		st.Set("serviceUrl", "P-svc")
		delete(st, "callerId")
		enc, _ := st.Encode()
		var bot struct {
			Id, Timestamp, ChannelId, ServiceUrl, CallerId string
			Conversation, From, Recipient                  struct{ Id string }
		}
		if err := json.Unmarshal(enc, &bot); err != nil {
			t.Fatalf("stamped activity does not decode: %v", err)
		}
		if bot.Id != "P-id" || bot.Timestamp != "P-ts" || bot.Conversation.Id != "P-conv" || bot.From.Id != "P-from" || bot.Recipient.Id != "P-bot" ||
			bot.ChannelId != "P-channel" || bot.ServiceUrl != "P-svc" || bot.CallerId != "" {
			t.Fatalf("a Go bot reads %+v from %s", bot, enc)
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

// fuzzOwned are the members Parley sets on some path (issue 9).
var fuzzOwned = []string{"id", "timestamp", "conversation", "from", "recipient", "channelId", "serviceUrl", "callerId"}

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

// Case variants of the members Parley owns, fold-duplicates and exact
// duplicates are refused, naming the member (names.go says why).
func TestParseRefusesAmbiguousMemberNames(t *testing.T) {
	for in, field := range map[string]string{
		`{"type":"message","Conversation":{"id":"other"}}`:                          "Conversation",
		`{"type":"message","conversation":{"id":"c"},"CONVERSATION":{}}`:            "CONVERSATION",
		`{"type":"message","Id":"forged"}`:                                          "Id",
		`{"type":"message","Timestamp":"1999-01-01T00:00:00Z"}`:                     "Timestamp",
		`{"type":"message","FROM":{"id":"x"}}`:                                      "FROM",
		`{"type":"message","Recipient":{"id":"x"}}`:                                 "Recipient",
		`{"type":"message","channelID":"x"}`:                                        "channelID",
		`{"type":"message","serviceURL":"x"}`:                                       "serviceURL",
		`{"type":"message","CallerId":"x"}`:                                         "CallerId",
		`{"type":"message","ReplyToId":"x"}`:                                        "ReplyToId",
		`{"type":"message","Type":"conversationUpdate"}`:                            "Type",
		`{"type":"message","Attachments":[{"contentUrl":"http://x/"}]}`:             "Attachments",
		`{"type":"message","ChAnnelDAtA":{"streamType":"final"}}`:                   "ChAnnelDAtA",
		"{\"type\":\"message\",\"\\u0049d\":\"forged\"}":                            "Id",             // escaped name
		"{\"type\":\"message\",\"time\u017ftamp\":\"x\"}":                           "time\u017ftamp", // long s folds to s
		"{\"type\":\"message\",\"\u0131d\":\"x\"}":                                  "\u0131d",        // dotless i: .NET upper-cases it to I
		"{\"type\":\"message\",\"\u0130d\":\"x\"}":                                  "\u0130d",        // dotted I: lower-cases to i
		`{"type":"message","text":"a","Text":"b"}`:                                  "Text",
		`{"type":"message","value":1,"VALUE":2}`:                                    "VALUE",
		"{\"type\":\"message\",\"kind\":1,\"\u212aind\":2}":                         "kind", // Kelvin sign folds to k
		`{"type":"message","text":"a","text":"b"}`:                                  "text",
		`{"type":"message","id":"a","id":"b"}`:                                      "id",
		`{"type":"message","from":{"id":"x","ID":"dl_victim"}}`:                     "from.ID",
		`{"type":"message","from":{"Id":"dl_victim"}}`:                              "from.Id",
		`{"type":"message","from":{"id":"x","id":"y"}}`:                             "from.id",
		`{"type":"message","recipient":{"iD":"x"}}`:                                 "recipient.iD",
		`{"type":"message","conversation":{"id":"c","Id":"other"}}`:                 "conversation.Id",
		`{"type":"message","attachments":[{"name":"a","ContentUrl":"http:"}]}`:      "attachments[0].ContentUrl",
		`{"type":"message","attachments":[{},{"contentUrl":"a","contentUrl":"b"}]}`: "attachments[1].contentUrl",
		`{"type":"message","attachments":[{"x":1,"X":2}]}`:                          "attachments[0].X",
	} {
		_, err := Parse([]byte(in), DefaultLimits)
		ve, ok := err.(*ValidationError)
		if !ok || ve.Field != field {
			t.Errorf("%s: err = %v, want a ValidationError on %q", in, err, field)
		}
	}
	for _, in := range []string{
		`{"type":"message","localTimestamp":"2026-01-01T00:00:00+01:00","localTimezone":"Europe/Paris","channelData":{"clientActivityID":"a","ClientActivityID":"b"}}`,
		`{"type":"message","id":"x","timestamp":"t","conversation":{"id":"c","isGroup":false},"from":{"id":"u","name":"n","role":"user"},"serviceUrl":"s","channelId":"c","callerId":"c","replyToId":"r"}`,
		`{"type":"message","value":{"a":1,"A":2},"entities":[{"type":"x","Type":"y"}]}`,
		`{"type":"message","attachments":[{"contentType":"text/plain","content":"x","name":"n"}]}`,
	} {
		if _, err := Parse([]byte(in), DefaultLimits); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// foldName never separates what encoding/json folds together, and binds
// every rune whose simple case mapping is an ASCII letter to that letter.
func TestFoldNameCoversEncodingJSON(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		f := foldName(string(r))
		if g := foldName(string(unicode.SimpleFold(r))); g != f {
			t.Fatalf("%U folds to %q but its SimpleFold %U to %q", r, f, unicode.SimpleFold(r), g)
		}
		for _, m := range []rune{unicode.ToUpper(r), unicode.ToLower(r), unicode.ToTitle(r), unicode.TurkishCase.ToUpper(r), unicode.TurkishCase.ToLower(r)} {
			if m < utf8.RuneSelf && unicode.IsLetter(m) && f != foldName(string(m)) {
				t.Fatalf("%U maps to %q, but folds to %q", r, m, f)
			}
		}
	}
	// encoding/json's own decoder agrees on the tricky ones.
	for _, name := range []string{"ſerviceUrl", "CONVERSATION", "Id", "iD"} {
		var v struct{ ServiceUrl, Conversation, Id string }
		if err := json.Unmarshal([]byte(`{"`+name+`":"x"}`), &v); err != nil || v.ServiceUrl+v.Conversation+v.Id != "x" {
			t.Fatalf("encoding/json does not bind %q", name)
		}
		if _, err := Parse([]byte(`{"type":"message","`+name+`":"x"}`), DefaultLimits); err == nil {
			t.Fatalf("%q accepted", name)
		}
	}
}

// The slow path (taken when two folded names share a hash) reaches the
// same verdicts as the fast one.
func TestCheckNamesSlowAgrees(t *testing.T) {
	for _, names := range [][]string{
		{"type", "text"}, {"type", "Type"}, {"type", "Conversation"}, {"a", "b", "A"}, {"kind", "\u212aind"}, {"x"},
	} {
		fast, slow := checkNames(names, ownedMembers, ""), checkNamesSlow(names, ownedMembers, "")
		if (fast == nil) != (slow == nil) || (fast != nil && fast.Error() != slow.Error()) {
			t.Errorf("%q: fast %v, slow %v", names, fast, slow)
		}
	}
}

// Many members, at the top level or in a nested object Parley checks, are
// still checked in linear time (a quadratic check would let one request
// burn seconds of CPU), and a duplicate among them is still found.
func TestManyMemberNames(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"type":"message","from":{`)
	for i := 0; i < 20000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":0`, i)
	}
	b.WriteString(`}}`)
	lim := Limits{MaxBytes: 1 << 20, MaxAttachments: 10}
	if _, err := Parse([]byte(b.String()), lim); err != nil {
		t.Fatal(err)
	}
	dup := strings.Replace(b.String(), `"k19999":0`, `"k7":1`, 1)
	if _, err := Parse([]byte(dup), lim); err == nil || err.(*ValidationError).Field != "from.k7" {
		t.Fatalf("duplicate among many: %v", err)
	}
}
