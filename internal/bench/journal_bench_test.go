package bench

import (
	"context"
	"path/filepath"
	"testing"
)

// journalRecord is a typical activity's size (as the store benchmarks use).
var journalRecord = func() []byte {
	b := make([]byte, 600)
	for i := range b {
		b[i] = 'x'
	}
	return b
}()

func benchJournal(b *testing.B, prealloc int64) *Journal {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal"), prealloc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	// The first append lays down the preallocated zeros: not measured.
	if err := j.Append(context.Background(), journalRecord); err != nil {
		b.Fatal(err)
	}
	return j
}

// BenchmarkJournalAppendSerial is one durable append (write, fdatasync) at
// a time: the durable floor's counterpart of the store's
// BenchmarkAppendSerial.
func BenchmarkJournalAppendSerial(b *testing.B) {
	for _, pre := range []struct {
		name string
		n    int64
	}{{"prealloc", 64 << 20}, {"append", 0}} {
		b.Run(pre.name, func(b *testing.B) {
			j := benchJournal(b, pre.n)
			for b.Loop() {
				if err := j.Append(context.Background(), journalRecord); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJournalAppendParallel has 16 writers per core sharing fdatasyncs
// (group commit), like the store's BenchmarkAppendParallel.
func BenchmarkJournalAppendParallel(b *testing.B) {
	j := benchJournal(b, 64<<20)
	a0, s0 := j.Stats()
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := j.Append(context.Background(), journalRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
	a, s := j.Stats()
	b.ReportMetric(float64(a-a0)/float64(s-s0), "records/sync")
}
