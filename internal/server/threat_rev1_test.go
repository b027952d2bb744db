package server_test

import (
	"strings"
	"testing"
)

// The report's query is checked whole: a repeated parameter (which value
// wins?), an unknown one (a typo such as sinse=24h would silently report
// the last hour) and a huge value are refused, and the answer does not
// echo an unbounded value.
func TestSecurityReportQueryRefusals(t *testing.T) {
	h := newHarness(t)
	if r := h.do("GET", h.metrics+"/security/report?since=24h&top=5", "", nil, nil); r.status != 200 {
		t.Fatalf("a good query = %d %s", r.status, r.raw)
	}
	long := strings.Repeat("9", 8000)
	for _, q := range []string{"since=1h&since=24h", "top=1&top=1000", "sinse=24h", "top=5&x=1", "since=" + long, "top=" + long, "since=-1h", "top=-5", "top=+5"} {
		r := h.do("GET", h.metrics+"/security/report?"+q, "", nil, nil)
		if r.status != 400 || !strings.Contains(string(r.raw), "BadArgument") {
			t.Errorf("GET /security/report?%.40s = %d %.200s; want 400 BadArgument", q, r.status, r.raw)
		}
		if len(r.raw) > 1000 {
			t.Errorf("GET /security/report?%.40s answered %d bytes: the value is echoed unbounded", q, len(r.raw))
		}
	}
}
