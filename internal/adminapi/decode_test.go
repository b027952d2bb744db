package adminapi

import (
	"strings"
	"testing"
)

type fuzzReq struct {
	Name   *string   `json:"name"`
	Slot   int       `json:"slot"`
	Scopes *[]string `json:"scopes"`
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
