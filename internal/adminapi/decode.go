package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/parley-gw/parley/internal/admin"
)

// decode reads r's JSON body into v strictly: one object, no unknown
// field, no key repeated (two parsers could read different values), no
// key that differs from a field's name only in case (encoding/json would
// take it), nothing after it. It writes the error answer and returns
// false when the body is refused.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		admin.WriteError(w, http.StatusRequestEntityTooLarge, admin.CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody))
		return false
	}
	if err != nil {
		admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, "could not read the body")
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if err := strictJSON(b, v); err != nil {
		admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func strictJSON(b []byte, v any) error {
	if !json.Valid(b) {
		return errors.New("not valid JSON")
	}
	if err := checkKeys(b, fieldNames(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cleanJSONErr(err)
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func cleanJSONErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: want %s", te.Field, te.Type)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// fieldNames are the exact JSON names of v's struct fields.
func fieldNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// checkKeys refuses a repeated key in any object, a key repeated with
// another case, and a top-level key that is not exactly one of names.
func checkKeys(b []byte, names map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool
	}
	var stack []*frame
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errors.New("not valid JSON")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].key = true
				}
				continue
			}
			k := t.(string)
			fold := strings.ToLower(k)
			if top.keys[fold] {
				return fmt.Errorf("key %q given twice (keys are compared ignoring case)", k)
			}
			top.keys[fold] = true
			if len(stack) == 1 && !names[k] {
				return fmt.Errorf("unknown field %q", k)
			}
			top.key = false
			continue
		}
		switch d, _ := t.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
			if len(stack) > 32 {
				return errors.New("nested too deep")
			}
			continue
		case '[':
			stack = append(stack, &frame{})
			if len(stack) > 32 {
				return errors.New("nested too deep")
			}
			continue
		case '}', ']':
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
}
