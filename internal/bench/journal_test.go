package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readLines reads the journal's records: lines up to the first zero byte
// (a preallocated journal's unused tail).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		if bytes.ContainsFunc(b[i:], func(r rune) bool { return r != 0 }) {
			t.Fatalf("data after the zeros at %d", i)
		}
		b = b[:i]
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// Every record Append acknowledged is in the file, once, whole; concurrent
// appenders share fdatasyncs (group commit) rather than paying one each.
func TestJournalGroupCommit(t *testing.T) {
	for _, prealloc := range []int64{0, 4096, 1 << 20} {
		t.Run(fmt.Sprintf("prealloc=%d", prealloc), func(t *testing.T) { testJournalGroupCommit(t, prealloc) })
	}
}

func testJournalGroupCommit(t *testing.T, prealloc int64) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(path, prealloc)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rec := fmt.Sprintf(`{"writer":%d,"n":%d,"pad":"%s"}`, w, i, strings.Repeat("x", w*7))
				if err := j.Append(context.Background(), []byte(rec)); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	appends, syncs := j.Stats()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != writers*each {
		t.Fatalf("%d lines in the journal, want %d", len(lines), writers*each)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("record twice: %s", l)
		}
		seen[l] = true
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			rec := fmt.Sprintf(`{"writer":%d,"n":%d,"pad":"%s"}`, w, i, strings.Repeat("x", w*7))
			if !seen[rec] {
				t.Errorf("acknowledged record missing: %s", rec)
			}
		}
	}
	if appends != writers*each {
		t.Errorf("appends = %d, want %d", appends, writers*each)
	}
	// 32 writers waiting on each sync: batches must form.
	if syncs < 1 || syncs > appends/2 {
		t.Errorf("%d fdatasyncs for %d appends: no group commit", syncs, appends)
	}
	t.Logf("%d appends, %d fdatasyncs (%.1f records per sync)", appends, syncs, float64(appends)/float64(syncs))
}

// One writer alone: each record is on disk when Append returns, and each
// costs its own fdatasync (nothing else is queued to share it).
func TestJournalSequentialSyncsEach(t *testing.T) {
	for _, prealloc := range []int64{0, 16, 2<<20 + 5} {
		t.Run(fmt.Sprintf("prealloc=%d", prealloc), func(t *testing.T) { testJournalSequentialSyncsEach(t, prealloc) })
	}
}

func testJournalSequentialSyncsEach(t *testing.T, prealloc int64) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(path, prealloc)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := 0; i < 5; i++ {
		if err := j.Append(context.Background(), []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
		if lines := readLines(t, path); len(lines) != i+1 || lines[i] != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("after append %d the file holds %q", i, lines)
		}
	}
	if a, s := j.Stats(); a != 5 || s != 5 {
		t.Errorf("appends %d, syncs %d; want 5 and 5", a, s)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(context.Background(), []byte(`{}`)); !errors.Is(err, ErrJournalClosed) {
		t.Errorf("append after close: %v", err)
	}
}

// fdatasync really runs and its failure is not swallowed: on a FIFO the
// write succeeds and fdatasync fails (EINVAL), so Append must fail, and
// keep failing (after a failed sync nothing written since can be trusted).
func TestJournalSyncFailureIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Hold a reader so the writer's open does not block and writes land.
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	j, err := OpenJournal(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	err = j.Append(context.Background(), []byte(`{"n":1}`))
	if err == nil || !strings.Contains(err.Error(), "fdatasync") {
		t.Fatalf("append on a file that cannot be synced: %v", err)
	}
	buf := make([]byte, 64)
	n, _ := rd.Read(buf)
	if string(buf[:n]) != "{\"n\":1}\n" {
		t.Errorf("written before the sync: %q", buf[:n])
	}
	if err := j.Append(context.Background(), []byte(`{"n":2}`)); err == nil {
		t.Error("append after a failed sync succeeded")
	}
	if a, s := j.Stats(); a != 0 || s != 0 {
		t.Errorf("appends %d, syncs %d counted after failures", a, s)
	}
}

// An Append that cannot even hand its record over gives up with its
// context; one the writer took is always answered.
func TestJournalAppendContext(t *testing.T) {
	j, err := OpenJournal(filepath.Join(t.TempDir(), "journal"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := j.Append(ctx, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Either outcome is allowed once ctx is done; it must not hang.
	_ = j.Append(ctx, []byte(`{}`))
}
