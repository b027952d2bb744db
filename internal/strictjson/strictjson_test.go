package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type req struct {
	Name         *string   `json:"name"`
	Password     string    `json:"password"`
	TOTP         string    `json:"totp"`
	RecoveryCode string    `json:"recovery_code"`
	Slot         int       `json:"slot"`
	Scopes       *[]string `json:"scopes"`
	Skip         string    `json:"-"`
}

func TestKeys(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	fold := Options{FoldCase: true}
	exact := Options{}
	for _, c := range []struct {
		in   string
		o    Options
		want error // nil, ErrInvalid, ErrTooDeep, or a *DuplicateKeyError
	}{
		{`{}`, exact, nil},
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, fold, nil},
		{`{"a":{},"b":[],"c":[[{}]]}`, fold, nil},
		{`"s"`, exact, nil},
		{`{"a":1,"A":2}`, exact, nil},
		{`{"x":{"a":1,"A":2}}`, exact, nil},
		{`{"a":1,"a":2}`, exact, &DuplicateKeyError{"a"}},
		{`{"x":{"a":1,"a":2}}`, exact, &DuplicateKeyError{"a"}},
		{`{"x":[{"a":1,"a":2}]}`, exact, &DuplicateKeyError{"a"}},
		{`{"msAppId":"a","msAppId":"b"}`, exact, &DuplicateKeyError{"msAppId"}},
		{`{"a":1,"A":2}`, fold, &DuplicateKeyError{"A"}},
		{`{"x":[{"name":1,"NAME":2}]}`, fold, &DuplicateKeyError{"NAME"}},
		{`{"a":1`, exact, ErrInvalid},
		{`{"a":1}{`, exact, ErrInvalid},
		{`{"a":1} {}`, exact, ErrInvalid},
		{``, exact, ErrInvalid},
		{deep(100), exact, nil},
		{deep(32), Options{MaxDepth: 32}, nil},
		{deep(33), Options{MaxDepth: 32}, ErrTooDeep},
		{`{"a":` + deep(32) + `}`, Options{MaxDepth: 32}, ErrTooDeep},
		{deep(100), Options{MaxDepth: 64}, ErrTooDeep},
	} {
		err := Keys([]byte(c.in), c.o)
		var dk *DuplicateKeyError
		switch want := c.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("Keys(%.40s, %+v) = %v, want nil", c.in, c.o, err)
			}
		case *DuplicateKeyError:
			if !errors.As(err, &dk) || dk.Key != want.Key {
				t.Errorf("Keys(%.40s, %+v) = %v, want duplicate %q", c.in, c.o, err, want.Key)
			}
		default:
			if !errors.Is(err, want) {
				t.Errorf("Keys(%.40s, %+v) = %v, want %v", c.in, c.o, err, want)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in   string
		o    Options
		want string // "" accepted; else the error's text (a prefix)
	}{
		{`{"name":"a","slot":2,"scopes":["x"]}`, Options{FoldCase: true}, ""},
		{`{}`, Options{}, ""},
		{`null`, Options{}, ""},
		{` {"slot":1} `, Options{}, ""},
		{`{"name":"a","name":"b"}`, Options{}, `duplicate key "name"`},
		{`{"name":"a","NAME":"b"}`, Options{FoldCase: true}, `duplicate key "NAME"`},
		{`{"name":"a","NAME":"b"}`, Options{}, `unknown field "NAME"`},
		{`{"Name":"a"}`, Options{FoldCase: true}, `unknown field "Name"`},
		{`{"x":1}`, Options{}, `unknown field "x"`},
		{`{"-":1}`, Options{}, `unknown field "-"`},
		{`{"Skip":"a"}`, Options{}, `unknown field "Skip"`},
		// a repeated key anywhere is reported before an unknown field
		{`{"x":1,"y":{"a":1,"a":2}}`, Options{}, `duplicate key "a"`},
		{`{"scopes":[{"a":1,"a":2}]}`, Options{}, `duplicate key "a"`},
		{`[]`, Options{}, ErrNotObject.Error()},
		{`"x"`, Options{}, ErrNotObject.Error()},
		{`1`, Options{}, ErrNotObject.Error()},
		{`{"name":"a"}x`, Options{}, ErrInvalid.Error()},
		{`{"name":1}`, Options{}, "json: cannot unmarshal"},
		{`{"slot":"1"}`, Options{}, "json: cannot unmarshal"},
		{strings.Repeat("[", 40) + strings.Repeat("]", 40), Options{MaxDepth: 32}, ErrTooDeep.Error()},
	} {
		var v req
		err := Decode([]byte(c.in), &v, c.o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Decode(%s, %+v) = %v, want nil", c.in, c.o, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("Decode(%s, %+v) = %v, want %q", c.in, c.o, err, c.want)
		}
	}
	var v req
	if err := Decode([]byte(`{"name":"a","slot":2,"scopes":["x"]}`), &v, Options{}); err != nil || *v.Name != "a" || v.Slot != 2 || (*v.Scopes)[0] != "x" {
		t.Errorf("valid body: %v %+v", err, v)
	}
	var te *json.UnmarshalTypeError
	if err := Decode([]byte(`{"slot":"1"}`), &v, Options{}); !errors.As(err, &te) || te.Field != "slot" {
		t.Errorf("wrong type: %v, want an *json.UnmarshalTypeError on slot", err)
	}
}

func TestFieldNames(t *testing.T) {
	got := FieldNames(&req{})
	for _, k := range []string{"name", "password", "totp", "recovery_code", "slot", "scopes"} {
		if !got[k] {
			t.Errorf("FieldNames lacks %q: %v", k, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("FieldNames = %v, want 6 names", got)
	}
	var pp **req
	if len(FieldNames(pp)) != 6 || len(FieldNames(3)) != 0 || len(FieldNames(nil)) != 0 {
		t.Error("FieldNames of a pointer to pointer, an int, nil")
	}
}

// FuzzNoDuplicateKeys: whatever Keys accepts is valid JSON.
func FuzzNoDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":2}]}`, `{"a":1,"a":1}`, `[{"x":{}}]`, `"s"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, o := range []Options{{}, {FoldCase: true, MaxDepth: 32}, {MaxDepth: 64}} {
			if Keys(b, o) == nil && !json.Valid(b) {
				t.Fatalf("accepted invalid JSON %q with %+v", b, o)
			}
		}
	})
}

// FuzzStrictJSON: whatever Decode accepts is valid JSON, an object (or
// null) with only the struct's exact keys, none repeated (ignoring case
// with FoldCase); never a panic. The seeds are those of the former
// targets of internal/operator and internal/adminapi.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","password":"b","totp":"1"}`, `{"name":"a","name":"b"}`, `{"Name":"a"}`, `{"name":{"x":1,"x":2}}`, `[]`, `{}`, `{"bots":["a","b"]}`,
		`{"name":"a"}`, `{"NAME":"a"}`, `{"x":{"a":1,"a":2}}`, `[1,2]`, `{"scopes":["a","b"]}`, `{"slot":1} {}`, `{"name":"a","Name":"b"}`, `"x"`, `null`, `{"a":[{"b":{}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, o := range []Options{{}, {FoldCase: true, MaxDepth: 32}} {
			var v req
			if Decode(b, &v, o) != nil {
				continue
			}
			if !json.Valid(b) {
				t.Fatalf("accepted invalid JSON %q", b)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("accepted a non-object %q", b)
			}
			seen := map[string]bool{}
			for k := range m {
				switch k {
				case "name", "password", "totp", "recovery_code", "slot", "scopes":
				default:
					t.Fatalf("accepted key %q", k)
				}
				if o.FoldCase && seen[strings.ToLower(k)] {
					t.Fatalf("accepted %q with case-variant keys", b)
				}
				seen[strings.ToLower(k)] = true
			}
		}
	})
}
