package batch

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestAutoConcurrencyCountsTheIntentSync: the auto cap sizes for how long a
// slot is held once its token is taken, the intent's sync before the write
// included. A vendor that answers at once behind a sync of 20 ms must get
// the cap Little's law gives for 20 ms, not one request in flight.
func TestAutoConcurrencyCountsTheIntentSync(t *testing.T) {
	const sync = 20 * time.Millisecond
	clock := newAutoClock()
	r := newRunner(256, map[string]Adapter{"shop": &mockAdapter{}})
	r.Clock = clock
	tgt := r.Targets["shop"]
	tgt.AutoConcurrency = true
	tgt.Limiter = rate.NewLimiter(1000, 1000)
	sink := &memSink{IntentErr: func(Op, int) error {
		clock.Advance(sync) // the writer syncs the intent while the sender waits
		return nil
	}}
	if err := runSafely(t, r, sliceSource(spreadOps(16, []string{"shop"}, 16)), sink); err != nil {
		t.Fatal(err)
	}
	want := autoLimit(tgt.Limiter, sync, tgt.Concurrency)
	tgt.slots.mu.Lock()
	got := tgt.slots.limit
	tgt.slots.mu.Unlock()
	if got < want {
		t.Errorf("auto cap after 16 writes behind a %v sync: %d, want at least %d (Little's law at 1000/s)", sync, got, want)
	}
}
