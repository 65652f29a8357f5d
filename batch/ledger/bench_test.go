package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/userbatch/userbatch/batch"
)

// BenchmarkClaimDone measures what the run loop pays per changed row: a
// Claim and a Done, each durable. "serial" is one worker; "parallel" is
// GOMAXPROCS*4 workers (b.RunParallel), as a run's workers share the ledger.
func BenchmarkClaimDone(b *testing.B) {
	stores := []struct {
		name  string
		fresh freshStore
	}{{"sqlite", sqliteStore}, {"postgres", postgresStore}}
	for _, s := range stores {
		b.Run(s.name+"/serial", func(b *testing.B) {
			l := mustOpen(b, s.fresh(b))
			b.ResetTimer()
			for i := range b.N {
				claimDone(b, l, i)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(s.name+"/parallel", func(b *testing.B) {
			l := mustOpen(b, s.fresh(b))
			var next atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					claimDone(b, l, int(next.Add(1)))
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func claimDone(b *testing.B, l Ledger, i int) {
	e := entry(fmt.Sprintf("user-%d", i), batch.Disable, "run-bench")
	ctx := context.Background()
	prev, err := l.Claim(ctx, e)
	if err != nil || prev != nil {
		b.Fatalf("Claim: %v %v", prev, err)
	}
	e.Outcome = batch.Applied
	if err := l.Done(ctx, e); err != nil {
		b.Fatalf("Done: %v", err)
	}
}
