package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/strictjson"
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

// strictJSON decodes b into v as decode describes (keys compared
// ignoring case, at most 32 levels deep), in this API's words.
func strictJSON(b []byte, v any) error {
	err := strictjson.Decode(b, v, strictjson.Options{FoldCase: true, MaxDepth: 32})
	var dup *strictjson.DuplicateKeyError
	var unknown *strictjson.UnknownFieldError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &dup):
		return fmt.Errorf("key %q given twice (keys are compared ignoring case)", dup.Key)
	case errors.As(err, &unknown):
		return fmt.Errorf("unknown field %q", unknown.Key)
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %s", te.Field, te.Type)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}
