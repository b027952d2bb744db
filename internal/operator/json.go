package operator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/strictjson"
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

// strictJSON decodes b into v (a pointer to a struct) as decode
// describes (keys compared exactly), in these routes' words.
func strictJSON(b []byte, v any) error {
	err := strictjson.Decode(b, v, strictjson.Options{})
	var dup *strictjson.DuplicateKeyError
	var unknown *strictjson.UnknownFieldError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, strictjson.ErrInvalid):
		return errors.New("the body is not acceptable JSON: invalid JSON")
	case errors.As(err, &dup):
		return fmt.Errorf("the body is not acceptable JSON: duplicate key %q", dup.Key)
	case errors.Is(err, strictjson.ErrNotObject):
		return errors.New("the body must be a JSON object")
	case errors.As(err, &unknown):
		return fmt.Errorf("unknown field %q: the fields are written in lower case as documented", unknown.Key)
	case errors.As(err, &te):
		return fmt.Errorf("field %q has the wrong type: want %s", te.Field, te.Type)
	case errors.Is(err, strictjson.ErrTrailing):
		return errors.New("the body must hold one JSON object")
	}
	return errors.New("the body is not acceptable JSON")
}
