package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for localhost valid from
// notBefore to notAfter, and its key, and returns their paths.
func writeCert(t *testing.T, dir, name string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// listing is every file and directory under root with its mode and size.
func listing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(&b, "%s %v %d\n", rel, info.Mode(), info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// parley serve refuses a start it cannot complete before it creates any
// file or directory and before it logs "parley serving", with exit code 78
// and a message naming the field and what to do.
func TestServePreflightRefusesAndCreatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	now := time.Now()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	goodKey := base64.StdEncoding.EncodeToString(make([]byte, 32))

	type setup struct {
		root, data, cert, key string
		listen, metrics       string
		env                   []string
		extra                 string
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T, s *setup)
		want    []string
	}{
		{"cert file missing", func(t *testing.T, s *setup) { s.cert = filepath.Join(s.root, "nope.crt") },
			[]string{"tls.cert_file: cannot read", "nope.crt", "give the path of the PEM certificate chain"}},
		{"key does not match the certificate", func(t *testing.T, s *setup) {
			_, other := writeCert(t, s.root, "other", now.Add(-time.Hour), now.Add(90*24*time.Hour))
			s.key = other
		}, []string{"tls.cert_file:", "do not load as a certificate and its key", "private key does not match public key"}},
		{"expired certificate", func(t *testing.T, s *setup) {
			s.cert, s.key = writeCert(t, s.root, "old", now.Add(-48*time.Hour), now.Add(-time.Hour))
		}, []string{"tls.cert_file:", "expired at", "renew the certificate"}},
		{"certificate not yet valid", func(t *testing.T, s *setup) {
			s.cert, s.key = writeCert(t, s.root, "future", now.Add(24*time.Hour), now.Add(90*24*time.Hour))
		}, []string{"tls.cert_file:", "is not valid before", "check this machine's clock"}},
		{"listen address in use", func(t *testing.T, s *setup) { s.listen = held.Addr().String() },
			[]string{"listen: cannot listen on " + held.Addr().String(), "address already in use", "choose another address"}},
		{"metrics listen address in use", func(t *testing.T, s *setup) { s.metrics = held.Addr().String() },
			[]string{"metrics.listen: cannot listen on " + held.Addr().String(), "address already in use"}},
		{"master key file readable by others", func(t *testing.T, s *setup) {
			mk := filepath.Join(s.root, "secrets", "master.key")
			if err := os.MkdirAll(filepath.Dir(mk), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(mk, []byte(goodKey+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(mk, 0o644); err != nil { // past the umask
				t.Fatal(err)
			}
			s.extra += "master_key_file: " + mk + "\n"
		}, []string{"master_key_file:", "readable by group or others (mode 0644)", "run: chmod 600 /", "PARLEY_MASTER_KEY"}},
		{"master key missing beside sealed keys", func(t *testing.T, s *setup) {
			if err := os.MkdirAll(filepath.Join(s.data, "keys"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.data, "keys", "kek-00112233445566778899aabbccddeeff.tink"), []byte("sealed"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"master_key_file:", "does not exist, but", "restore the key file from your backup"}},
		{"bad PARLEY_MASTER_KEY", func(t *testing.T, s *setup) { s.env = append(s.env, "PARLEY_MASTER_KEY=short") },
			[]string{"PARLEY_MASTER_KEY:", "openssl rand -base64 32"}},
		{"data_dir is a file", func(t *testing.T, s *setup) {
			if err := os.WriteFile(s.data, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			s.extra += "master_key_file: " + filepath.Join(s.root, "master.key") + "\n"
		}, []string{"data_dir:", "is not a directory"}},
		{"data_dir writable by others", func(t *testing.T, s *setup) {
			if err := os.Mkdir(s.data, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(s.data, 0o777); err != nil {
				t.Fatal(err)
			}
		}, []string{"data_dir:", "writable by every user of this machine (mode 0777)", "chmod 700"}},
		{"pkcs11 provider in a binary without it", func(t *testing.T, s *setup) {
			pin := filepath.Join(s.root, "pin")
			if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s.extra += "keys:\n  provider: pkcs11\n  pkcs11:\n    module: /usr/lib/none/libnone.so\n    token_label: parley\n    pin_file: " + pin + "\n"
		}, []string{"keys.provider:", "built without PKCS#11 support", "-tags pkcs11"}},
		// An invalid file is a configuration error too (exit 78, so a
		// supervisor does not restart into it), naming the setting.
		{"a misspelled setting", func(t *testing.T, s *setup) { s.extra += "acess_log: true\n" },
			[]string{"invalid configuration", "acess_log (line", "unknown setting"}},
		{"metrics bearer token readable by others", func(t *testing.T, s *setup) {
			tok := filepath.Join(s.root, "metrics.token")
			if err := os.WriteFile(tok, []byte(strings.Repeat("a", 64)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(tok, 0o644); err != nil {
				t.Fatal(err)
			}
			s.env = append(s.env, "PARLEY_METRICS_BEARER_TOKEN_FILE="+tok)
		}, []string{"metrics.bearer_token_file:", "readable by others", "chmod 600"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s := &setup{root: root, data: filepath.Join(root, "data"), listen: "127.0.0.1:0", metrics: "127.0.0.1:0"}
			s.cert, s.key = writeCert(t, root, "good", now.Add(-time.Hour), now.Add(90*24*time.Hour))
			c.prepare(t, s)
			cfg := filepath.Join(root, "parley.yaml")
			yaml := fmt.Sprintf("listen: %s\nmetrics:\n  listen: %s\npublic_url: https://localhost:8443\ndata_dir: %s\ntls:\n  cert_file: %s\n  key_file: %s\n%s", s.listen, s.metrics, s.data, s.cert, s.key, s.extra)
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			before := listing(t, root)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}, s.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 78 {
				t.Fatalf("exit: %v (want code 78)\n%s", err, out)
			}
			msg := string(out)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message does not say %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "parley serving") {
				t.Errorf("logged serving before refusing:\n%s", msg)
			}
			if after := listing(t, root); after != before {
				t.Errorf("the refused start changed the files:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// Every problem is reported at once, each with its field.
func TestServePreflightReportsEveryProblem(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.WriteFile(data, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "parley.yaml")
	yaml := "listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: https://localhost\ndata_dir: " + data + "\nmaster_key_file: " + filepath.Join(root, "mk") + "\ntls:\n  cert_file: " + filepath.Join(root, "c.pem") + "\n  key_file: " + filepath.Join(root, "k.pem") + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	_, stderr, err := run(t, nil, "serve", "--config", cfg)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 78 {
		t.Fatalf("serve = %v, want an error with exit code 78", err)
	}
	for _, field := range []string{"\n  tls.cert_file:", "\n  tls.key_file:", "\n  data_dir:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("no %q in:\n%v", field, err)
		}
	}
	if strings.Contains(stderr, "parley serving") {
		t.Error("logged serving")
	}
	if listing(t, root) != before {
		t.Error("files changed")
	}
}

// A valid certificate close to its expiry starts, with a warning.
func TestServeWarnsOfCertificateExpiringSoon(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	cert, key := writeCert(t, root, "soon", now.Add(-80*24*time.Hour), now.Add(3*24*time.Hour))
	data := filepath.Join(root, "data")
	cfg := filepath.Join(root, "parley.yaml")
	yaml := "listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: https://localhost:8443\ndata_dir: " + data + "\ntls:\n  cert_file: " + cert + "\n  key_file: " + key + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// A misspelled variable is named in a warning (review: ignored silently).
	t.Setenv("PARLEY_DIRECTLINE_TOKENTTL", "1h")
	var out, errb lockedBuffer
	root2 := (&app{stdout: &out, stderr: &errb, env: func(string) (string, bool) { return "", false }, resolver: testHosts}).root()
	root2.SetArgs([]string{"serve", "--config", cfg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root2.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errb.String(), "parley serving") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no serving line:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	logs := errb.String()
	warn := strings.Index(logs, "the TLS certificate expires soon")
	if warn < 0 || warn > strings.Index(logs, "parley serving") {
		t.Fatalf("no expiry warning before serving:\n%s", logs)
	}
	if !strings.Contains(logs, "environment variable ignored") || !strings.Contains(logs, "PARLEY_DIRECTLINE_TOKENTTL") {
		t.Fatalf("no warning for the misspelled variable:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(data, "parley.db")); err != nil {
		t.Fatalf("a good start made no database: %v", err)
	}
}

// writeValidCert writes a certificate for localhost valid for 90 days.
func writeValidCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	return writeCert(t, dir, "tls", time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
}
