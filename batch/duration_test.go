package batch

import (
	"context"
	"testing"
	"time"
)

// TestRunDurationIsTimeAtTheVendor: a row's duration is the sum of its
// requests' times, never a Retry-After pause, a backoff or the wait for
// the rate limit; its reads and writes are counted apart.
func TestRunDurationIsTimeAtTheVendor(t *testing.T) {
	clock := newAutoClock()
	const atVendor = 10 * time.Millisecond
	m := &mockAdapter{ApplyFunc: func(_ context.Context, _ Op, attempt int) (Reply, error) {
		clock.Advance(atVendor)
		if attempt == 1 {
			return Reply{}, retryable(3 * time.Second) // the target pauses 3 s, then a backoff
		}
		return Reply{HTTPStatus: 200}, nil
	}}
	reader := &readerAdapter{mockAdapter: m, ReadFunc: func(context.Context, Op, int) (State, error) {
		clock.Advance(atVendor)
		return State{HTTPStatus: 200, Current: "enabled"}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": reader})
	r.Clock = clock
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource([]Op{newOp(0, "t", "u1", Disable)}), sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	res := sink.Results()
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	got := res[0]
	if got.Outcome != Applied || got.Attempts != 3 || got.Writes != 2 || got.Retries != 1 {
		t.Errorf("outcome %s, attempts %d, writes %d, retries %d; want applied after a read and two writes, one a retry",
			got.Outcome, got.Attempts, got.Writes, got.Retries)
	}
	if got.Duration != 3*atVendor {
		t.Errorf("duration %v, want %v: three requests of %v, and no pause or backoff", got.Duration, 3*atVendor, atVendor)
	}
	if elapsed := clock.Now().Sub(clockEpoch); elapsed < 3*time.Second {
		t.Fatalf("the clock moved %v: the pause never happened, the test proves nothing", elapsed)
	}
}
