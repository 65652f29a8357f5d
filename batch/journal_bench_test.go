package batch

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkOutcomeIndex indexes a journal of 100,000 results and looks
// every row up in input order, as the report does, then reads it as
// --resume does.
func BenchmarkOutcomeIndex(b *testing.B) {
	b.Run("results", func(b *testing.B) { benchOutcomeIndex(b, false) })
	b.Run("intents", func(b *testing.B) { benchOutcomeIndex(b, true) })
}

// benchOutcomeIndex: with intents, each row's result follows its intent,
// as in a run that writes.
func benchOutcomeIndex(b *testing.B, intents bool) {
	path := filepath.Join(b.TempDir(), JournalName)
	j, err := CreateJournal(path, JournalHeader{InputSHA256: "x"})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 100_000
	at := time.Date(2026, 11, 30, 15, 4, 5, 0, time.UTC)
	for i := range rows {
		k := i ^ 7 // a little out of order, as rows finish
		if intents {
			if err := j.Intent(Op{Index: k, Line: k + 2, Target: "shop", User: "user-0000000", Action: Disable}, 1); err != nil {
				b.Fatal(err)
			}
		}
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
		if _, err := ReadJournal(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
