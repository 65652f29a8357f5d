package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// decide makes the plan a guarded run or an apply needs, and holds the
// run when a guard says so; nothing has been written yet.
func (r *runState) decide(ctx context.Context) error {
	switch {
	case r.dryRun:
		return nil
	case r.saved != nil:
		r.rows = r.saved
	case r.guarded():
		pctx, stop := r.untilSignal(ctx)
		rows, err := r.planPass(pctx)
		stopped := stop()
		if stopped {
			r.printf("userbatch: stopped while reading the users' state: nothing was sent.\n")
			return r.stopBeforeWrites()
		}
		if err != nil {
			return stoppedErr(fmt.Errorf("reading state before the first write: %v\nnothing was sent: run the same command again", err))
		}
		r.rows = rows
	default:
		return nil
	}
	return r.guard(ctx, r.rows)
}

// apply runs every row not yet settled, then writes the report.
func (r *runState) apply(ctx context.Context) error {
	run := reports.Run{StartedAt: time.Now(), DryRun: r.dryRun, Processes: 1, Rates: r.rates}
	if st := r.plan.state; st != nil {
		run.Processes = st.Runs + 1
		if !st.FirstStart.IsZero() {
			run.StartedAt = st.FirstStart
		}
	}
	stopped, runErr := r.applyAll(ctx)
	run.FinishedAt, run.Stopped = time.Now(), stopped != stopNone
	// The ledger's records are written, and rows claimed ahead released,
	// before the report: a failure is the ledger lost (exit 3, resumable).
	if err := r.closeClaims(ctx); runErr == nil && err != nil {
		runErr = &batch.GateError{Err: err}
	}
	if err := r.journal.Close(); runErr == nil {
		runErr = err
	}
	if stopped == stopAtOnce {
		return &Error{Code: reports.ExitStopped}
	}
	var gateErr *batch.GateError
	if errors.As(runErr, &gateErr) {
		return r.ledgerLost(run, gateErr)
	}
	if runErr != nil {
		return stoppedErr(fmt.Errorf("%v\nthe journal is consistent: fix the cause, then run: %s", runErr, r.resumeCommand()))
	}
	return r.finish(run)
}

// scope counts the rows this process runs, and those skip says an earlier
// process settled, from what validate found: the file is not read again.
func (r *runState) scope(skip func(int) bool) rowScope {
	var s rowScope
	r.inScope.Each(func(i int) {
		s.total++
		if skip(i) {
			s.settled++
		}
	})
	return s
}

// untilSignal is ctx, cancelled by a signal; stop ends the watch and says
// whether a signal came.
func (r *runState) untilSignal(ctx context.Context) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var got atomic.Bool
	go func() {
		select {
		case <-r.signals:
			got.Store(true)
			cancel()
		case <-done:
		}
	}()
	return ctx, func() bool {
		close(done)
		cancel()
		return got.Load()
	}
}

// applyAll runs every row not yet settled, and says how the run stopped.
func (r *runState) applyAll(ctx context.Context) (stopKind, error) {
	if err := r.journal.StartedBy(time.Now(), r.out.actor); err != nil {
		return stopNone, err
	}
	if err := r.fillInFlight(); err != nil {
		return stopNone, err
	}
	resumed, err := r.resume(ctx)
	if err != nil {
		return stopNone, err
	}
	skip := resumed.Skip
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	stopped := r.watchSignals(ctx, stop, cancel)
	runner := &batch.Runner{Targets: r.targets, DryRun: r.dryRun, Workers: r.workers, Stop: stop,
		Log: r.log, Interrupted: resumed.Interrupted, Clock: r.clock, CatchUp: r.catchUp, Gate: r.gate}
	if r.rows != nil {
		runner.Plan = r.rows.lookup
	}
	scope := r.scope(skip)
	sink := startPass(r.journal, r.obs, r.targets, Pass{Total: scope.total, Settled: scope.settled})
	defer sink.stop()
	want := func(row batch.Row) bool { return r.includes(row.Op) && !skip(row.Index) }
	if r.canaryCount > 0 && r.rows != nil && !r.dryRun {
		var ok bool
		if want, ok, err = r.canary(ctx, runner, sink, want); err != nil || !ok {
			return stopped(), err
		}
	}
	p, done, err := r.in.parser(r.infos, r.parse)
	if err != nil {
		return stopped(), err
	}
	defer done()
	p.OpsOnly()
	src, watched := r.claimingAhead(pending(p, want), sink)
	err = runner.Run(ctx, src, watched)
	return stopped(), err
}

// fillInFlight reads from the input the rows of the writes in flight that
// the journal knows by index alone (batch.JournalState.FillInFlight).
func (r *runState) fillInFlight() error {
	st := r.plan.state
	if st == nil || len(st.InFlight) == 0 {
		return nil
	}
	p, done, err := r.in.parser(r.infos, r.parse)
	if err != nil {
		return err
	}
	defer done()
	p.OpsOnly()
	return st.FillInFlight(p.Next)
}

// pending yields the valid rows that want reports true for.
func pending(p *batch.Parser, want func(batch.Row) bool) batch.Source {
	return func() (batch.Op, error) {
		for {
			row, err := p.Next()
			if err != nil {
				return batch.Op{}, err
			}
			if row.Valid() && want(row) {
				return row.Op, nil
			}
		}
	}
}

type stopKind int

const (
	stopNone     stopKind = iota
	stopGraceful          // a first signal: rows in flight finished
	stopAtOnce            // a second signal, or the grace ran out
)

// watchSignals turns the first SIGINT/SIGTERM into a graceful stop (no new
// rows; rows in flight get Grace to finish) and a second, or the grace
// running out, into an immediate one, which prints one line and mutes the
// log. It watches until ctx ends, and returns how the run stopped.
func (r *runState) watchSignals(ctx context.Context, stop chan struct{}, cancel context.CancelFunc) func() stopKind {
	sigs := r.signals
	var kind atomic.Int32
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		r.log.Warn().Str("grace", r.grace.String()).Msg("stopping: no new rows; rows in flight may finish (signal again to stop at once)")
		kind.Store(int32(stopGraceful))
		close(stop)
		t := time.NewTimer(r.grace)
		defer t.Stop()
		select {
		case <-sigs:
		case <-t.C:
		case <-ctx.Done():
			return
		}
		kind.Store(int32(stopAtOnce))
		if r.mute != nil {
			r.mute()
		}
		r.printf("userbatch: stopped at once: requests still in flight were cut off and may or may not have arrived; the journal is consistent (what was sent is recorded). To finish the run: %s\n", r.resumeCommand())
		cancel()
	}()
	return func() stopKind { return stopKind(kind.Load()) }
}

// finish writes the report from the journal and gives the summary.
func (r *runState) finish(run reports.Run) error {
	idx, err := batch.OpenOutcomeIndex(filepath.Join(r.out.dir, batch.JournalName))
	if err != nil {
		return stoppedErr(fmt.Errorf("reading the journal for the report: %v", err))
	}
	defer idx.Close()
	notRun := "not started: the run stopped first; run the same command with --resume"
	if r.notRun != "" {
		notRun = r.notRun
	}
	if r.canaryFailed != "" {
		notRun = "not started: the canary failed (" + r.canaryFailed + "); " + canaryHint
		run.Stopped = true
	}
	sum, err := r.out.write(r.in.path, r.infos, idx, r.targets, notRun, run)
	r.done.summary = sum
	if err != nil {
		return stoppedErr(fmt.Errorf("writing the report: %v\nthe journal is consistent: free space or fix permissions, then run: %s", err, r.resumeCommand()))
	}
	if r.console {
		sum.WriteTable(r.stderr) // a dry run's ends with its plan line
	} else {
		r.log.Info().Interface("summary", sum).Msg("run finished")
		if line := sum.PlanLine(); line != "" {
			r.log.Info().Interface("plan", sum.Plan).Msg(line)
		}
	}
	fmt.Fprintf(r.stdout, "report: %s\n", r.out.dir)
	switch {
	case r.canaryFailed != "":
		r.printf("the canary failed: %s\n%s\n", r.canaryFailed, canaryHint)
	case run.Stopped:
		r.printf("stopped before finishing: to finish, run: %s\n", r.resumeCommand())
	}
	if code := sum.ExitCode; code != reports.ExitOK {
		return &Error{Code: code}
	}
	return nil
}
