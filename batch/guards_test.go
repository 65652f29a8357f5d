package batch

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunMaxWait: a Retry-After longer than the target's max_wait fails the
// row at once, names both durations, and pauses nothing: the next row of the
// same target is sent without waiting.
func TestRunMaxWait(t *testing.T) {
	clock := newAutoClock()
	m := &mockAdapter{ApplyFunc: func(_ context.Context, op Op, _ int) (Reply, error) {
		if op.Index == 0 {
			return Reply{}, retryable(277 * time.Hour)
		}
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": m})
	r.Clock = clock
	r.Targets["t"].MaxWait = time.Minute
	sink := &memSink{}
	ops := []Op{newOp(0, "t", "u0", Disable), newOp(1, "t", "u1", Disable)}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	checkRow(t, got[0], ops[0], Failed)
	if got[0].ErrorCode != CodeWaitTooLong || !strings.Contains(got[0].Message, "277h0m0s") || !strings.Contains(got[0].Message, "max_wait 1m0s") {
		t.Errorf("row 0: code %q message %q", got[0].ErrorCode, got[0].Message)
	}
	if got[0].Attempts != 1 {
		t.Errorf("row 0 sent %d times; a wait past max_wait is not retried", got[0].Attempts)
	}
	checkRow(t, got[1], ops[1], Applied)
	for _, d := range clock.Sleeps() {
		if d > time.Minute {
			t.Errorf("the run waited %v, past max_wait", d)
		}
	}
}

// TestRunCredentialsBreaker: after three answers in a row refusing a
// target's credentials, the target's remaining rows end skipped unsent,
// and another target goes on.
func TestRunCredentialsBreaker(t *testing.T) {
	bad := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) {
		return Reply{}, permanent(CodeUnauthorized, 401, "bad apikey")
	}}
	good := &mockAdapter{}
	r := newRunner(1, map[string]Adapter{"bad": bad, "good": good})
	var ops []Op
	for i := 0; i < 10; i++ {
		ops = append(ops, newOp(2*i, "bad", "b"+strconv.Itoa(i), Disable), newOp(2*i+1, "good", "g"+strconv.Itoa(i), Disable))
	}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	if n := bad.count("apply"); n != credentialsLimit {
		t.Errorf("the refusing target got %d requests, want %d", n, credentialsLimit)
	}
	if n := good.count("apply"); n != 10 {
		t.Errorf("the other target got %d requests, want 10", n)
	}
	skipped := 0
	for _, res := range sink.Results() {
		if res.Target == "bad" && res.Outcome == Skipped {
			skipped++
			if !strings.HasPrefix(res.Detail, "credentials refused") || res.Attempts != 0 {
				t.Errorf("skipped row: detail %q attempts %d", res.Detail, res.Attempts)
			}
		}
	}
	if skipped != 10-credentialsLimit {
		t.Errorf("%d rows skipped, want %d", skipped, 10-credentialsLimit)
	}
}

// TestRunInterruptedRowsCountAsApplied: a row whose write an earlier
// process sent before dying, found already in state on resume, is this
// run's change: applied, so that undo.csv lists it.
func TestRunInterruptedRowsCountAsApplied(t *testing.T) {
	m := &mockAdapter{}
	a := &readerAdapter{mockAdapter: m, ReadFunc: func(context.Context, Op, int) (State, error) {
		return State{InState: true, HTTPStatus: 200, Current: "disabled"}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": a})
	r.Interrupted = map[int]bool{1: true}
	ops := []Op{newOp(0, "t", "u0", Disable), newOp(1, "t", "u1", Disable)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	checkRow(t, got[0], ops[0], Already)
	checkRow(t, got[1], ops[1], Applied)
	if m.count("apply") != 0 {
		t.Error("a write was sent to a user already in state")
	}
}
