package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// selfSigned writes a certificate for 127.0.0.1 and its key; returns their
// paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "parley test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Off loopback, the metrics listener serves TLS with the main certificate
// and needs the bearer token: plain HTTP gets no metrics.
func TestMetricsOffLoopbackServeTLSWithToken(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	tokenFile := filepath.Join(dir, "metrics.token")
	if err := os.WriteFile(tokenFile, []byte(metricsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The configuration says every interface (so: TLS and a token); the
	// test serves it on a loopback socket of its own.
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.MasterKeyFile = ln.Addr().String(), "https://"+ln.Addr().String(), dir, dir+"/master.key"
	cfg.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	cfg.Metrics = config.Metrics{Listen: "0.0.0.0:0", BearerTokenFile: tokenFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Metrics.TLS() {
		t.Fatal("0.0.0.0 is not served with TLS")
	}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, server.Listeners{Main: ln, Metrics: mln}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	base := mln.Addr().String()

	res, err := http.Get("http://" + base + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), "parley_") {
			t.Fatalf("plain HTTP got the metrics: %d", res.StatusCode)
		}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", "https://"+base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, _ := get(""); st != http.StatusUnauthorized {
		t.Fatalf("TLS without the token = %d, want 401", st)
	}
	if st, body := get("Bearer " + metricsToken); st != 200 || !strings.Contains(body, "parley_metrics_unauthorized_total 1") {
		t.Fatalf("TLS with the token = %d %.200s", st, body)
	}
}

// A token file readable by others stops the start, naming the field.
func TestMetricsTokenFileCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "metrics.token")
	if err := os.WriteFile(tokenFile, []byte(metricsToken+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(tokenFile, 0o644)
	cfg := config.Default()
	cfg.PublicURL, cfg.DataDir, cfg.MasterKeyFile, cfg.InsecureHTTP = "http://127.0.0.1:1", dir, dir+"/master.key", true
	cfg.Metrics.BearerTokenFile = tokenFile
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		_ = srv.Close()
		t.Fatal("a world-readable metrics token file was accepted")
	}
	if !strings.Contains(err.Error(), "metrics.bearer_token_file") || strings.Contains(err.Error(), metricsToken) {
		t.Fatalf("err = %v", err)
	}
}
