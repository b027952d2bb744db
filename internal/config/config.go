// Package config loads and validates parley.yaml plus PARLEY_* environment
// overrides. Invalid configuration is refused at start with a message that
// names the field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration.
type Config struct {
	Listen        string     `yaml:"listen"`
	PublicURL     string     `yaml:"public_url"`
	DataDir       string     `yaml:"data_dir"`
	MasterKeyFile string     `yaml:"master_key_file"`
	TLS           TLS        `yaml:"tls"`
	InsecureHTTP  bool       `yaml:"insecure_http"`
	LogLevel      string     `yaml:"log_level"`
	DirectLine    DirectLine `yaml:"directline"`
	Bots          Bots       `yaml:"bots"`
	// TrustedProxies lists the CIDRs of reverse proxies whose
	// X-Forwarded-For is believed. Empty: the client address is the TCP
	// peer and forwarding headers are ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Limits are the Direct Line rate limits.
	Limits Limits `yaml:"limits"`
	// MaxConnections caps open client connections (HTTP and WebSocket);
	// past it new connections are closed at once (see README).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient caps the open connections of one client
	// address (an IPv6 client by its /64), so that one address cannot take
	// every connection; trusted proxies are exempt (see README). Zero (the
	// default) means a quarter of MaxConnections: see ConnectionsPerClient.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// Timeouts bounds each phase of a client connection.
	Timeouts Timeouts `yaml:"timeouts"`
	// Keys chooses the key-encryption-key provider (see keys.go).
	Keys Keys `yaml:"keys"`
	// MasterKey is the base64 master key from PARLEY_MASTER_KEY; when set
	// it is used instead of MasterKeyFile. Never read from the file.
	MasterKey string `yaml:"-"`
	// Retention tunes the retention sweeper (retention.go).
	Retention Retention `yaml:"retention"`
	// Store configures the embedded store (store.go).
	Store Store `yaml:"store"`
	// Metrics configures the metrics listener (metrics.go).
	Metrics Metrics `yaml:"metrics"`
	// Admin configures the admin listener: the admin API and the console
	// (admin.go).
	Admin Admin `yaml:"admin"`
	// AccessLog writes one info line per HTTP request (and per WebSocket
	// stream, when it ends): method, route pattern, status, duration,
	// pseudonymized client address, site.
	AccessLog bool `yaml:"access_log"`
	// Security tunes threat detection and its alerts (security.go).
	Security Security `yaml:"security"`
	// Audit configures the audit log (audit.go).
	Audit Audit `yaml:"audit"`
	// Operators configures operator identity (operators.go).
	Operators Operators `yaml:"operators"`
}

// Timeouts sizes the phases of an HTTP connection (issue 9, finding 13).
// A request body may take Body plus its size limit at MinClientRate:
// activity-sized for most routes, upload-sized for uploads and attachment
// transfers. WebSocket streams are not cut by these after the upgrade.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader Duration `yaml:"read_header"`
	// Idle bounds how long a keep-alive connection waits for its next request.
	Idle Duration `yaml:"idle"`
	// Body is the fixed part of a body's read deadline (and of a response's
	// write deadline).
	Body Duration `yaml:"body"`
	// MinClientRate (bytes per second) is the slowest client the body and
	// write deadlines allow for.
	MinClientRate int `yaml:"min_client_rate"`
}

// Bots tunes the calls to bots.
type Bots struct {
	// AllowPrivateNetworks lists CIDRs of private, link-local or other
	// internal addresses that bot endpoints may resolve to. Empty: only
	// public addresses and loopback (SSRF protection).
	AllowPrivateNetworks []string `yaml:"allow_private_networks"`
	// KeyReload is how often signing keys are re-read from the store, so
	// that a rotation (by the CLI or another replica) takes effect.
	KeyReload Duration `yaml:"key_reload"`
	// DeliveryRetryFor is how long an activity is retried to its bot after
	// it was enqueued (backoff capped at 5 minutes, with jitter) before it
	// becomes a dead letter. Retention wins: a conversation deleted by its
	// site's policy (or an ephemeral site's ephemeral_max) takes its pending
	// deliveries and dead letters with it, however long they had left.
	DeliveryRetryFor Duration `yaml:"delivery_retry_for"`
}

// AllowedPrivateNetworks parses Bots.AllowPrivateNetworks (validated).
func (c Config) AllowedPrivateNetworks() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.Bots.AllowPrivateNetworks {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// TLS names certificate files.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DirectLine tunes the client API.
type DirectLine struct {
	TokenTTL         Duration `yaml:"token_ttl"`
	BotWait          Duration `yaml:"bot_wait"`
	MaxActivityBytes int      `yaml:"max_activity_bytes"`
	MaxUploadBytes   int64    `yaml:"max_upload_bytes"`
	MaxAttachments   int      `yaml:"max_attachments"`
	// KeepAlive bounds how long an open stream stays silent: an empty
	// frame is sent when nothing else was (for proxies' idle timeouts).
	KeepAlive Duration `yaml:"keep_alive"`
	// MaxHistoryReads caps concurrent history reads and stream replays
	// gateway-wide (each holds at most a 512 KiB store chunk); more wait up
	// to 5 s, then get 503.
	MaxHistoryReads int `yaml:"max_history_reads"`
	// MaxHistoryReadsPerClient caps concurrent history reads per client
	// address; more get 429.
	MaxHistoryReadsPerClient int `yaml:"max_history_reads_per_client"`
	// MaxStreamsPerClient caps open WebSocket streams per client address;
	// more get 429 before the upgrade.
	MaxStreamsPerClient int `yaml:"max_streams_per_client"`
	// MaxUploads caps uploads in progress gateway-wide (each holds up to
	// max_upload_bytes while it is checked and stored); more wait up to
	// 5 s, then get 503. MaxUploadsPerClient caps them per client address;
	// one more waits up to 5 s for one of its own, then gets 429.
	MaxUploads          int `yaml:"max_uploads"`
	MaxUploadsPerClient int `yaml:"max_uploads_per_client"`
}

// Duration is a time.Duration written as "15m", "1h".
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30m, 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Default is the configuration before the file and environment apply.
func Default() Config {
	return Config{
		Listen:   "127.0.0.1:8080",
		DataDir:  "/var/lib/parley",
		LogLevel: "info",
		DirectLine: DirectLine{
			TokenTTL:         Duration(time.Hour),
			BotWait:          Duration(15 * time.Second),
			MaxActivityBytes: 256 << 10,
			MaxUploadBytes:   4 << 20,
			MaxAttachments:   10,
			KeepAlive:        Duration(20 * time.Second),

			MaxHistoryReads:          64,
			MaxHistoryReadsPerClient: 4,
			MaxStreamsPerClient:      1024,
			MaxUploads:               16,
			MaxUploadsPerClient:      2,
		},
		// 16384 idle connections cost about 30 KB each (480 MB) and as
		// many file descriptors. One address may hold a quarter (see
		// ConnectionsPerClient): 4096 is 1024 Web Chat tabs behind one NAT
		// address (max_streams_per_client) with their WebSocket and three
		// keep-alive HTTP connections each.
		MaxConnections: 16384,
		Timeouts: Timeouts{
			ReadHeader:    Duration(10 * time.Second),
			Idle:          Duration(60 * time.Second),
			Body:          Duration(10 * time.Second),
			MinClientRate: 64 << 10,
		},
		Bots:      Bots{KeyReload: Duration(30 * time.Second), DeliveryRetryFor: Duration(24 * time.Hour)},
		Limits:    DefaultLimits(),
		Keys:      DefaultKeys(),
		Retention: DefaultRetention(),
		Store:     DefaultStore(),
		Metrics:   DefaultMetrics(),
		Admin:     DefaultAdmin(),
		AccessLog: true,
		Security:  DefaultSecurity(),
		Audit:     DefaultAudit(),
		Operators: DefaultOperators(),
	}
}

// Load reads path (may be empty), applies the environment, validates.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
			return c, fmt.Errorf("config %s: %w", path, friendlyYAML(b, err))
		}
	}
	if err := c.applyEnv(env); err != nil {
		return c, err
	}
	if c.MasterKeyFile == "" && c.DataDir != "" {
		c.MasterKeyFile = strings.TrimRight(c.DataDir, "/") + "/master.key"
	}
	return c, c.Validate()
}

// ApplyEnv applies the PARLEY_* environment to c, as Load does (for
// commands that build a Config without a file).
func (c *Config) ApplyEnv(env func(string) (string, bool)) error { return c.applyEnv(env) }

func (c *Config) applyEnv(env func(string) (string, bool)) error {
	str := func(name string, dst *string) {
		if v, ok := env(name); ok {
			*dst = v
		}
	}
	str("PARLEY_LISTEN", &c.Listen)
	str("PARLEY_PUBLIC_URL", &c.PublicURL)
	str("PARLEY_DATA_DIR", &c.DataDir)
	str("PARLEY_MASTER_KEY_FILE", &c.MasterKeyFile)
	str("PARLEY_MASTER_KEY", &c.MasterKey)
	str("PARLEY_TLS_CERT_FILE", &c.TLS.CertFile)
	str("PARLEY_TLS_KEY_FILE", &c.TLS.KeyFile)
	str("PARLEY_LOG_LEVEL", &c.LogLevel)
	if v, ok := env("PARLEY_BOTS_ALLOW_PRIVATE_NETWORKS"); ok {
		c.Bots.AllowPrivateNetworks = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Bots.AllowPrivateNetworks = append(c.Bots.AllowPrivateNetworks, p)
			}
		}
	}
	if v, ok := env("PARLEY_TRUSTED_PROXIES"); ok {
		c.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.TrustedProxies = append(c.TrustedProxies, p)
			}
		}
	}
	c.Limits.applyEnv(env)
	if err := c.Keys.applyEnv(env); err != nil {
		return err
	}
	c.Store.applyEnv(env)
	c.Operators.applyEnv(env)
	c.Admin.applyEnv(env)
	if err := c.applyMetricsEnv(env); err != nil {
		return err
	}
	if err := c.Retention.applyEnv(env); err != nil {
		return err
	}
	if err := c.Security.applyEnv(env); err != nil {
		return err
	}
	if err := c.Audit.applyEnv(env); err != nil {
		return err
	}
	if v, ok := env("PARLEY_INSECURE_HTTP"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("PARLEY_INSECURE_HTTP: %q is not a boolean", v)
		}
		c.InsecureHTTP = b
	}
	dur := func(name string, dst *Duration) error {
		if v, ok := env(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration", name, v)
			}
			*dst = Duration(d)
		}
		return nil
	}
	if err := dur("PARLEY_DIRECTLINE_TOKEN_TTL", &c.DirectLine.TokenTTL); err != nil {
		return err
	}
	if err := dur("PARLEY_DIRECTLINE_BOT_WAIT", &c.DirectLine.BotWait); err != nil {
		return err
	}
	if err := dur("PARLEY_DIRECTLINE_KEEP_ALIVE", &c.DirectLine.KeepAlive); err != nil {
		return err
	}
	if err := dur("PARLEY_BOTS_KEY_RELOAD", &c.Bots.KeyReload); err != nil {
		return err
	}
	if err := dur("PARLEY_BOTS_DELIVERY_RETRY_FOR", &c.Bots.DeliveryRetryFor); err != nil {
		return err
	}
	if err := dur("PARLEY_TIMEOUTS_READ_HEADER", &c.Timeouts.ReadHeader); err != nil {
		return err
	}
	if err := dur("PARLEY_TIMEOUTS_IDLE", &c.Timeouts.Idle); err != nil {
		return err
	}
	if err := dur("PARLEY_TIMEOUTS_BODY", &c.Timeouts.Body); err != nil {
		return err
	}
	num := func(name string, set func(int64)) error {
		if v, ok := env(name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not a whole number", name, v)
			}
			set(n)
		}
		return nil
	}
	if err := num("PARLEY_DIRECTLINE_MAX_ACTIVITY_BYTES", func(n int64) { c.DirectLine.MaxActivityBytes = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_DIRECTLINE_MAX_UPLOAD_BYTES", func(n int64) { c.DirectLine.MaxUploadBytes = n }); err != nil {
		return err
	}
	if err := num("PARLEY_TIMEOUTS_MIN_CLIENT_RATE", func(n int64) { c.Timeouts.MinClientRate = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_MAX_CONNECTIONS", func(n int64) { c.MaxConnections = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_MAX_CONNECTIONS_PER_CLIENT", func(n int64) { c.MaxConnectionsPerClient = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_DIRECTLINE_MAX_HISTORY_READS", func(n int64) { c.DirectLine.MaxHistoryReads = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_DIRECTLINE_MAX_HISTORY_READS_PER_CLIENT", func(n int64) { c.DirectLine.MaxHistoryReadsPerClient = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_DIRECTLINE_MAX_STREAMS_PER_CLIENT", func(n int64) { c.DirectLine.MaxStreamsPerClient = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_DIRECTLINE_MAX_UPLOADS", func(n int64) { c.DirectLine.MaxUploads = int(n) }); err != nil {
		return err
	}
	if err := num("PARLEY_DIRECTLINE_MAX_UPLOADS_PER_CLIENT", func(n int64) { c.DirectLine.MaxUploadsPerClient = int(n) }); err != nil {
		return err
	}
	return num("PARLEY_DIRECTLINE_MAX_ATTACHMENTS", func(n int64) { c.DirectLine.MaxAttachments = int(n) })
}

// ConnectionsPerClient is the effective max_connections_per_client: the
// configured value, or a quarter of max_connections when it is 0, so that
// four addresses are needed to fill the listener and lowering
// max_connections alone keeps the two consistent.
func (c Config) ConnectionsPerClient() int {
	if c.MaxConnectionsPerClient > 0 {
		return c.MaxConnectionsPerClient
	}
	return max(c.MaxConnections/4, 1)
}

// IsLoopback reports whether a listen address only accepts local peers.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks every field; the error names the field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) { errs = append(errs, fmt.Errorf(field+": "+format, a...)) }
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("listen", "port %q is not valid", port)
	}
	if c.PublicURL == "" {
		bad("public_url", "is required (the URL clients and bots reach Parley at, e.g. https://chat.example.com)")
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		bad("public_url", "%q must be scheme://host[:port] with no path", c.PublicURL)
	} else if u.Scheme == "http" && !c.InsecureHTTP {
		bad("public_url", "is plain http; use https, or set insecure_http on a loopback listener")
	}
	if c.InsecureHTTP {
		if !IsLoopback(c.Listen) {
			bad("insecure_http", "plain HTTP is only allowed on a loopback listen address, not %q", c.Listen)
		}
	} else if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		bad("tls", "cert_file and key_file are required (or insecure_http on loopback for development)")
	}
	if c.DataDir == "" {
		bad("data_dir", "is required")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	for _, p := range c.Bots.AllowPrivateNetworks {
		if _, err := netip.ParsePrefix(strings.TrimSpace(p)); err != nil {
			bad("bots.allow_private_networks", "%q is not a CIDR such as 10.1.0.0/16", p)
		}
	}
	if k := time.Duration(c.Bots.KeyReload); k < time.Second || k > 10*time.Minute {
		bad("bots.key_reload", "%v is outside 1s..10m", k)
	}
	// At least two backoff caps beyond a five-minute redeploy; at most a
	// week (see DeliveryRetryFor: retention may end a delivery sooner).
	if r := time.Duration(c.Bots.DeliveryRetryFor); r < 15*time.Minute || r > 7*24*time.Hour {
		bad("bots.delivery_retry_for", "%v is outside 15m..168h (a week)", r)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(strings.TrimSpace(p)); err != nil {
			if _, err := netip.ParseAddr(strings.TrimSpace(p)); err != nil {
				bad("trusted_proxies", "%q is not a CIDR such as 10.0.0.0/8 or an address", p)
			}
		}
	}
	errs = append(errs, c.Limits.validate()...)
	errs = append(errs, c.Keys.validate()...)
	errs = append(errs, c.Retention.validate()...)
	errs = append(errs, c.Store.validate()...)
	errs = append(errs, c.validateMetrics()...)
	errs = append(errs, c.validateAdmin()...)
	errs = append(errs, c.Security.validate()...)
	errs = append(errs, c.validateAudit()...)
	errs = append(errs, c.Operators.validate()...)
	dl := c.DirectLine
	if ttl := time.Duration(dl.TokenTTL); ttl < time.Minute || ttl > 24*time.Hour {
		bad("directline.token_ttl", "%v is outside 1m..24h", ttl)
	}
	if w := time.Duration(dl.BotWait); w < time.Second || w > 19*time.Second {
		bad("directline.bot_wait", "%v is outside 1s..19s (clients give up at 20s)", w)
	}
	if k := time.Duration(dl.KeepAlive); k < 200*time.Millisecond || k > 5*time.Minute {
		bad("directline.keep_alive", "%v is outside 200ms..5m", k)
	}
	if dl.MaxActivityBytes < 1024 || dl.MaxActivityBytes > 4<<20 {
		bad("directline.max_activity_bytes", "%d is outside 1024..4194304", dl.MaxActivityBytes)
	}
	if dl.MaxUploadBytes < 1024 || dl.MaxUploadBytes > 1<<30 {
		bad("directline.max_upload_bytes", "%d is outside 1024..1073741824", dl.MaxUploadBytes)
	}
	if dl.MaxAttachments < 1 || dl.MaxAttachments > 100 {
		bad("directline.max_attachments", "%d is outside 1..100", dl.MaxAttachments)
	}
	to := c.Timeouts
	if d := time.Duration(to.ReadHeader); d < time.Second || d > 2*time.Minute {
		bad("timeouts.read_header", "%v is outside 1s..2m", d)
	}
	if d := time.Duration(to.Idle); d < 5*time.Second || d > 30*time.Minute {
		bad("timeouts.idle", "%v is outside 5s..30m", d)
	}
	if d := time.Duration(to.Body); d < time.Second || d > 5*time.Minute {
		bad("timeouts.body", "%v is outside 1s..5m", d)
	}
	if to.MinClientRate < 1<<10 || to.MinClientRate > 1<<30 {
		bad("timeouts.min_client_rate", "%d bytes/s is outside 1024..1073741824", to.MinClientRate)
	}
	if c.MaxConnections < 16 || c.MaxConnections > 1_000_000 {
		bad("max_connections", "%d is outside 16..1000000", c.MaxConnections)
	}
	if c.MaxConnectionsPerClient < 0 || c.MaxConnectionsPerClient > c.MaxConnections {
		bad("max_connections_per_client", "%d is outside 1..max_connections (%d), or 0 for max_connections/4", c.MaxConnectionsPerClient, c.MaxConnections)
	}
	if dl.MaxHistoryReads < 1 || dl.MaxHistoryReads > 10_000 {
		bad("directline.max_history_reads", "%d is outside 1..10000", dl.MaxHistoryReads)
	}
	if dl.MaxHistoryReadsPerClient < 1 || dl.MaxHistoryReadsPerClient > dl.MaxHistoryReads {
		bad("directline.max_history_reads_per_client", "%d is outside 1..max_history_reads (%d)", dl.MaxHistoryReadsPerClient, dl.MaxHistoryReads)
	}
	if dl.MaxStreamsPerClient < 1 || dl.MaxStreamsPerClient > c.MaxConnections {
		bad("directline.max_streams_per_client", "%d is outside 1..max_connections (%d)", dl.MaxStreamsPerClient, c.MaxConnections)
	}
	if dl.MaxUploads < 1 || dl.MaxUploads > 10_000 {
		bad("directline.max_uploads", "%d is outside 1..10000", dl.MaxUploads)
	}
	if dl.MaxUploadsPerClient < 1 || dl.MaxUploadsPerClient > dl.MaxUploads {
		bad("directline.max_uploads_per_client", "%d is outside 1..max_uploads (%d)", dl.MaxUploadsPerClient, dl.MaxUploads)
	}
	return errors.Join(errs...)
}
