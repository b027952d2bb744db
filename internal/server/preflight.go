package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring"
)

// ExitConfig is the exit code of a start refused by Preflight: EX_CONFIG
// of sysexits.h, so a supervisor can tell a configuration to fix from a
// crash (systemd: RestartPreventExitStatus=78).
const ExitConfig = 78

// CertExpiryWarning is how close to its expiry a certificate makes the
// start log a warning.
const CertExpiryWarning = 14 * 24 * time.Hour

// Problem is one reason the gateway cannot start: the configuration field
// it is about and what is wrong and what to do.
type Problem struct {
	Field   string
	Message string
}

// PreflightError lists every problem found before the start.
type PreflightError struct {
	Problems []Problem
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	b.WriteString("parley serve cannot start; nothing was created or changed:")
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.Field + ": " + p.Message)
	}
	return b.String()
}

// ExitCode is ExitConfig.
func (e *PreflightError) ExitCode() int { return ExitConfig }

// Close closes every listener (for a start abandoned after Preflight).
func (l Listeners) Close() error {
	var errs []error
	for _, ln := range []net.Listener{l.Main, l.Metrics, l.Admin} {
		if ln != nil {
			errs = append(errs, ln.Close())
		}
	}
	return errors.Join(errs...)
}

// Preflight checks, before anything is created and before the gateway
// says it serves, what `parley serve` needs of cfg: the TLS certificate
// and key (they load, match, and are valid now), the master key (its file
// is private and holds a key, or PARLEY_MASTER_KEY does), the data
// directory (a directory this process can write, not writable by every
// user), the key provider, and the listen address (bound here: the
// listener is returned, for Server.Serve). It creates no file or
// directory. Every problem is reported at once, each naming its
// configuration field, in a *PreflightError (exit code 78). Warnings (a
// certificate close to its expiry or not naming public_url's host, a data
// directory others can read) are logged.
func Preflight(cfg config.Config, now time.Time, log *slog.Logger) (Listeners, error) {
	p := &preflight{log: log}
	if !cfg.InsecureHTTP {
		p.tls(cfg, now)
	}
	p.masterKey(cfg)
	p.dataDir(cfg)
	p.keyProvider(cfg)
	p.secretFiles(cfg)
	p.anchorFile(cfg)
	if r, d := time.Duration(cfg.Retention.Default), time.Duration(cfg.Bots.DeliveryRetryFor); r > 0 && r < d {
		log.Warn("retention.default is shorter than bots.delivery_retry_for: a conversation deleted by retention takes the activities its bot has not received yet with it (retention wins; each sweep that drops some says how many)",
			"retention_default", r, "delivery_retry_for", d)
	}
	// Listeners last: nothing is bound when a check above failed.
	var ls Listeners
	if len(p.problems) == 0 {
		ls.Main = p.listen("listen", cfg.Listen)
		if !cfg.Metrics.Off() {
			ls.Metrics = p.listen("metrics.listen", cfg.Metrics.Listen)
		}
		if !cfg.Admin.Off() {
			ls.Admin = p.listen("admin.listen", cfg.Admin.Listen)
		}
	}
	if len(p.problems) > 0 {
		_ = ls.Close()
		return Listeners{}, &PreflightError{Problems: p.problems}
	}
	return ls, nil
}

// secretFiles reads the files that hold secrets besides the master key
// (the metrics bearer token, the alert webhooks' keys) as the server
// will: a loose mode, a short or missing file is refused before anything
// is created, not after the database and keys are made.
func (p *preflight) secretFiles(cfg config.Config) {
	if cfg.Metrics.BearerTokenFile != "" {
		if _, err := cfg.Metrics.BearerToken(); err != nil {
			p.bad("metrics.bearer_token_file", "%s", strings.TrimPrefix(err.Error(), "metrics.bearer_token_file: "))
		}
	}
	for i, a := range cfg.Security.Alerts {
		if a.WebhookSecretFile == "" {
			continue
		}
		if _, err := a.WebhookSecret(); err != nil {
			p.bad(fmt.Sprintf("security.alerts[%d].webhook_secret_file", i), "%v", err)
		}
	}
}

// anchorFile checks that the audit chain's anchor file can be appended
// to: an existing regular file this process can write, or a directory
// that exists and can take it (the server does not create directories
// outside its data directory).
func (p *preflight) anchorFile(cfg config.Config) {
	path := cfg.Audit.AnchorFile
	if path == "" {
		return
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && !st.Mode().IsRegular():
		p.bad("audit.anchor_file", "%s is not a regular file; give a file the checkpoints are appended to", path)
	case err == nil:
		if err := writableFile(path); err != nil {
			p.bad("audit.anchor_file", "%s is not writable by this process: %v; chown it to the user parley runs as", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if dst, err := os.Stat(dir); err != nil || !dst.IsDir() {
			p.bad("audit.anchor_file", "%s cannot be created: its directory %s does not exist; create it (on another volume or WORM storage) for the user parley runs as", path, dir)
		} else if err := writable(dir); err != nil {
			p.bad("audit.anchor_file", "%s cannot be created in %s: %v", path, dir, err)
		}
	default:
		p.bad("audit.anchor_file", "%s: %v", path, errors.Unwrap(err))
	}
}

type preflight struct {
	log      *slog.Logger
	problems []Problem
}

func (p *preflight) bad(field, format string, a ...any) {
	p.problems = append(p.problems, Problem{Field: field, Message: fmt.Sprintf(format, a...)})
}

func (p *preflight) tls(cfg config.Config, now time.Time) {
	certFile, keyFile := cfg.TLS.CertFile, cfg.TLS.KeyFile
	certOK := p.readable("tls.cert_file", certFile, "the PEM certificate chain (PARLEY_TLS_CERT_FILE)")
	keyOK := p.readable("tls.key_file", keyFile, "the PEM private key (PARLEY_TLS_KEY_FILE)")
	if !certOK || !keyOK {
		return
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		p.bad("tls.cert_file", "%s and tls.key_file %s do not load as a certificate and its key: %v; give the certificate chain (PEM) in cert_file and the private key of its first certificate in key_file", certFile, keyFile, err)
		return
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			p.bad("tls.cert_file", "%s: %v", certFile, err)
			return
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		p.bad("tls.cert_file", "%s expired at %s (subject %q); clients refuse it: renew the certificate and give the new files in tls.cert_file and tls.key_file", certFile, leaf.NotAfter.UTC().Format(time.RFC3339), leaf.Subject.CommonName)
	case now.Before(leaf.NotBefore):
		p.bad("tls.cert_file", "%s is not valid before %s (now %s); check this machine's clock (NTP), or wait until the certificate is valid", certFile, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < CertExpiryWarning:
		p.log.Warn("the TLS certificate expires soon: renew it (tls.cert_file, tls.key_file), then restart parley serve",
			"tls.cert_file", certFile, "expires", leaf.NotAfter.UTC().Format(time.RFC3339), "left", leaf.NotAfter.Sub(now).Round(time.Hour).String())
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
		if err := leaf.VerifyHostname(u.Hostname()); err != nil {
			p.log.Warn("the TLS certificate does not name public_url's host: clients that reach Parley directly will refuse it (fine only if a proxy in front presents another certificate)",
				"tls.cert_file", certFile, "public_url", cfg.PublicURL, "err", err.Error())
		}
	}
	if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o004 != 0 {
		p.log.Warn("the TLS private key file is readable by every user of this machine: chmod 600 it (or 640 with a dedicated group)",
			"tls.key_file", keyFile, "mode", st.Mode().Perm().String())
	}
}

// readable checks that path names a regular file this process can read.
func (p *preflight) readable(field, path, what string) bool {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() { // before opening: a FIFO would block
		p.bad(field, "%s is not a regular file; give the path of %s", path, what)
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		p.bad(field, "cannot read %s: %v; give the path of %s", path, errors.Unwrap(err), what)
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		p.bad(field, "%s is not a regular file; give the path of %s", path, what)
		return false
	}
	return true
}

func (p *preflight) masterKey(cfg config.Config) {
	if cfg.MasterKey != "" {
		if _, err := keyring.ParseKey(cfg.MasterKey); err != nil {
			p.bad("PARLEY_MASTER_KEY", "%v; give the base64 of %d random bytes (openssl rand -base64 %d), the key this data directory's keys were sealed with", err, keyring.KeySize, keyring.KeySize)
		}
		return
	}
	path := cfg.MasterKeyFile
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		// First start: serve creates it. Unless keys sealed by a master
		// key already exist: a new master key would not open them, and
		// the start would leave a stray key file behind.
		if kek := firstLocalKEK(cfg); kek != "" {
			p.bad("master_key_file", "%s does not exist, but %s holds keys sealed by a master key; restore the key file from your backup to %s (mode 600), or give the key in PARLEY_MASTER_KEY (a new key would not open them)", path, filepath.Dir(kek), path)
			return
		}
		p.creatable("master_key_file", filepath.Dir(path), "the master key file's directory")
		return
	}
	if err != nil {
		p.bad("master_key_file", "%s: %v", path, errors.Unwrap(err))
		return
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		// A link (a Kubernetes Secret volume mounts its files so) is
		// followed, as the key is read at start: its target is checked.
		if st, err = os.Stat(path); err != nil {
			dest, _ := os.Readlink(path)
			p.bad("master_key_file", "%s is a symbolic link to %s, which cannot be read: %v; restore the key file from your backup, or point master_key_file at it", path, dest, errors.Unwrap(err))
			return
		}
	}
	if !st.Mode().IsRegular() { // before opening it: a FIFO would block
		p.bad("master_key_file", "%s is not a regular file (mode %v); give the path of the master key file", path, st.Mode())
		return
	}
	// One open file for every check: what is checked is what is read.
	f, err := os.Open(path)
	if err != nil {
		p.bad("master_key_file", "cannot read %s: %v; it must be readable by the user parley runs as (chown it, mode 600)", path, errors.Unwrap(err))
		return
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		p.bad("master_key_file", "%s: %v", path, errors.Unwrap(err))
		return
	}
	if !st.Mode().IsRegular() {
		p.bad("master_key_file", "%s is not a regular file (mode %v); give the path of the master key file", path, st.Mode())
		return
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		p.bad("master_key_file", "%s is readable by group or others (mode %04o); run: chmod 600 %s (and check who could read it), or give the key in PARLEY_MASTER_KEY instead", path, perm, path)
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		p.bad("master_key_file", "cannot read %s: %v; it must be readable by the user parley runs as (chown it, mode 600)", path, errors.Unwrap(err))
		return
	}
	if _, err := keyring.ParseKey(string(b)); err != nil {
		p.bad("master_key_file", "%s: %v; restore the key file from your backup", path, err)
	}
}

// firstLocalKEK is a key-encryption key file of the local provider in
// cfg's data directory, or "".
func firstLocalKEK(cfg config.Config) string {
	if cfg.Keys.Provider != "local" && cfg.Keys.Provider != "" {
		return ""
	}
	m, _ := filepath.Glob(filepath.Join(cfg.DataDir, "keys", "kek-*.tink"))
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

func (p *preflight) dataDir(cfg config.Config) {
	dir := cfg.DataDir
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		p.creatable("data_dir", dir, "the data directory")
		return
	}
	if err != nil {
		p.bad("data_dir", "%s: %v", dir, errors.Unwrap(err))
		return
	}
	if !st.IsDir() {
		p.bad("data_dir", "%s is not a directory; give a directory for the database and keys (it is created, mode 700, if missing)", dir)
		return
	}
	// World-writable is refused: any user could replace the database or
	// the keys, or plant a link where SQLite creates its -wal file. Group
	// access is only a warning (Kubernetes' fsGroup makes volumes 2775).
	if perm := st.Mode().Perm(); perm&0o002 != 0 {
		p.bad("data_dir", "%s is writable by every user of this machine (mode %04o): anyone could replace the database or the keys; run: chmod 700 %s", dir, perm, dir)
		return
	} else if perm&0o077 != 0 {
		p.log.Warn("other users can read or write the data directory: chmod 700 it, unless a group must (e.g. a Kubernetes fsGroup)", "data_dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
	if err := writable(dir); err != nil {
		p.bad("data_dir", "%s is not writable by this process: %v; chown it to the user parley runs as (mode 700), or choose another data_dir", dir, err)
		return
	}
	for _, name := range []string{"parley.db", "parley.db-wal", "parley.db-shm"} {
		f := filepath.Join(dir, name)
		fst, err := os.Lstat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || !fst.Mode().IsRegular() {
			p.bad("data_dir", "%s is not a regular file; move it away (the database is data_dir/parley.db)", f)
			continue
		}
		if err := writableFile(f); err != nil {
			p.bad("data_dir", "%s is not writable by this process: %v; chown it to the user parley runs as", f, err)
		}
	}
}

// creatable checks that dir exists as a writable directory or can be
// created: its nearest existing ancestor is a directory this process can
// write.
func (p *preflight) creatable(field, dir, what string) {
	d := dir
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				p.bad(field, "%s cannot be created: %s is not a directory", dir, d)
				return
			}
			if err := writable(d); err != nil {
				p.bad(field, "%s cannot be created in %s: %v; create %s yourself for the user parley runs as (mode 700), or choose another path", dir, d, err, what)
			}
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			p.bad(field, "%s: %v", d, errors.Unwrap(err))
			return
		}
		parent := filepath.Dir(d)
		if parent == d {
			return
		}
		d = parent
	}
}

func (p *preflight) keyProvider(cfg config.Config) {
	switch cfg.Keys.Provider {
	case "local", "":
		dir := filepath.Join(cfg.DataDir, "keys")
		st, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return // created with the data directory
		}
		if err != nil || !st.IsDir() {
			p.bad("keys.provider", "local: %s is not a directory; the local provider keeps its key-encryption keys there", dir)
			return
		}
		if err := writable(dir); err != nil {
			p.bad("keys.provider", "local: %s is not writable by this process: %v; chown it to the user parley runs as (mode 700)", dir, err)
		}
	case "pkcs11":
		if !pkcs11Built {
			p.bad("keys.provider", "%v", errNoPKCS11Build)
			return
		}
		c := cfg.Keys.PKCS11
		if st, err := os.Stat(c.Module); err != nil || !st.Mode().IsRegular() {
			p.bad("keys.pkcs11.module", "%s is not a readable file; give the absolute path of the vendor's PKCS#11 library", c.Module)
		}
		if _, err := c.PIN(); err != nil {
			p.bad("keys.pkcs11.pin_file", "%v", strings.TrimPrefix(err.Error(), "keys.pkcs11.pin_file: "))
		}
	default:
		p.bad("keys.provider", "%q is not one of local, pkcs11", cfg.Keys.Provider)
	}
}

// listen binds addr, the value of field.
func (p *preflight) listen(field, addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln
	}
	hint := "choose another listen address, or stop what holds this one"
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another process listens on it (ss -ltnp shows which): stop it, or choose another address"
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need privileges: listen on a port above 1024 (behind a load balancer or a port redirect), or give the binary CAP_NET_BIND_SERVICE"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "no interface of this machine has that address: listen on one it has, or 0.0.0.0"
	}
	p.bad(field, "cannot listen on %s: %v; %s", addr, err, hint)
	return nil
}
