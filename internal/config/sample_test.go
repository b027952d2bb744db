package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// samplePath is the sample configuration shipped at the repository root.
const samplePath = "../../parley.yaml"

// TestSampleConfigLoads keeps parley.yaml valid: it loads as parley serve
// would, with no environment.
func TestSampleConfigLoads(t *testing.T) {
	c, err := Load(samplePath, env(nil))
	if err != nil {
		t.Fatalf("parley.yaml: %v", err)
	}
	if c.DataDir != Default().DataDir {
		t.Errorf("parley.yaml data_dir = %q, want the default %q (the Docker image's volume)", c.DataDir, Default().DataDir)
	}
	if c.InsecureHTTP || c.TLS.CertFile == "" || !strings.HasPrefix(c.PublicURL, "https://") {
		t.Errorf("parley.yaml is not a TLS configuration: %+v", c)
	}
	// Commented as defaults: the sample must not quietly change them.
	want := Default()
	if c.DirectLine != want.DirectLine || c.Retention != want.Retention || c.Limits != want.Limits || c.Timeouts != want.Timeouts ||
		c.Bots.KeyReload != want.Bots.KeyReload || c.Bots.DeliveryRetryFor != want.Bots.DeliveryRetryFor ||
		c.Keys.Provider != want.Keys.Provider || c.Keys.DataKeyCache != want.Keys.DataKeyCache || c.Keys.PKCS11.Sessions != want.Keys.PKCS11.Sessions ||
		c.MaxConnections != want.MaxConnections || c.Metrics != want.Metrics || c.AccessLog != want.AccessLog || c.MaxConnectionsPerClient != want.MaxConnectionsPerClient || c.LogLevel != want.LogLevel {
		t.Errorf("parley.yaml says it holds the defaults but differs:\n got %+v\nwant %+v", c, want)
	}
}

// TestSampleConfigComplete keeps parley.yaml complete: every setting the
// Config accepts appears in it (a new field must be documented there).
func TestSampleConfigComplete(t *testing.T) {
	b, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var have []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind == yaml.DocumentNode {
			walk(n.Content[0], prefix)
			return
		}
		if n.Kind != yaml.MappingNode {
			have = append(have, prefix)
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walk(n.Content[i+1], strings.TrimPrefix(prefix+"."+n.Content[i].Value, "."))
		}
	}
	walk(&root, "")
	want := yamlPaths(reflect.TypeFor[Config](), "")
	for _, p := range want {
		if !slices.Contains(have, p) {
			t.Errorf("parley.yaml does not show %s", p)
		}
	}
	if len(want) < 50 { // the walk itself works
		t.Fatalf("found only %d settings in Config: %v", len(want), want)
	}
}

// yamlPaths lists the dotted yaml paths of t's leaf settings.
func yamlPaths(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		path := strings.TrimPrefix(prefix+"."+name, ".")
		if f.Type.Kind() == reflect.Struct {
			out = append(out, yamlPaths(f.Type, path)...)
		} else {
			out = append(out, path)
		}
	}
	return out
}
