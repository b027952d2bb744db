package admin

import (
	"encoding/json"
	"net/http"
)

// ErrorBody is the admin API's one error shape:
//
//	{"error": {"code": "forbidden", "message": "what was wrong and what to do"}}
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error's code (stable, for programs) and message (for
// people). The message says what was wrong, never how the server is built.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Stable error codes.
const (
	CodeBadRequest      = "bad_request"
	CodeUnauthenticated = "unauthenticated"    // 401: no or bad session / token
	CodeForbidden       = "forbidden"          // 403: role or bot scope
	CodeCSRF            = "csrf"               // 403: missing or wrong X-CSRF-Token
	CodeReauth          = "reauth_required"    // 403: sign in again (POST /session/reauth)
	CodeMFARequired     = "mfa_required"       // 401: password right, second factor needed or wrong
	CodeNotFound        = "not_found"          // 404
	CodeConflict        = "conflict"           // 409: name taken, bot has sites...
	CodeTooMany         = "too_many_requests"  // 429: locked out or rate limited
	CodeTooLarge        = "request_too_large"  // 413
	CodeUnsupported     = "unsupported_media"  // 415
	CodeInternal        = "internal"           // 500
	CodeUnrecorded      = "unrecorded"         // 500: the change was made, its audit event could not be recorded; "result" holds what it made
	CodeMethod          = "method_not_allowed" // 405
	CodeNotImplemented  = "not_implemented"    // 501: a route whose handler is not wired in this build
	CodeUnavailable     = "unavailable"        // 503: the storage is full, or a service Parley depends on (the SSO provider) cannot be reached
)

// UnrecordedBody is the answer to a change that returned something shown
// once (a secret) and was made, but whose audit event could not be
// recorded: the error (code unrecorded) and, beside it, the result, so
// that the secret is not lost.
type UnrecordedBody struct {
	Error  ErrorDetail `json:"error"`
	Result any         `json:"result"`
}

// WriteError writes the admin error shape. It is the admin edge's only
// error writer.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}

// WriteJSON writes v with status, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
