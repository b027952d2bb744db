package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/store/sqlite"
	"github.com/parley-gw/parley/internal/threat"
)

// `parley security report` reads what a server's detector stored in the
// data directory, without the server.
func TestSecurityReport(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(data, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	d := threat.New(threat.Config{}, st, nil, nil, slog.New(slog.DiscardHandler))
	for range 30 {
		d.Observe(threat.Event{Client: "a_00000000000000aa", UserAgent: threat.UACurl, Status: 403, Reason: "invalid_credential", Surface: "directline"})
	}
	for range 12 {
		d.Observe(threat.Event{Site: "site-1", Client: "a_00000000000000bb", UserAgent: threat.UAPythonRequests, Status: 401, Reason: "missing_credential", Surface: "directline"})
	}
	d.Observe(threat.Event{Site: "site-1", Client: "a_00000000000000bb", UserAgent: threat.UAPythonRequests, Status: 429, Reason: "rate_limited", Surface: "directline"})
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out, _, err := run(t, nil, "security", "report", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], ": 43") || !strings.HasPrefix(lines[1], "FAILURES") ||
		!strings.Contains(lines[2], "a_00000000000000aa") || !strings.Contains(lines[2], "curl") || !strings.Contains(lines[2], "403:30") ||
		!strings.Contains(lines[3], "site-1") || !strings.Contains(lines[3], "401:12 429:1") || !strings.Contains(lines[3], "missing_credential:12 rate_limited:1") {
		t.Fatalf("security report =\n%s", out)
	}

	out, _, err = run(t, nil, "security", "report", "--data", data, "--top", "1", "--since", "24h", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep threat.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Failures != 43 || len(rep.Offenders) != 1 || rep.Offenders[0].Failures != 30 || rep.Offenders[0].ByReason["invalid_credential"] != 30 {
		t.Fatalf("security report --json --top 1 = %s, %v", out, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "5s"}, "--since"},
		{[]string{"--since", "yesterday"}, "such as 15m, 1h or 24h"},
		{[]string{"--top", "0"}, "--top"},
		{[]string{"--top", "many"}, "1 to 1000"},
		{[]string{"extra"}, "unknown command"},
	} {
		args := append([]string{"security", "report", "--data", data}, c.args...)
		if _, _, err := run(t, nil, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("security report %v = %v; want an error saying %q", c.args, err, c.want)
		}
	}
	if _, _, err := run(t, nil, "security", "report", "--data", filepath.Join(data, "missing")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("security report on a missing data directory = %v; want it to mention --config", err)
	}
	if _, _, err := run(t, nil, "security", "repot", "--data", data); err == nil {
		t.Error("security repot succeeded")
	}
	if _, err := os.Stat(filepath.Join(data, "missing")); err == nil {
		t.Error("the report created a data directory")
	}
}
