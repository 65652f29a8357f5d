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

// TestRunStops: three answers in a row refusing a target's credentials,
// three connection failures (retries of one row count: each is an attempt),
// or three answers that are not the vendor's stop a target: its remaining
// rows end skipped unsent, with a detail saying which, and the other target
// goes on.
func TestRunStops(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, code string
		err                error
		skipped            int // a retried row stops the target alone
	}{
		{"credentials", "credentials refused", CodeUnauthorized, permanent(CodeUnauthorized, 401, "bad apikey"), 10 - stopLimit},
		{"unreachable", "target unreachable: check base_url", CodeNetwork,
			&Error{Kind: Retryable, Code: CodeNetwork, Message: "connecting: connection refused", Fault: FaultUnreachable}, 9},
		{"foreign", "not the vendor's API at base_url: check base_url", CodeBadResponse,
			&Error{Kind: Permanent, Code: CodeBadResponse, HTTPStatus: 404, Message: "unexpected answer: 404 page not found", Fault: FaultForeign}, 10 - stopLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) { return Reply{}, tc.err }}
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
			if n := bad.count("apply"); n != stopLimit {
				t.Errorf("the stopped target got %d requests, want %d", n, stopLimit)
			}
			if n := good.count("apply"); n != 10 {
				t.Errorf("the other target got %d requests, want 10", n)
			}
			skipped := 0
			for _, res := range sink.Results() {
				if res.Target != "bad" {
					continue
				}
				if res.Outcome == Skipped {
					skipped++
				}
				if res.Outcome != Skipped && res.Outcome != Failed {
					t.Errorf("line %d: %s", res.Line, res.Outcome)
				}
				if res.Outcome == Skipped && (!strings.HasPrefix(res.Detail, tc.prefix) || res.ErrorCode != tc.code || res.Attempts != 0) {
					t.Errorf("line %d: skipped %q (%s) after %d attempts, want %q… unsent", res.Line, res.Detail, res.ErrorCode, res.Attempts, tc.prefix)
				}
			}
			if skipped != tc.skipped {
				t.Errorf("%d rows skipped, want %d", skipped, tc.skipped)
			}
		})
	}
}

// TestRunStreakResets: a success, or an answer of another kind, between
// condemning answers ends the streak: the target goes on.
func TestRunStreakResets(t *testing.T) {
	unreachable := &Error{Kind: Permanent, Code: CodeTLS, Message: "handshake", Fault: FaultUnreachable}
	foreign := &Error{Kind: Permanent, Code: CodeBadResponse, HTTPStatus: 404, Fault: FaultForeign}
	answers := []error{unreachable, unreachable, nil, unreachable, unreachable, foreign, foreign,
		permanent(CodeNotFound, 404, "no such user"), foreign, foreign, nil}
	m := &mockAdapter{ApplyFunc: func(_ context.Context, op Op, _ int) (Reply, error) {
		if err := answers[op.Index]; err != nil {
			return Reply{}, err
		}
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(1, map[string]Adapter{"t": m})
	var ops []Op
	for i := range answers {
		ops = append(ops, newOp(i, "t", "u"+strconv.Itoa(i), Disable))
	}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.byIndex(t)[len(answers)-1]; got.Outcome != Applied {
		t.Errorf("last row: %s %q; no three condemning answers of one kind came in a row", got.Outcome, got.Detail)
	}
	if n := m.count("apply"); n != len(answers) {
		t.Errorf("%d requests, want %d", n, len(answers))
	}
}

// TestRunCredentialsUnsureDetail: a refusal the vendor also gives for an
// unknown user says both, on its row and, once the target stops, on the
// skipped rows, with the lines that got it.
func TestRunCredentialsUnsureDetail(t *testing.T) {
	m := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) {
		return Reply{}, &Error{Kind: Permanent, Code: CodeUnauthorized, HTTPStatus: 401, Message: "Invalid token or user ID", CredentialsUnsure: true}
	}}
	r := newRunner(1, map[string]Adapter{"t": m})
	ops := []Op{newOp(0, "t", "a", ToggleStatus), newOp(1, "t", "b", ToggleStatus), newOp(2, "t", "c", ToggleStatus), newOp(3, "t", "d", ToggleStatus)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	if d := got[0].Detail; got[0].Outcome != Failed || !strings.Contains(d, "bad credentials") || !strings.Contains(d, "unknown user") {
		t.Errorf("row 0: %s %q, want failed naming both causes", got[0].Outcome, d)
	}
	d := got[3].Detail
	if got[3].Outcome != Skipped || !strings.HasPrefix(d, "credentials refused, or no such users") ||
		!strings.Contains(d, "lines 2, 3, 4") || !strings.Contains(d, "HTTP 401, Invalid token or user ID") {
		t.Errorf("row 3: %s %q", got[3].Outcome, d)
	}
}

// TestRunHintIsTheDetail: an adapter's hint replaces the generic advice.
func TestRunHintIsTheDetail(t *testing.T) {
	m := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) {
		return Reply{}, &Error{Kind: Permanent, Code: CodeNotFound, Message: "none", Hint: "no user has this userName"}
	}}
	r := newRunner(1, map[string]Adapter{"t": m})
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource([]Op{newOp(0, "t", "userName:x", Disable)}), sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.byIndex(t)[0]; got.Detail != "no user has this userName" {
		t.Errorf("detail %q", got.Detail)
	}
}

// TestRunInFlightRowKeepsItsAnswer: a row whose retries stop the target
// ends on its own last answer — unknown after an answer that may have
// taken effect — never skipped, which would say it was not sent.
func TestRunInFlightRowKeepsItsAnswer(t *testing.T) {
	portal := &Error{Kind: Ambiguous, Code: CodeBadResponse, HTTPStatus: 200, Message: "<html>portal</html>", Fault: FaultForeign}
	m := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) { return Reply{}, portal }}
	r := newRunner(1, map[string]Adapter{"t": m})
	ops := []Op{newOp(0, "t", "u0", Disable), newOp(1, "t", "u1", Disable)}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	if got[0].Outcome != Unknown || got[0].Attempts != stopLimit || got[0].ErrorCode != CodeBadResponse {
		t.Errorf("row 0: %s %s after %d attempts, want unknown bad_response after %d", got[0].Outcome, got[0].ErrorCode, got[0].Attempts, stopLimit)
	}
	if got[1].Outcome != Skipped || got[1].Attempts != 0 || !strings.HasPrefix(got[1].Detail, "not the vendor's API at base_url") {
		t.Errorf("row 1: %s after %d attempts %q, want skipped unsent", got[1].Outcome, got[1].Attempts, got[1].Detail)
	}
}
