package threat

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Offender is one (site, client pseudonym, user-agent family) and its
// failures.
type Offender struct {
	Site      string           `json:"site"`
	Client    string           `json:"client"` // a pseudonym (OverflowClient for the overflow row)
	UserAgent string           `json:"user_agent"`
	Failures  int64            `json:"failures"`
	ByStatus  map[string]int64 `json:"by_status"`
	ByReason  map[string]int64 `json:"by_reason"`
	FirstSeen time.Time        `json:"first_seen"`
	LastSeen  time.Time        `json:"last_seen"`
	// Series is the offender's failures over time, in the report's
	// buckets (only non-empty ones), for a chart.
	Series []Point `json:"series"`
}

// Point is one time bucket's failures: Minute is the bucket's start.
type Point struct {
	Minute time.Time `json:"minute"`
	Count  int64     `json:"count"`
}

// Report is the top offenders since a time.
type Report struct {
	Since     time.Time `json:"since"`
	Generated time.Time `json:"generated"`
	// Bucket is the width of the offenders' Series buckets.
	Bucket    string     `json:"bucket"`
	Failures  int64      `json:"failures"` // all failures since Since
	Offenders []Offender `json:"offenders"`
}

// BuildReport reads the top offenders since since from the store.
func BuildReport(ctx context.Context, st Store, now, since time.Time, top int) (Report, error) {
	rep := Report{Since: since.Truncate(time.Minute).UTC(), Generated: now.UTC(), Offenders: []Offender{}}
	tot, err := st.AuthFailureTotals(ctx, since, nil, 1, 1)
	if err != nil {
		return rep, fmt.Errorf("build security report: %w", err)
	}
	if len(tot) == 1 {
		rep.Failures = tot[0].Count
	}
	rows, err := st.TopAuthFailures(ctx, since, top)
	if err != nil {
		return rep, fmt.Errorf("build security report: %w", err)
	}
	for _, r := range rows {
		n := len(rep.Offenders)
		if n == 0 || rep.Offenders[n-1].Site != r.Site || rep.Offenders[n-1].Client != r.Client || rep.Offenders[n-1].UserAgent != r.UserAgent {
			rep.Offenders = append(rep.Offenders, Offender{Site: r.Site, Client: r.Client, UserAgent: r.UserAgent,
				ByStatus: map[string]int64{}, ByReason: map[string]int64{}, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen})
			n++
		}
		o := &rep.Offenders[n-1]
		o.Failures += r.Count
		o.ByStatus[strconv.Itoa(r.Status)] += r.Count
		o.ByReason[r.Reason] += r.Count
		if r.FirstSeen.Before(o.FirstSeen) {
			o.FirstSeen = r.FirstSeen
		}
		if r.LastSeen.After(o.LastSeen) {
			o.LastSeen = r.LastSeen
		}
	}
	bucket := SeriesBucket(now.Sub(since))
	rep.Bucket = bucket.String()
	for i := range rep.Offenders {
		o := &rep.Offenders[i]
		pts, err := st.AuthFailureSeries(ctx, since, bucket, o.Site, o.Client, o.UserAgent)
		if err != nil {
			return rep, fmt.Errorf("build security report: %w", err)
		}
		o.Series = make([]Point, len(pts))
		for j, p := range pts {
			o.Series[j] = Point{Minute: p.Minute.UTC(), Count: p.Count}
		}
	}
	return rep, nil
}

// SeriesBucket is the bucket width for a report over span: whole
// minutes, at most about 120 buckets (1 minute for the last 2 hours, 12
// minutes for a day, 84 for a week).
func SeriesBucket(span time.Duration) time.Duration {
	b := (span / 120).Truncate(time.Minute)
	if b < time.Minute {
		b = time.Minute
	}
	return b
}

// WriteText writes the report as a table.
func (r Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Authentication failures since %s: %d\n", r.Since.Format(time.RFC3339), r.Failures)
	if len(r.Offenders) == 0 {
		_, err := fmt.Fprintln(w, "No failures recorded in this period.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAILURES\tSITE\tCLIENT\tUSER AGENT\tSTATUS\tREASONS\tFIRST SEEN\tLAST SEEN")
	for _, o := range r.Offenders {
		site := o.Site
		if site == "" {
			site = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Failures, site, o.Client, o.UserAgent, counts(o.ByStatus), counts(o.ByReason),
			o.FirstSeen.UTC().Format(time.RFC3339), o.LastSeen.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// counts writes "a:3 b:1", largest first.
func counts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, " ")
}

// ReportParams parses a report's since (a duration, 1m..8784h; default
// 1h) and top (1..1000; default 20), as the CLI and the endpoint take them.
func ReportParams(since, top string) (time.Duration, int, error) {
	d, n := time.Hour, 20
	if since != "" {
		v, err := time.ParseDuration(since)
		if err != nil || v < time.Minute || v > 366*24*time.Hour {
			return 0, 0, fmt.Errorf("since %.32q: want a duration from 1m to 8784h, such as 15m, 1h or 24h", since)
		}
		d = v
	}
	if top != "" {
		v, err := strconv.Atoi(top)
		if err != nil || v < 1 || v > 1000 {
			return 0, 0, fmt.Errorf("top %.32q: want a number from 1 to 1000", top)
		}
		n = v
	}
	return d, n, nil
}
