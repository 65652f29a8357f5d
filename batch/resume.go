package batch

import (
	"fmt"
	"time"
)

// MayResend reports whether a request for action a may be sent again after
// it may have reached the vendor: an ambiguous answer, or a process that
// died with the request in flight. Only one the adapter calls idempotent
// may: never resend what may have arrived, since a second toggle would
// undo the first (README "When a run is interrupted").
func (t *Target) MayResend(a Action) bool { return t.Adapter.Idempotent(a) }

// Resumed is what Resume decided about a resumed run's rows.
type Resumed struct {
	// Skip reports whether row i needs no sending: the journal holds its
	// outcome, or Resume gave it one.
	Skip func(i int) bool
	// Interrupted holds the rows sent again because they were in flight:
	// found done, they are this run's change.
	Interrupted map[int]bool
}

// Resume settles, before a resumed run sends anything, the writes the
// journal st was read from shows in flight (intents with no outcome). A
// write that known settles (the ledger recorded its outcome before the
// process died) is journalled with known's result. Of the rest, one that
// may not be sent again (MayResend) ends unknown, for check.csv; one that
// may is sent again and marked interrupted, and the others finish at now.
// known may be nil; a nil st is a first run, with nothing to settle. The
// results are committed before Resume returns.
func Resume(j *Journal, st *JournalState, targets map[string]*Target, known func(Result) (Result, bool), now time.Time) (Resumed, error) {
	if st == nil {
		return Resumed{Skip: func(int) bool { return false }}, nil
	}
	for i, res := range st.InFlight {
		if res.Target == "" { // a version 2 intent: FillInFlight reads its row
			return Resumed{}, fmt.Errorf("resuming: the row of the write in flight at index %d was not read from the input", i)
		}
	}
	byKnown, err := settleKnown(j, st, known)
	if err != nil {
		return Resumed{}, err
	}
	interrupted := map[int]bool{}
	for i, res := range st.InFlight {
		if t, ok := targets[res.Target]; ok && t.MayResend(res.Action) {
			interrupted[i] = true
			continue
		}
		res.Outcome, res.ErrorCode = Unknown, "interrupted"
		res.Detail = "interrupted after the request may have been sent; check by hand"
		res.FinishedAt = now.UTC()
		if err := j.Result(res); err != nil {
			return Resumed{}, err
		}
		st.InFlight[i] = res
	}
	if err := j.Commit(); err != nil {
		return Resumed{}, err
	}
	skip := func(i int) bool {
		if byKnown[i] || st.Settled(i) {
			return true
		}
		res, inFlight := st.InFlight[i]
		return inFlight && res.Outcome == Unknown
	}
	return Resumed{Skip: skip, Interrupted: interrupted}, nil
}

// settleKnown journals the in-flight writes whose outcome known gives,
// removes them from st.InFlight, and returns them.
func settleKnown(j *Journal, st *JournalState, known func(Result) (Result, bool)) (map[int]bool, error) {
	settled := map[int]bool{}
	if known == nil {
		return settled, nil
	}
	for i, res := range st.InFlight {
		res, ok := known(res)
		if !ok {
			continue
		}
		if err := j.Result(res); err != nil {
			return nil, err
		}
		delete(st.InFlight, i)
		settled[i] = true
	}
	return settled, j.Commit()
}
