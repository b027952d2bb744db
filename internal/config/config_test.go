package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func write(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	p := write(t, "listen: 0.0.0.0:8443\npublic_url: https://chat.example.com\ndata_dir: /var/lib/parley\ntls:\n  cert_file: /c.pem\n  key_file: /k.pem\ndirectline:\n  token_ttl: 30m\n")
	c, err := Load(p, env(map[string]string{"PARLEY_DIRECTLINE_MAX_UPLOAD_BYTES": "1048576"}))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.DirectLine.TokenTTL) != 30*time.Minute || c.DirectLine.MaxUploadBytes != 1<<20 || c.MasterKeyFile != "/var/lib/parley/master.key" {
		t.Fatalf("config = %+v", c)
	}
}

func TestLoadRefusesNamingTheField(t *testing.T) {
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"no public_url":         {"tls: {cert_file: a, key_file: b}\n", nil, "public_url"},
		"http public_url":       {"public_url: http://x.example\ntls: {cert_file: a, key_file: b}\n", nil, "public_url"},
		"public_url with path":  {"public_url: https://x.example/chat\ntls: {cert_file: a, key_file: b}\n", nil, "public_url"},
		"no tls":                {"public_url: https://x.example\n", nil, "tls"},
		"insecure off loopback": {"listen: 0.0.0.0:80\npublic_url: http://x.example\ninsecure_http: true\n", nil, "insecure_http"},
		"unknown field":         {"public_url: https://x.example\nlisten_adress: x\n", nil, "listen_adress"},
		"bad duration":          {"public_url: https://x.example\ndirectline: {token_ttl: soon}\n", nil, "soon"},
		"ttl too short":         {"public_url: https://x.example\ntls: {cert_file: a, key_file: b}\ndirectline: {token_ttl: 10s}\n", nil, "directline.token_ttl"},
		"bad listen":            {"listen: nope\npublic_url: https://x.example\ntls: {cert_file: a, key_file: b}\n", nil, "listen"},
		"bad env bool":          {"public_url: https://x.example\n", map[string]string{"PARLEY_INSECURE_HTTP": "maybe"}, "PARLEY_INSECURE_HTTP"},
		"bad env number":        {"public_url: https://x.example\n", map[string]string{"PARLEY_DIRECTLINE_MAX_ATTACHMENTS": "ten"}, "PARLEY_DIRECTLINE_MAX_ATTACHMENTS"},
		"too many attachments":  {"public_url: https://x.example\ntls: {cert_file: a, key_file: b}\ndirectline: {max_attachments: 1000}\n", nil, "directline.max_attachments"},
		"log level":             {"public_url: https://x.example\ntls: {cert_file: a, key_file: b}\nlog_level: loud\n", nil, "log_level"},
	} {
		_, err := Load(write(t, c.yaml), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, err, c.want)
		}
	}
}

func TestEnvOverridesFile(t *testing.T) {
	p := write(t, "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n")
	c, err := Load(p, env(map[string]string{"PARLEY_PUBLIC_URL": "http://127.0.0.1:9000", "PARLEY_INSECURE_HTTP": "true", "PARLEY_LISTEN": "127.0.0.1:9000"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://127.0.0.1:9000" || !c.InsecureHTTP {
		t.Fatalf("env not applied: %+v", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), env(nil)); err == nil {
		t.Fatal("missing file accepted")
	}
}

// The limits of issue 9 (findings 4 and 13): each new field is validated
// with its name, and each has an environment override.
func TestConnectionLimitsValidatedAndOverridable(t *testing.T) {
	const base = "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"max_connections too low":  {base + "max_connections: 3\n", nil, "max_connections"},
		"max_connections env":      {base, map[string]string{"PARLEY_MAX_CONNECTIONS": "0"}, "max_connections"},
		"history reads zero":       {base + "directline: {max_history_reads: 0}\n", nil, "directline.max_history_reads"},
		"per client over global":   {base + "directline: {max_history_reads: 4, max_history_reads_per_client: 8}\n", nil, "directline.max_history_reads_per_client"},
		"streams per client zero":  {base, map[string]string{"PARLEY_DIRECTLINE_MAX_STREAMS_PER_CLIENT": "0"}, "directline.max_streams_per_client"},
		"streams over connections": {base + "max_connections: 100\ndirectline: {max_streams_per_client: 200}\n", nil, "directline.max_streams_per_client"},
		"read_header too long":     {base + "timeouts: {read_header: 10m}\n", nil, "timeouts.read_header"},
		"idle too short":           {base, map[string]string{"PARLEY_TIMEOUTS_IDLE": "1s"}, "timeouts.idle"},
		"body zero":                {base + "timeouts: {body: 0s}\n", nil, "timeouts.body"},
		"min_client_rate too low":  {base, map[string]string{"PARLEY_TIMEOUTS_MIN_CLIENT_RATE": "10"}, "timeouts.min_client_rate"},
		"bad env history reads":    {base, map[string]string{"PARLEY_DIRECTLINE_MAX_HISTORY_READS": "many"}, "PARLEY_DIRECTLINE_MAX_HISTORY_READS"},
		"bad env per-client reads": {base, map[string]string{"PARLEY_DIRECTLINE_MAX_HISTORY_READS_PER_CLIENT": "x"}, "PARLEY_DIRECTLINE_MAX_HISTORY_READS_PER_CLIENT"},
		"bad env body timeout":     {base, map[string]string{"PARLEY_TIMEOUTS_BODY": "soon"}, "PARLEY_TIMEOUTS_BODY"},
		"bad env read header":      {base, map[string]string{"PARLEY_TIMEOUTS_READ_HEADER": "x"}, "PARLEY_TIMEOUTS_READ_HEADER"},
	} {
		_, err := Load(write(t, c.yaml), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, err, c.want)
		}
	}
	c, err := Load(write(t, base+"max_connections: 500\ntimeouts: {idle: 90s}\n"), env(map[string]string{
		"PARLEY_DIRECTLINE_MAX_HISTORY_READS": "32", "PARLEY_DIRECTLINE_MAX_HISTORY_READS_PER_CLIENT": "2",
		"PARLEY_DIRECTLINE_MAX_STREAMS_PER_CLIENT": "10", "PARLEY_TIMEOUTS_BODY": "20s", "PARLEY_TIMEOUTS_MIN_CLIENT_RATE": "2048",
		"PARLEY_TIMEOUTS_READ_HEADER": "5s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 500 || time.Duration(c.Timeouts.Idle) != 90*time.Second || c.DirectLine.MaxHistoryReads != 32 ||
		c.DirectLine.MaxHistoryReadsPerClient != 2 || c.DirectLine.MaxStreamsPerClient != 10 || time.Duration(c.Timeouts.Body) != 20*time.Second ||
		c.Timeouts.MinClientRate != 2048 || time.Duration(c.Timeouts.ReadHeader) != 5*time.Second {
		t.Fatalf("limits not applied: %+v %+v", c.Timeouts, c.DirectLine)
	}
}

// max_connections_per_client (R6 review of issue 9): named when invalid,
// overridable from the environment, and a quarter of max_connections when
// not set, so lowering max_connections alone keeps the two consistent.
func TestConnectionsPerClient(t *testing.T) {
	const base = "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
	}{
		"negative":         {base + "max_connections_per_client: -1\n", nil},
		"over global":      {base + "max_connections: 100\ndirectline: {max_streams_per_client: 10}\nmax_connections_per_client: 101\n", nil},
		"env not a number": {base, map[string]string{"PARLEY_MAX_CONNECTIONS_PER_CLIENT": "lots"}},
		"env over global":  {base, map[string]string{"PARLEY_MAX_CONNECTIONS_PER_CLIENT": "16385"}},
	} {
		_, err := Load(write(t, c.yaml), env(c.env))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "max_connections_per_client") {
			t.Errorf("%s: err = %v, want mention of max_connections_per_client", name, err)
		}
	}
	d := Default()
	if d.ConnectionsPerClient() < 4*d.DirectLine.MaxStreamsPerClient || d.ConnectionsPerClient() > d.MaxConnections/4 {
		t.Errorf("default per-client connections %d: want room for max_streams_per_client (%d) tabs with a WebSocket and three HTTP connections each, and at most a quarter of max_connections (%d)",
			d.ConnectionsPerClient(), d.DirectLine.MaxStreamsPerClient, d.MaxConnections)
	}
	c, err := Load(write(t, base+"max_connections: 400\ndirectline: {max_streams_per_client: 10}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionsPerClient() != 100 {
		t.Errorf("derived per-client connections = %d; want max_connections/4 = 100", c.ConnectionsPerClient())
	}
	c, err = Load(write(t, base), env(map[string]string{"PARLEY_MAX_CONNECTIONS_PER_CLIENT": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionsPerClient() != 7 {
		t.Errorf("PARLEY_MAX_CONNECTIONS_PER_CLIENT not applied: %d", c.ConnectionsPerClient())
	}
}
