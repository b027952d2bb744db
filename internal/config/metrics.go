package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// Metrics configures the metrics listener: /metrics (Prometheus) and the
// operator endpoints registered on it are never served on the public
// listener.
type Metrics struct {
	// Listen is the metrics listener's address (host:port), or "off" for
	// none. Loopback (the default, 127.0.0.1:9464) serves plain HTTP to
	// local scrapers. Any other address serves TLS with tls.cert_file and
	// requires BearerTokenFile.
	Listen string `yaml:"listen"`
	// BearerTokenFile holds the token scrapers send as "Authorization:
	// Bearer <token>" (at least 32 characters, mode 0600 or stricter).
	// Required when Listen is not loopback; on loopback, optional (when
	// set, it is required there too).
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// MetricsOff turns the metrics listener off.
const MetricsOff = "off"

// DefaultMetrics is Metrics before the file and environment apply. Port
// 9464 rather than 9090: a Prometheus server on the same host listens on
// 9090 by default.
func DefaultMetrics() Metrics { return Metrics{Listen: "127.0.0.1:9464"} }

// Off reports whether the metrics listener is turned off.
func (m Metrics) Off() bool { return m.Listen == MetricsOff }

// TLS reports whether the metrics listener serves TLS: whenever it is not
// on loopback (a bearer token must not cross a network in clear).
func (m Metrics) TLS() bool { return !m.Off() && !IsLoopback(m.Listen) }

func (c *Config) applyMetricsEnv(env func(string) (string, bool)) error {
	if v, ok := env("PARLEY_METRICS_LISTEN"); ok {
		c.Metrics.Listen = v
	}
	if v, ok := env("PARLEY_METRICS_BEARER_TOKEN_FILE"); ok {
		c.Metrics.BearerTokenFile = v
	}
	if v, ok := env("PARLEY_ACCESS_LOG"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("PARLEY_ACCESS_LOG: %q is not a boolean (true or false)", v)
		}
		c.AccessLog = b
	}
	return nil
}

// validateMetrics checks Metrics against the rest of the configuration.
func (c Config) validateMetrics() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("metrics."+field+": "+format, a...))
	}
	m := c.Metrics
	if m.Off() {
		if m.BearerTokenFile != "" {
			bad("bearer_token_file", "is set but metrics.listen is off; remove it, or set metrics.listen")
		}
		return errs
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		return append(errs, fmt.Errorf("metrics.listen: %q is not host:port (e.g. 127.0.0.1:9464) or off", m.Listen))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("listen", "port %q is not valid", port)
	}
	if n, _ := strconv.Atoi(port); n != 0 && sameAddress(c.Listen, m.Listen) {
		bad("listen", "%q is the main listener's address (listen); the metrics listener needs its own port", m.Listen)
	}
	if strings.ContainsAny(m.BearerTokenFile, "\x00\n") {
		bad("bearer_token_file", "is not a file path")
	}
	if IsLoopback(m.Listen) {
		return errs
	}
	what := "every interface"
	if host != "" {
		what = host
	}
	if m.BearerTokenFile == "" {
		bad("bearer_token_file", "is required when metrics.listen is not loopback (%s): a file holding a token of at least 32 characters (e.g. openssl rand -hex 32), mode 0600; scrapers send it as 'Authorization: Bearer <token>'. Or listen on 127.0.0.1", what)
	}
	if c.InsecureHTTP || c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		bad("listen", "%q is not loopback, so the metrics listener serves TLS with tls.cert_file and tls.key_file, which are not set (insecure_http); listen on 127.0.0.1", m.Listen)
	}
	return errs
}

// sameAddress reports whether two listen addresses collide: the same port
// on the same host, or on every interface.
func sameAddress(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// MinMetricsToken is the shortest bearer token accepted (32 characters:
// 128 bits and more from `openssl rand -hex 32`).
const MinMetricsToken = 32

// BearerToken reads BearerTokenFile: nil when none is configured. The
// token is the file's first line (surrounding spaces removed). A file
// readable by group or others, an empty or short token are refused, like
// the master key file; the error never shows the token.
func (m Metrics) BearerToken() ([]byte, error) {
	if m.BearerTokenFile == "" || m.Off() {
		return nil, nil
	}
	if err := regularFile(m.BearerTokenFile); err != nil {
		return nil, fmt.Errorf("metrics.bearer_token_file: %w", err)
	}
	f, err := os.Open(m.BearerTokenFile)
	if err != nil {
		return nil, fmt.Errorf("metrics.bearer_token_file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("metrics.bearer_token_file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics.bearer_token_file: %s is not a regular file", m.BearerTokenFile)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("metrics.bearer_token_file: %s is readable by others (mode %v); chmod 600 it", m.BearerTokenFile, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("metrics.bearer_token_file: %w", err)
	}
	if len(b) > 4096 {
		return nil, errors.New("metrics.bearer_token_file: longer than 4096 bytes; it holds one token (e.g. openssl rand -hex 32)")
	}
	line, _, _ := strings.Cut(string(b), "\n")
	tok := strings.TrimSpace(line)
	if len(tok) < MinMetricsToken {
		return nil, fmt.Errorf("metrics.bearer_token_file: %s holds %d characters on its first line; at least %d are needed (e.g. openssl rand -hex 32 > %s)", m.BearerTokenFile, len(tok), MinMetricsToken, m.BearerTokenFile)
	}
	for _, c := range tok {
		if c <= ' ' || c > '~' {
			return nil, fmt.Errorf("metrics.bearer_token_file: %s holds a character that cannot be sent in an Authorization header (printable ASCII without spaces only)", m.BearerTokenFile)
		}
	}
	return []byte(tok), nil
}

// regularFile refuses a path that is not a regular file (after links)
// before it is opened: opening a FIFO to read blocks until a writer comes.
func regularFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (mode %v)", path, st.Mode())
	}
	return nil
}
