package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/parley-gw/parley/internal/admin"
)

// MaxBody bounds a request body of these routes.
const MaxBody = 16 << 10

// decode reads r's JSON body into v strictly: application/json, at most
// MaxBody bytes, one object, no unknown field, no key repeated, no key
// that matches a field only case-insensitively (encoding/json would
// accept "PASSWORD" for "password": two parsers could disagree). It
// writes the error answer and returns false when the body is refused.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		admin.WriteError(w, http.StatusUnsupportedMediaType, admin.CodeUnsupported, "send the body as Content-Type: application/json")
		return false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		admin.WriteError(w, http.StatusRequestEntityTooLarge, admin.CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody))
		return false
	}
	if err != nil {
		admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, "the body could not be read")
		return false
	}
	if err := strictJSON(b, v); err != nil {
		admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, err.Error())
		return false
	}
	return true
}

// strictJSON decodes b into v (a pointer to a struct) as decode describes.
func strictJSON(b []byte, v any) error {
	if err := noDuplicateKeys(b); err != nil {
		return fmt.Errorf("the body is not acceptable JSON: %v", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return errors.New("the body must be a JSON object")
	}
	allowed := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			allowed[name] = true
		}
	}
	for k := range top {
		if !allowed[k] {
			return fmt.Errorf("unknown field %q: the fields are written in lower case as documented", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %q has the wrong type: want %s", te.Field, te.Type)
		}
		return errors.New("the body is not acceptable JSON")
	}
	if dec.More() {
		return errors.New("the body must hold one JSON object")
	}
	return nil
}

// noDuplicateKeys refuses JSON with a key repeated in one object (as
// internal/usertoken does for its state: two parsers could read
// different values).
func noDuplicateKeys(b []byte) error {
	if !json.Valid(b) {
		return errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*jsonFrame
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				markValueDone(stack)
				continue
			}
			k, _ := t.(string)
			if top.keys[k] {
				return fmt.Errorf("duplicate key %q", k)
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		switch d, _ := t.(json.Delim); d {
		case '{':
			stack = append(stack, &jsonFrame{obj: true, keys: map[string]bool{}, key: true})
		case '[':
			stack = append(stack, &jsonFrame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
			markValueDone(stack)
		default:
			markValueDone(stack)
		}
	}
}

type jsonFrame struct {
	obj  bool
	keys map[string]bool
	key  bool // the next token is a key
}

// markValueDone: a value of the enclosing object ended, a key is next.
func markValueDone(stack []*jsonFrame) {
	if len(stack) > 0 && stack[len(stack)-1].obj {
		stack[len(stack)-1].key = true
	}
}
