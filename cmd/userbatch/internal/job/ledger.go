package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
	"github.com/userbatch/userbatch/reports"
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
// already, unless a later change of the same user superseded it (README
// "Scheduling"); one another run claimed and may have sent is sent again
// only when repeating it is harmless, and otherwise ends unknown, for a
// person.
type ledgerGate struct {
	l          ledger.Ledger
	runID      string
	actor      string
	inputSHA   string
	now        func() time.Time
	repeatable func(target string, a batch.Action) bool
	// identities compare user cells per target (missing: byte for byte).
	identities map[string]batch.Identity
	// claims batches the writes of a run that sends (nil in a dry run,
	// which writes nothing): rows claimed ahead, records written many to a
	// transaction.
	claims *ledger.Batcher
}

// dry says the gate serves a dry run: it reads the ledger and writes nothing.
func (g *ledgerGate) dry() bool { return g.claims == nil }

var _ batch.Gate = (*ledgerGate)(nil)

func (g *ledgerGate) entry(op batch.Op) ledger.Entry {
	return ledger.Entry{Key: g.key(op), RunID: g.runID, Actor: g.actor, InputSHA256: g.inputSHA, Line: op.Line, At: g.now()}
}

// key is the row's change, its user named by the vendor's identity.
func (g *ledgerGate) key(op batch.Op) ledger.Key {
	userKey := op.User
	if id, ok := g.identities[op.Target]; ok && id != nil {
		userKey = id.Key(op.User)
	}
	return ledger.Key{Target: op.Target, User: op.User, UserKey: userKey, Action: op.Action, Role: op.Role, EffectiveAt: op.EffectiveAt}
}

// Admit claims the row's change, or, in a dry run, only looks it up.
func (g *ledgerGate) Admit(ctx context.Context, op batch.Op) (*batch.Result, error) {
	var prev *ledger.Entry
	var err error
	if g.dry() {
		prev, err = g.l.Lookup(ctx, g.key(op))
	} else {
		prev, err = g.claims.Claim(ctx, op.Index, g.entry(op))
	}
	if err != nil {
		return nil, err
	}
	if prev == nil || prev.RunID == g.runID {
		return nil, nil
	}
	res, err := g.held(op, prev)
	if res != nil && !g.dry() {
		g.claims.Leave(op.Index) // ends unsent: nothing to record
	}
	return res, err
}

// held is the result of a row whose change another run holds: nil when
// sending it again is harmless.
func (g *ledgerGate) held(op batch.Op, prev *ledger.Entry) (*batch.Result, error) {
	res := batch.Result{Index: op.Index, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action}
	at := prev.At.UTC().Format(time.RFC3339)
	switch {
	case prev.State == ledger.Done && g.dry():
		res.Outcome, res.Detail = batch.Planned, batch.NoChange
		res.Message = fmt.Sprintf("decided by the ledger: done by run %s at %s", prev.RunID, at)
	case prev.State == ledger.Done:
		res.Outcome, res.Detail = batch.Already, fmt.Sprintf("done by run %s at %s", prev.RunID, at)
	case g.repeatable(op.Target, op.Action):
		return nil, nil // sending a state again is harmless
	default:
		res.Outcome, res.ErrorCode = batch.Unknown, "claimed"
		res.Detail = fmt.Sprintf("run %s claimed this change at %s and may have sent it, but did not finish: --resume of that run settles it; else check the user by hand; it is not sent again", prev.RunID, at)
	}
	return &res, nil
}

// Settle records the row's end through the batch of records (durable
// before the run ends, closeClaims; a failure told by a later call): done
// for applied and already; nothing for unknown (the claim stays, so no
// later run sends it blindly); a release for everything that provably sent
// nothing. Only a run that sends settles rows: a dry run's never are.
func (g *ledgerGate) Settle(_ context.Context, op batch.Op, res batch.Result) error {
	e := g.entry(op)
	switch res.Outcome {
	case batch.Applied, batch.Already:
		e.Outcome = res.Outcome
		return g.claims.Done(op.Index, e)
	case batch.Unknown:
		g.claims.Leave(op.Index)
		return nil
	}
	return g.claims.Release(op.Index, e)
}

// expecting tells the gate's claims of each row src yields, so that rows
// are claimed ahead, before they are asked for; rows not due yet are only
// counted, since they may never be.
func (g *ledgerGate) expecting(src batch.Source) batch.Source {
	return func() (batch.Op, error) {
		op, err := src()
		if err == nil && op.DuplicateOf == 0 {
			due := op.EffectiveAt.IsZero() || !op.EffectiveAt.After(g.now())
			g.claims.Expect(op.Index, g.entry(op), due)
		}
		return op, err
	}
}

// leavingSink tells the gate's claims of every row that ended, so that a
// row never asked for (not due, too late) stops counting and a claim made
// ahead for it is released.
type leavingSink struct {
	batch.Sink
	claims *ledger.Batcher
}

func (s leavingSink) Result(res batch.Result) error {
	s.claims.Leave(res.Index)
	return s.Sink.Result(res)
}

// claimingAhead wraps a sending run's source and sink so that the ledger
// gate claims rows in batches (see ledger.Batcher); without a ledger, or
// in a dry run, they are returned as they are.
func (r *runState) claimingAhead(src batch.Source, sink batch.Sink) (batch.Source, batch.Sink) {
	g, ok := r.gate.(*ledgerGate)
	if !ok || g.claims == nil {
		return src, sink
	}
	return g.expecting(src), leavingSink{Sink: sink, claims: g.claims}
}

// closeClaims writes the gate's records still waiting and releases the
// rows claimed ahead and never sent. Its error is the ledger lost: the
// run's entries stay pending for --resume.
func (r *runState) closeClaims(ctx context.Context) error {
	g, ok := r.gate.(*ledgerGate)
	if !ok || g.claims == nil {
		return nil
	}
	return g.claims.Close(context.WithoutCancel(ctx))
}

// recorded says, on resume, what became of the writes a dead process may
// have sent whose outcome the ledger holds: the process recorded the change
// in the ledger and died before its journal did. Such a row is this run's
// change, applied (and in undo.csv), not unknown (see batch.Resume).
func (g *ledgerGate) recorded(ctx context.Context) (func(batch.Result) (batch.Result, bool), error) {
	// An intent names the row's target, user, action and line: so does
	// the entry this run recorded for it.
	type rowKey struct {
		target, user string
		action       batch.Action
		line         int
	}
	done := map[rowKey]ledger.Entry{}
	err := g.l.History(ctx, ledger.Filter{RunID: g.runID}, func(e ledger.Entry) error {
		if e.State == ledger.Done {
			done[rowKey{e.Target, e.User, e.Action, e.Line}] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func(res batch.Result) (batch.Result, bool) {
		e, ok := done[rowKey{res.Target, res.User, res.Action, res.Line}]
		if !ok {
			return res, false
		}
		res.Outcome, res.ErrorCode = e.Outcome, ""
		res.Detail = fmt.Sprintf("%s: sent before the process was interrupted; the ledger recorded it at %s", e.Outcome, e.At.UTC().Format(time.RFC3339))
		res.FinishedAt = time.Now().UTC()
		return res, true
	}, nil
}

// pendingOfRun is this run's pending entries, by input line.
func (g *ledgerGate) pendingOfRun(ctx context.Context) (map[int]ledger.Entry, error) {
	pending := map[int]ledger.Entry{}
	err := g.l.History(ctx, ledger.Filter{RunID: g.runID}, func(e ledger.Entry) error {
		if e.State == ledger.Pending {
			pending[e.Line] = e
		}
		return nil
	})
	return pending, err
}

// finishPending records as done the pending entries whose rows the journal
// settled applied or already: the ledger went away between the vendor's
// answer and its record. Left pending, a later run would take them for
// changes another run may have sent.
func (g *ledgerGate) finishPending(ctx context.Context, pending map[int]ledger.Entry, outcomes map[int]batch.Outcome) error {
	for line, e := range pending {
		o := outcomes[line]
		if o != batch.Applied && o != batch.Already {
			continue
		}
		e.Outcome, e.At, e.Actor = o, g.now(), g.actor
		if err := g.l.Done(ctx, e); err != nil && !errors.Is(err, ledger.ErrHeld) {
			return err
		}
	}
	return nil
}

// resume settles the writes in flight at a crash (batch.Resume), first
// those the ledger recorded, then brings the ledger up to date with the
// journal.
func (r *runState) resume(ctx context.Context) (batch.Resumed, error) {
	g, ok := r.gate.(*ledgerGate)
	if !ok || r.dryRun || r.plan.state == nil {
		return batch.Resume(r.journal, r.plan.state, r.targets, nil, r.now())
	}
	var known func(batch.Result) (batch.Result, bool)
	if len(r.plan.state.InFlight) > 0 {
		var err error
		if known, err = g.recorded(ctx); err != nil {
			return batch.Resumed{}, ledgerUnavailable(err)
		}
	}
	resumed, err := batch.Resume(r.journal, r.plan.state, r.targets, known, r.now())
	if err != nil {
		return resumed, err
	}
	return resumed, ledgerUnavailable(r.finishPending(ctx, g))
}

func ledgerUnavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ledger unavailable: %w", err)
}

// finishPending records in the ledger the rows this run's journal settled
// while the ledger was away (see ledgerGate.finishPending).
func (r *runState) finishPending(ctx context.Context, g *ledgerGate) error {
	pending, err := g.pendingOfRun(ctx)
	if err != nil || len(pending) == 0 {
		return err
	}
	idx, err := batch.OpenOutcomeIndex(filepath.Join(r.out.dir, batch.JournalName))
	if err != nil {
		return err
	}
	defer idx.Close()
	p, done, err := r.in.parser(r.infos, r.parse)
	if err != nil {
		return err
	}
	defer done()
	p.OpsOnly()
	outcomes := map[int]batch.Outcome{}
	for len(outcomes) < len(pending) {
		row, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if _, ok := pending[row.Line]; !ok {
			continue
		}
		res, _, err := idx.Lookup(row.Op) // no result: the zero outcome
		if err != nil {
			return err
		}
		outcomes[row.Line] = res.Outcome
	}
	return g.finishPending(ctx, pending, outcomes)
}

// ledgerLost ends a run whose ledger could not be reached or written: the
// rows in flight finished and were journalled; the rows not started end
// skipped with the reason, the report is written, and the run exits 3
// (README "Scheduling").
func (r *runState) ledgerLost(run reports.Run, err *batch.GateError) error {
	r.log.Error().Err(err.Err).Msg("ledger unavailable: no further change is claimed or sent")
	run.Stopped = true
	r.notRun = "ledger unavailable: " + err.Err.Error() + "; once it is back, run the same command with --resume"
	if ferr := r.finish(run); Exit(ferr) != reports.ExitStopped {
		return ferr
	}
	return stoppedErr(fmt.Errorf("ledger unavailable: %v\nthe report is written and the journal is consistent: once the ledger is back, run: %s", err.Err, r.resumeCommand()))
}
