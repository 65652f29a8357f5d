package batch

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkOutcomeIndex indexes a journal of 100,000 results and looks
// every row up in input order, as the report does.
func BenchmarkOutcomeIndex(b *testing.B) {
	path := filepath.Join(b.TempDir(), JournalName)
	j, err := CreateJournal(path, JournalHeader{InputSHA256: "x"})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 100_000
	at := time.Date(2026, 11, 30, 15, 4, 5, 0, time.UTC)
	for i := range rows {
		k := i ^ 7 // a little out of order, as rows finish
		r := Result{Index: k, Line: k + 2, Target: "shop", User: "user-" + strings.Repeat("0", 7), Action: Disable,
			Outcome: Planned, Detail: "would disable", FinishedAt: at.Add(time.Duration(i) * time.Microsecond)}
		if err := j.Result(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		idx, err := OpenOutcomeIndex(path)
		if err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			if _, ok, err := idx.Lookup(i); !ok || err != nil {
				b.Fatal(i, ok, err)
			}
		}
		idx.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
