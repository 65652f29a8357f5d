package batch

import (
	"fmt"
	"os"
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
			if _, ok, err := idx.Lookup(Op{Index: i}); !ok || err != nil {
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

// BenchmarkJournalBytes writes 1,000,000 rows through the Journal as a run
// does, each row's intent then its result ("run"), or its result alone
// ("dry-run"), and reports the journal's bytes per row (README
// "Performance").
func BenchmarkJournalBytes(b *testing.B) {
	b.Run("run", func(b *testing.B) { benchJournalBytes(b, true) })
	b.Run("dry-run", func(b *testing.B) { benchJournalBytes(b, false) })
}

func benchJournalBytes(b *testing.B, real bool) {
	const rows = 1_000_000
	started := time.Date(2026, 11, 30, 2, 0, 0, 123456789, time.UTC)
	for b.Loop() {
		path := filepath.Join(b.TempDir(), JournalName)
		j, err := CreateJournal(path, JournalHeader{InputSHA256: strings.Repeat("f", 64), Targets: []string{"shop"},
			ConfigSHA256: strings.Repeat("c", 64), RunID: "20261130T020000Z-abcdef"})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.StartedBy(started, "operator@host"); err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			op := Op{Index: i, Line: i + 2, Target: "shop", User: fmt.Sprintf("user-%07d", i), Action: Disable}
			res := Result{Index: i, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action,
				Outcome: Planned, Detail: "would disable", Duration: 40 * time.Microsecond,
				FinishedAt: started.Add(time.Duration(i) * 250 * time.Microsecond)} // 4,000 rows/s
			if real {
				if err := j.Intent(op, 1); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 { // a group commit for 64 workers' intents
					if err := j.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				res.Outcome, res.Detail, res.HTTPStatus, res.Attempts, res.Writes = Applied, "disabled", 200, 1, 1
				res.Duration = 3*time.Millisecond + time.Duration(i%1000)*time.Microsecond
			}
			if err := j.Result(res); err != nil {
				b.Fatal(err)
			}
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(info.Size())/rows, "bytes/row")
	}
}
