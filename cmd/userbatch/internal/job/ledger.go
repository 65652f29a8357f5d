package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
)

// newRunID names a run for the ledger and the journal: when it started,
// and a few random bytes so that two runs started in the same second differ.
func newRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// ledgerGate admits a row only when no run has done its change already: the
// ledger's Claim, before the row's first request. A row a run finished is
// already; one another run claimed and may have sent is sent again only when
// repeating it is harmless, and otherwise ends unknown, for a person.
type ledgerGate struct {
	l          ledger.Ledger
	runID      string
	inputSHA   string
	dryRun     bool
	now        func() time.Time
	repeatable func(target string, a batch.Action) bool
}

var _ batch.Gate = (*ledgerGate)(nil)

func (g *ledgerGate) entry(op batch.Op) ledger.Entry {
	return ledger.Entry{Key: ledgerKey(op), RunID: g.runID, InputSHA256: g.inputSHA, Line: op.Line, At: g.now()}
}

func ledgerKey(op batch.Op) ledger.Key {
	return ledger.Key{Target: op.Target, User: op.User, Action: op.Action, Role: op.Role, EffectiveAt: op.EffectiveAt}
}

// Admit claims the row's change, or, in a dry run, only looks it up.
func (g *ledgerGate) Admit(ctx context.Context, op batch.Op) (*batch.Result, error) {
	var prev *ledger.Entry
	var err error
	if g.dryRun {
		prev, err = g.lookup(ctx, ledgerKey(op))
	} else {
		prev, err = g.l.Claim(ctx, g.entry(op))
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if prev == nil || prev.RunID == g.runID {
		return nil, nil
	}
	res := batch.Result{Index: op.Index, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action}
	at := prev.At.UTC().Format(time.RFC3339)
	switch {
	case prev.State == ledger.Done && g.dryRun:
		res.Outcome, res.Detail = batch.Planned, batch.NoChange
		res.Message = fmt.Sprintf("done by run %s at %s", prev.RunID, at)
	case prev.State == ledger.Done:
		res.Outcome, res.Detail = batch.Already, fmt.Sprintf("done by run %s at %s", prev.RunID, at)
	case g.repeatable(op.Target, op.Action):
		return nil, nil // sending a state again is harmless
	default:
		res.Outcome, res.ErrorCode = batch.Unknown, "claimed"
		res.Detail = fmt.Sprintf("run %s claimed this change at %s and may have sent it, but did not finish: check the user by hand; it is not sent again", prev.RunID, at)
	}
	return &res, nil
}

// Settle records the row's end: done for applied and already; nothing for
// unknown (the claim stays, so no later run sends it blindly); a release
// for everything that provably sent nothing.
func (g *ledgerGate) Settle(ctx context.Context, op batch.Op, res batch.Result) error {
	e := g.entry(op)
	switch res.Outcome {
	case batch.Applied, batch.Already:
		e.Outcome = res.Outcome
		err := g.l.Done(ctx, e)
		if errors.Is(err, ledger.ErrHeld) {
			return nil // another run holds it: its record stands
		}
		return err
	case batch.Unknown:
		return nil
	}
	return g.l.Release(ctx, e)
}

// lookup finds the entry for k without claiming it.
func (g *ledgerGate) lookup(ctx context.Context, k ledger.Key) (*ledger.Entry, error) {
	var found *ledger.Entry
	err := g.l.History(ctx, ledger.Filter{User: k.User, Target: k.Target}, func(e ledger.Entry) error {
		if e.Key.Action == k.Action && e.Key.Role == k.Role && e.Key.EffectiveAt.Equal(k.EffectiveAt) {
			c := e
			found = &c
		}
		return nil
	})
	return found, err
}
