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

// TestRunInterruptedAlreadyUnreadable: on a vendor that cannot be read, a
// row whose write an earlier process sent, and that the vendor now calls
// already done, may have been in that state before the run: it ends
// already with AlreadyAfterInterruption, not applied. A row not
// interrupted that the vendor calls already is a plain already.
func TestRunInterruptedAlreadyUnreadable(t *testing.T) {
	m := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) {
		return Reply{Already: true, HTTPStatus: 403}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": m})
	r.Interrupted = map[int]bool{1: true}
	ops := []Op{newOp(0, "t", "u0", UpgradeRole), newOp(1, "t", "u1", UpgradeRole)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	checkRow(t, got[0], ops[0], Already)
	checkRow(t, got[1], ops[1], Already)
	if got[0].Detail == AlreadyAfterInterruption || got[1].Detail != AlreadyAfterInterruption {
		t.Errorf("details %q / %q", got[0].Detail, got[1].Detail)
	}
}

// TestRunEffectiveAt: a row not yet due ends not_due unsent; a due one runs;
// one later than the catch-up window ends skipped, saying by how much.
func TestRunEffectiveAt(t *testing.T) {
	clock := newAutoClock()
	m := &mockAdapter{}
	r := newRunner(1, map[string]Adapter{"t": m})
	r.Clock = clock
	r.CatchUp = 48 * time.Hour
	ops := []Op{newOp(0, "t", "future", Disable), newOp(1, "t", "due", Disable), newOp(2, "t", "stale", Disable), newOp(3, "t", "now", Disable)}
	ops[0].EffectiveAt = clockEpoch.Add(3 * time.Hour)
	ops[1].EffectiveAt = clockEpoch.Add(-time.Hour)
	ops[2].EffectiveAt = clockEpoch.Add(-72 * time.Hour)
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	checkRow(t, got[0], ops[0], NotDue)
	checkRow(t, got[1], ops[1], Applied)
	checkRow(t, got[2], ops[2], Skipped)
	checkRow(t, got[3], ops[3], Applied)
	if got[0].Detail != "not due: due "+ops[0].EffectiveAt.Format(time.RFC3339)+" (in 3h00m)" || !strings.Contains(got[2].Detail, "72h0m0s ago") {
		t.Errorf("details %q / %q", got[0].Detail, got[2].Detail)
	}
	if n := m.count("apply"); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// TestUntilText: days with thousands separators from one day on, hours and
// minutes below.
func TestUntilText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		26325*24*time.Hour + 10*time.Hour: "26,325 days",
		2*24*time.Hour - time.Millisecond: "2 days",
		36*time.Hour - time.Minute:        "1 day",
		24 * time.Hour:                    "1 day",
		23*time.Hour + 59*time.Minute:     "23h59m",
		3 * time.Hour:                     "3h00m",
		20*time.Minute + 20*time.Second:   "20m",
		10 * time.Second:                  "under a minute",
	} {
		if got := untilText(d); got != want {
			t.Errorf("untilText(%v) = %q, want %q", d, got, want)
		}
	}
}

// memGate is a Gate over a map: held keys end already; it records settles.
type memGate struct {
	held    map[string]bool
	settled chan string
}

func (g *memGate) Admit(_ context.Context, op Op) (*Result, error) {
	if g.held[op.User] {
		return &Result{Index: op.Index, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action,
			Outcome: Already, Detail: "done by run r1"}, nil
	}
	return nil, nil
}

func (g *memGate) Settle(_ context.Context, op Op, res Result) error {
	g.settled <- op.User + "=" + string(res.Outcome)
	return nil
}

func TestRunGate(t *testing.T) {
	m := &mockAdapter{}
	r := newRunner(1, map[string]Adapter{"t": m})
	g := &memGate{held: map[string]bool{"u0": true}, settled: make(chan string, 4)}
	r.Gate = g
	ops := []Op{newOp(0, "t", "u0", ToggleStatus), newOp(1, "t", "u1", ToggleStatus)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	checkRow(t, got[0], ops[0], Already)
	checkRow(t, got[1], ops[1], Applied)
	if n := m.count("apply"); n != 1 {
		t.Errorf("%d requests, want 1: a held row is never sent", n)
	}
	if s := <-g.settled; s != "u1=applied" || len(g.settled) != 0 {
		t.Errorf("settled %q (+%d), want u1=applied alone", s, len(g.settled))
	}
}

// TestRunPlan: apply follows the plan: a row planned no change ends already
// unsent and unread; a row planned to change but found in state ends skipped
// as drifted; a row planned to change and still to change is written.
func TestRunPlan(t *testing.T) {
	m := &mockAdapter{}
	inState := map[string]bool{"drift": true}
	a := &readerAdapter{mockAdapter: m, ReadFunc: func(_ context.Context, op Op, _ int) (State, error) {
		if inState[op.User] {
			return State{InState: true, Current: "disabled"}, nil
		}
		return State{Current: "enabled"}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": a})
	plans := map[int]Plan{0: {Change: NoChange, State: "disabled"}, 1: {Change: WouldChange, State: "enabled"}, 2: {Change: WouldChange, State: "enabled"}}
	r.Plan = func(i int) Plan { return plans[i] }
	ops := []Op{newOp(0, "t", "same", Disable), newOp(1, "t", "drift", Disable), newOp(2, "t", "go", Disable)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	checkRow(t, got[0], ops[0], Already)
	checkRow(t, got[1], ops[1], Skipped)
	checkRow(t, got[2], ops[2], Applied)
	if got[1].Detail != "drifted: planned would change (enabled), found disabled: not sent" {
		t.Errorf("drift detail %q", got[1].Detail)
	}
	if n := m.count("apply"); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
	if got[0].Attempts != 0 {
		t.Errorf("a row planned no change was read (%d requests)", got[0].Attempts)
	}
}

// TestRunCredentialsUnsure: a refusal the vendor also gives for unknown
// users (ClearSquare's 401) stops the target only while its credentials have
// never been accepted.
func TestRunCredentialsUnsure(t *testing.T) {
	m := &mockAdapter{ApplyFunc: func(_ context.Context, op Op, _ int) (Reply, error) {
		if strings.HasPrefix(op.User, "gone") {
			return Reply{}, &Error{Kind: Permanent, Code: CodeUnauthorized, HTTPStatus: 401, CredentialsUnsure: true}
		}
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": m})
	ops := []Op{newOp(0, "t", "ok1", ToggleStatus), newOp(1, "t", "gone1", ToggleStatus), newOp(2, "t", "gone2", ToggleStatus),
		newOp(3, "t", "gone3", ToggleStatus), newOp(4, "t", "ok2", ToggleStatus)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.byIndex(t)[4]; got.Outcome != Applied {
		t.Errorf("ok2 after three unknown users: %s %q", got.Outcome, got.Detail)
	}

	// Never accepted: three in a row stop the target.
	r = newRunner(1, map[string]Adapter{"t": m})
	ops = []Op{newOp(0, "t", "gone1", ToggleStatus), newOp(1, "t", "gone2", ToggleStatus), newOp(2, "t", "gone3", ToggleStatus), newOp(3, "t", "ok1", ToggleStatus)}
	sink = &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.byIndex(t)[3]; got.Outcome != Skipped {
		t.Errorf("after three refusals and no success: %s, want skipped", got.Outcome)
	}
}
