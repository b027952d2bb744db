package connector

import (
	"errors"
	"net/url"
)

// RedactURL is a bot endpoint as logs, errors and stored delivery errors may
// show it: scheme, host and path only. Userinfo and the query are replaced
// by REDACTED (Azure Functions and others put their function key in
// ?code=), the fragment is dropped, and an unparseable value is not echoed.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return "[unparseable URL]"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if u.User != nil {
		r.User = url.User("REDACTED")
	}
	s := r.String()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?REDACTED"
	}
	return s
}

// RedactError removes endpoint secrets from err: net/http's *url.Error
// (client errors, request building) embeds the whole request URL, with
// its query. It rewrites that URL in place and returns err.
func RedactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}
