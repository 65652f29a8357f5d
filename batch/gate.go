package batch

import (
	"context"
	"fmt"
	"time"
)

// Gate is asked before a row is sent whether this run may send it, and is
// told how every row it let through ended. It is how a store shared by many
// runs (the ledger) keeps a change from being sent twice across runs.
// Its methods are called from many workers at once.
type Gate interface {
	// Admit is called before the row's first request. A non-nil Result
	// ends the row with it, unsent. An error ends the run (resumable).
	Admit(ctx context.Context, op Op) (*Result, error)
	// Settle is called with the row's result once it has ended, for the
	// rows Admit let through. An error ends the run.
	Settle(ctx context.Context, op Op, res Result) error
}

// GateError is what Runner.Run returns when the gate could not be asked or
// told: the run stopped as a signal stops it (rows in flight finished and
// were recorded; rows not started have no Result).
type GateError struct{ Err error }

func (e *GateError) Error() string { return e.Err.Error() }
func (e *GateError) Unwrap() error { return e.Err }

// confirmHeld reads, where the vendor can, the state of a user the gate
// says this change was made for already. The row still ends as the gate
// said (it runs once), but a user moved since, outside userbatch, is named
// in the detail for a person to judge. It returns false when the row was
// abandoned while waiting to read.
func (r *run) confirmHeld(ctx, waitCtx context.Context, w *row) bool {
	held := w.res.Outcome == Already || w.res.Outcome == Planned
	if !held || !readsFirst(w) || w.t.stopped() != nil {
		return true
	}
	reader := w.t.Adapter.(Reader)
	var st State
	ok, err := r.call(ctx, waitCtx, w, request{mayResend: true}, func(c context.Context) (err error) {
		st, err = reader.Read(c, w.op)
		return err
	})
	switch {
	case !ok:
		return false
	case err != nil || st.InState:
		return true
	}
	moved := "; the user is " + st.Current + " now"
	if w.res.Outcome == Planned {
		w.res.Message += moved
	} else {
		w.res.Detail += moved
	}
	return true
}

// Plan is what a saved plan said of a row (see Runner.Plan).
type Plan struct {
	// Change is one of the plan's details: "would change", "no change",
	// "unknown state"; "" when the plan has no word on the row.
	Change string
	// State is the state the plan read, as the vendor reported it.
	State string
}

// The plan's words.
const (
	WouldChange  = "would change"
	NoChange     = "no change"
	UnknownState = "unknown state"
	// PlanNotDue: the plan found the row not yet due; apply leaves it so.
	PlanNotDue = "not due"
)

// untilText says how long until a row is due, as a person reads it: days
// to the nearest (with thousands separators) from one day on, hours and
// minutes below.
func untilText(d time.Duration) string {
	if d < 24*time.Hour {
		d = d.Round(time.Minute)
	}
	switch {
	case d >= 24*time.Hour:
		if n := int((d + 12*time.Hour) / (24 * time.Hour)); n > 1 {
			return Thousands(n) + " days"
		}
		return "1 day"
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return "under a minute"
}

// due decides a row whose effective_at is set: not yet due, too late for
// the catch-up window, or due (nil).
func (r *run) due(w *row) *Result {
	at := w.op.EffectiveAt
	if at.IsZero() {
		return nil
	}
	now := r.Clock.Now()
	res := w.res
	switch {
	case at.After(now):
		res.Outcome = NotDue
		res.Detail = fmt.Sprintf("not due: due %s (in %s)", at.UTC().Format(time.RFC3339), untilText(at.Sub(now)))
		return &res
	case r.CatchUp > 0 && now.Sub(at) > r.CatchUp:
		res.Outcome = Skipped
		res.Detail = fmt.Sprintf("too late: effective_at %s was %s ago, more than --catch-up %s", at.UTC().Format(time.RFC3339),
			now.Sub(at).Round(time.Second), r.CatchUp)
		return &res
	}
	return nil
}

// planned applies a saved plan to a row before any request: a row the plan
// found in state ends already, unsent.
func (r *run) planned(w *row) bool {
	if r.Plan == nil {
		return false
	}
	p := r.Plan(w.op.Index)
	if p.Change == PlanNotDue {
		w.res.Outcome, w.res.Detail = NotDue, "not due when planned: apply sends only what the plan said would change"
		return true
	}
	if p.Change != NoChange {
		return false
	}
	w.res.Outcome, w.res.Detail = Already, "no change: the plan found the user in state"
	if p.State != "" {
		w.res.Detail += " (" + p.State + ")"
	}
	return true
}

// drifted reports whether a row the plan said would change is now found in
// state: someone changed it since the plan; the row ends skipped.
func (r *run) drifted(w *row, current string) bool {
	if r.Plan == nil || r.Plan(w.op.Index).Change != WouldChange {
		return false
	}
	p := r.Plan(w.op.Index)
	w.res.Outcome, w.res.ErrorCode = Skipped, "drifted"
	w.res.Detail = fmt.Sprintf("drifted: planned %s, found %s: not sent", p.Change, current)
	if p.State != "" {
		w.res.Detail = fmt.Sprintf("drifted: planned %s (%s), found %s: not sent", p.Change, p.State, current)
	}
	return true
}
