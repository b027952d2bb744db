// Package strictjson reads JSON that two parsers cannot read differently:
// no object repeats a key (optionally comparing keys ignoring case, as
// encoding/json matches field names), a bounded nesting depth, and, for
// Decode, no unknown field and nothing after the value.
//
// It returns typed errors and leaves the wording to the caller: each edge
// (admin API, operator routes, sign-in state) keeps its own messages.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// The errors a check or a decode can return besides the ones below.
var (
	ErrInvalid   = errors.New("not valid JSON")
	ErrTooDeep   = errors.New("nested too deep")
	ErrNotObject = errors.New("not a JSON object")
	ErrTrailing  = errors.New("more than one JSON value")
)

// DuplicateKeyError: an object repeats Key (with Options.FoldCase, a key
// differing only in case counts as repeated). Key is the second spelling.
type DuplicateKeyError struct{ Key string }

func (e *DuplicateKeyError) Error() string { return fmt.Sprintf("duplicate key %q", e.Key) }

// UnknownFieldError: the top-level object has Key, which is not exactly
// the JSON name of one of the target struct's fields.
type UnknownFieldError struct{ Key string }

func (e *UnknownFieldError) Error() string { return fmt.Sprintf("unknown field %q", e.Key) }

// Options of a check.
type Options struct {
	// FoldCase: keys of one object that differ only in case are refused
	// as repeated.
	FoldCase bool
	// MaxDepth refuses more than this many nested objects and arrays;
	// 0 leaves only encoding/json's own limit.
	MaxDepth int
}

// Keys refuses b unless it is one valid JSON value in which no object, at
// any depth, repeats a key.
func Keys(b []byte, o Options) error {
	_, err := scan(b, o, nil)
	return err
}

// Decode decodes b into v (a pointer to a struct) strictly: Keys holds,
// the value is an object (or null), each top-level key is exactly the
// JSON name of one of v's fields, no unknown field at any depth, nothing
// after the value. A repeated key is reported before an unknown field.
// A decoding error of encoding/json (such as *json.UnmarshalTypeError)
// is returned as it is.
func Decode(b []byte, v any, o Options) error {
	kind, err := scan(b, o, FieldNames(v))
	if err != nil {
		return err
	}
	if kind != '{' && kind != 'n' {
		return ErrNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return ErrTrailing
	}
	return nil
}

// FieldNames are the exact JSON names of v's struct fields (v a struct or
// a pointer to one; none otherwise).
func FieldNames(v any) map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(v)
	if t == nil {
		return out
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
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

type frame struct {
	obj  bool
	keys map[string]bool
	key  bool // the next token is a key
}

// scan checks b as Keys does and, when names is not nil, records the
// first top-level key not in names (reported once no key is repeated).
// kind is the first byte of the top-level value ('{', '[', '"', 'n', ...).
func scan(b []byte, o Options, names map[string]bool) (kind byte, err error) {
	if !json.Valid(b) {
		return 0, ErrInvalid
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 {
		kind = t[0]
	}
	var unknown error
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*frame
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return kind, unknown
		}
		if err != nil {
			return kind, ErrInvalid
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].key {
			top := stack[n-1]
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := t.(string)
			seen := k
			if o.FoldCase {
				seen = strings.ToLower(k)
			}
			if top.keys[seen] {
				return kind, &DuplicateKeyError{Key: k}
			}
			top.keys[seen] = true
			if n == 1 && names != nil && !names[k] && unknown == nil {
				unknown = &UnknownFieldError{Key: k}
			}
			top.key = false
			continue
		}
		switch d, _ := t.(json.Delim); d {
		case '{', '[':
			stack = append(stack, &frame{obj: d == '{', keys: map[string]bool{}, key: d == '{'})
			if o.MaxDepth > 0 && len(stack) > o.MaxDepth {
				return kind, ErrTooDeep
			}
		case '}', ']':
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
