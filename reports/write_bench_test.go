package reports

import (
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// BenchmarkWriteRun writes rows as a run of 10,000 rows a second leaves
// them: each finished 100 µs after the one before, every tenth planned (a
// dry run's), the others applied (undo.csv and the timeline take them).
func BenchmarkWriteRun(b *testing.B) {
	h := header("target", "user", "action", "ticket")
	w, err := Create(b.TempDir(), h)
	if err != nil {
		b.Fatal(err)
	}
	rec := []string{"shop", "user-0000001", "disable", "T-42"}
	row := batch.Row{Line: 1, Record: rec, Op: batch.Op{Target: "shop", User: "user-0000001", Action: batch.Disable}}
	res := batch.Result{Target: "shop", User: "user-0000001", Action: batch.Disable, HTTPStatus: 200,
		Attempts: 1, Duration: 3 * time.Millisecond}
	at := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		row.Line++
		res.Outcome = batch.Applied
		if row.Line%10 == 0 {
			res.Outcome = batch.Planned
		}
		res.FinishedAt = at.Add(time.Duration(row.Line) * 100 * time.Microsecond)
		if err := w.Write(row, res); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Close(Run{}); err != nil {
		b.Fatal(err)
	}
}
