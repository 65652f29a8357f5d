package batch

import (
	"errors"
	"testing"
	"time"
)

// TestResumeSettlesInFlight: of the writes a dead process left in flight,
// one that known settles takes known's outcome, a toggle (may not be sent
// again) ends unknown, and an idempotent one is sent again as interrupted.
func TestResumeSettlesInFlight(t *testing.T) {
	j, path := newTestJournal(t)
	input := []Op{newOp(0, "us", "t0", Disable), newOp(1, "us", "t1", ToggleStatus), newOp(2, "us", "t2", Disable),
		newOp(3, "us", "t3", ToggleStatus), newOp(4, "us", "t4", Disable)}
	steps := []error{
		j.Started(clockEpoch),
		j.Result(journalResult(0, Applied)),
		j.Intent(input[1], 1),
		j.Intent(input[2], 1),
		j.Intent(input[3], 1),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	st := mustRead(t, path)
	if err := st.FillInFlight(inputOf(input...)); err != nil {
		t.Fatal(err)
	}
	j, err := AppendJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]*Target{"us": {Name: "us", Adapter: &mockAdapter{IdempotentFunc: toggleOnly}}}
	known := func(res Result) (Result, bool) {
		if res.Index != 3 {
			return res, false
		}
		res.Outcome = Applied
		return res, true
	}
	got, err := Resume(j, st, targets, known, time.Now())
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	closeJournal(t, j)
	for i, want := range []bool{true, true, false, true, false} {
		if got.Skip(i) != want {
			t.Errorf("Skip(%d) = %v, want %v", i, got.Skip(i), want)
		}
	}
	if len(got.Interrupted) != 1 || !got.Interrupted[2] {
		t.Errorf("Interrupted = %v, want row 2 only", got.Interrupted)
	}
	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	for i, want := range map[int]Outcome{1: Unknown, 3: Applied} {
		if res, ok, err := idx.Lookup(Op{Index: i}); err != nil || !ok || res.Outcome != want {
			t.Errorf("journal row %d: %v %v %v, want %s", i, res.Outcome, ok, err, want)
		}
	}
	if _, ok, _ := idx.Lookup(Op{Index: 2}); ok {
		t.Error("row 2 was settled: an idempotent write in flight must be sent again")
	}
}

// TestResumeFirstRun: no journal state, nothing to settle.
func TestResumeFirstRun(t *testing.T) {
	got, err := Resume(nil, nil, nil, nil, time.Time{})
	if err != nil || got.Skip(0) || len(got.Interrupted) != 0 {
		t.Errorf("Resume(nil) = %+v, %v", got, err)
	}
}
