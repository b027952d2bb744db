package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Admin configures the admin listener: the admin API (/admin/v1/...) and
// the web console, never served on the public listener.
type Admin struct {
	// Listen is the admin listener's address (host:port), or "off" (the
	// default: nothing listens until an operator turns it on). On loopback
	// it serves plain HTTP (the console's cookie is then parley_admin);
	// on any other address it serves TLS with tls.cert_file and
	// tls.key_file, the main listener's certificate, and refuses to start
	// without them.
	Listen string `yaml:"listen"`
}

// AdminOff turns the admin listener off.
const AdminOff = "off"

// DefaultAdmin is Admin before the file and environment apply: off. The
// admin API changes bots, secrets and keys; it listens only where an
// operator asked for it (127.0.0.1:9445 is the suggested address).
func DefaultAdmin() Admin { return Admin{Listen: AdminOff} }

// Off reports whether the admin listener is turned off.
func (a Admin) Off() bool { return a.Listen == AdminOff || a.Listen == "" }

// TLS reports whether the admin listener serves TLS: whenever it is not on
// loopback (session cookies and tokens never cross a network in clear).
func (a Admin) TLS() bool { return !a.Off() && !IsLoopback(a.Listen) }

func (a *Admin) applyEnv(env func(string) (string, bool)) {
	if v, ok := env("PARLEY_ADMIN_LISTEN"); ok {
		a.Listen = v
	}
}

// validateAdmin checks Admin against the rest of the configuration.
func (c Config) validateAdmin() []error {
	a := c.Admin
	if a.Off() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("admin.listen: "+format, args...))
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return []error{fmt.Errorf("admin.listen: %q is not host:port (e.g. 127.0.0.1:9445) or off", a.Listen)}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("port %q is not valid", port)
	}
	if n, _ := strconv.Atoi(port); n != 0 {
		if sameAddress(c.Listen, a.Listen) {
			bad("%q is the main listener's address (listen); the admin listener needs its own port", a.Listen)
		}
		if !c.Metrics.Off() && sameAddress(c.Metrics.Listen, a.Listen) {
			bad("%q is the metrics listener's address (metrics.listen); the admin listener needs its own port", a.Listen)
		}
	}
	if IsLoopback(a.Listen) {
		return errs
	}
	what := "every interface"
	if strings.TrimSpace(host) != "" {
		what = host
	}
	if c.InsecureHTTP || c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		bad("%q (%s) is not loopback, so the admin listener serves TLS with tls.cert_file and tls.key_file, which are not set (insecure_http); listen on 127.0.0.1:9445 and reach it through an SSH tunnel, or configure TLS", a.Listen, what)
	}
	return errs
}
