package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// BenchmarkClaimDone measures what the run loop pays per changed row: a
// Claim and a Done, each durable before it returns. "workers-N" runs N
// goroutines at once, as a run's workers share one ledger.
func BenchmarkClaimDone(b *testing.B) {
	for _, s := range benchStores {
		for _, workers := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/workers-%d", s.name, workers), func(b *testing.B) {
				l := mustOpen(b, s.fresh(b))
				benchParallel(b, workers, func(i int) { claimDone(b, l, i) })
			})
		}
	}
}

// BenchmarkClaimHeld measures tonight's run over yesterday's file: every
// Claim finds the change done and writes nothing.
func BenchmarkClaimHeld(b *testing.B) {
	const held = 1000
	for _, s := range benchStores {
		b.Run(s.name, func(b *testing.B) {
			l := mustOpen(b, s.fresh(b))
			benchParallel(b, 8, func(i int) { claimDone(b, l, i) }) // fills the first b.N keys
			for i := range held {
				claimDone(b, l, b.N+1+i)
			}
			b.ResetTimer()
			for i := range b.N {
				e := entry(fmt.Sprintf("user-%d", b.N+1+i%held), batch.Disable, "run-tonight")
				if prev, err := l.Claim(context.Background(), e); err != nil || prev == nil {
					b.Fatalf("Claim of a held key: %v, %v", prev, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

var benchStores = []struct {
	name  string
	fresh freshStore
}{{"sqlite", sqliteStore}, {"postgres", postgresStore}}

// benchParallel calls fn b.N times with distinct i from workers goroutines
// and reports rows/s.
func benchParallel(b *testing.B, workers int, fn func(i int)) {
	var next atomic.Int64
	done := make(chan struct{})
	b.ResetTimer()
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
				fn(i)
			}
		}()
	}
	for range workers {
		<-done
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func claimDone(b *testing.B, l Ledger, i int) {
	e := entry(fmt.Sprintf("user-%d", i), batch.Disable, "run-bench")
	ctx := context.Background()
	prev, err := l.Claim(ctx, e)
	if err != nil || prev != nil {
		b.Errorf("Claim: %v %v", prev, err)
		return
	}
	e.Outcome = batch.Applied
	if err := l.Done(ctx, e); err != nil {
		b.Errorf("Done: %v", err)
	}
}

// BenchmarkBatcherClaimDone is BenchmarkClaimDone through the path a run
// takes at one worker: rows are expected as the run reads them (up to its
// window of 4,096 ahead), each claimed just before it would be sent (ClaimBatch to
// MaxClaimBatch to a transaction) and recorded done, all durable once Close returns.
func BenchmarkBatcherClaimDone(b *testing.B) {
	for _, s := range benchStores {
		b.Run(s.name+"/workers-1", func(b *testing.B) {
			l := mustOpen(b, s.fresh(b))
			bt := NewBatcher(l, ClaimBatch, MaxClaimBatch, time.Now)
			queue := make(chan int, 4096)
			b.ResetTimer()
			go func() {
				for i := range b.N {
					bt.Expect(i, entry(fmt.Sprintf("user-%d", i), batch.Disable, "run-bench"), true)
					queue <- i
				}
				close(queue)
			}()
			ctx := context.Background()
			for i := range queue {
				e := entry(fmt.Sprintf("user-%d", i), batch.Disable, "run-bench")
				if prev, err := bt.Claim(ctx, i, e); err != nil || prev != nil {
					b.Fatalf("Claim: %v %v", prev, err)
				}
				e.Outcome = batch.Applied
				if err := bt.Done(i, e); err != nil {
					b.Fatalf("Done: %v", err)
				}
			}
			if err := bt.Close(ctx); err != nil {
				b.Fatalf("Close: %v", err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
