package adminapi

import (
	"encoding/json"
	"strings"
	"testing"
)

type fuzzReq struct {
	Name   *string   `json:"name"`
	Slot   int       `json:"slot"`
	Scopes *[]string `json:"scopes"`
}

// FuzzStrictJSON: any body is either refused or decoded with no repeated
// or case-variant top-level key; never a panic.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a"}`, `{"name":"a","name":"b"}`, `{"NAME":"a"}`, `{"x":{"a":1,"a":2}}`,
		`[1,2]`, `{"scopes":["a","b"]}`, `{"slot":1} {}`, `{"name":"a","Name":"b"}`, `"x"`, `null`, `{"a":[{"b":{}}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v fuzzReq
		if err := strictJSON([]byte(body), &v); err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("accepted %q, which is no JSON object: %v", body, err)
		}
		for k := range m {
			if k != "name" && k != "slot" && k != "scopes" {
				t.Fatalf("accepted %q with key %q", body, k)
			}
		}
	})
}

func TestStrictJSONRefuses(t *testing.T) {
	for _, b := range []string{`{"name":"a","name":"b"}`, `{"Name":"a"}`, `{"name":"a","NAME":"b"}`, `{"x":1}`, `{"name":"a"}x`,
		`{"scopes":[{"a":1,"a":2}]}`, `[]`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		var v fuzzReq
		if err := strictJSON([]byte(b), &v); err == nil {
			t.Errorf("%s accepted", b)
		}
	}
	var v fuzzReq
	if err := strictJSON([]byte(`{"name":"a","slot":2,"scopes":["x"]}`), &v); err != nil || *v.Name != "a" || v.Slot != 2 {
		t.Errorf("valid body: %v %+v", err, v)
	}
}
