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

// runState is a run once its journal is open.
type runState struct {
	*Options
	in      *input
	infos   batch.Targets
	targets map[string]*batch.Target
	journal *batch.Journal
	plan    *journalPlan
	gate    batch.Gate // the ledger's, or nil
	// rows is the plan the run follows, when it has one (guards, apply).
	rows *rowPlan
	// canaryFailed says why the canary stopped the run.
	canaryFailed string
	// notRun, when set, is the detail of the rows the run did not start.
	notRun string
}

// decide makes the plan a guarded run or an apply needs, and holds the
// run when a guard says so; nothing has been written yet.
func (r *runState) decide(ctx context.Context) error {
	switch {
	case r.DryRun:
		return nil
	case r.Options.Plan != nil:
		r.rows = r.Options.Plan.rows
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
	return r.guard(r.rows)
}

func (r *runState) run(ctx context.Context, total int) error {
	run := reports.Run{StartedAt: time.Now(), DryRun: r.DryRun, Processes: 1, Rates: r.rates()}
	if st := r.plan.state; st != nil {
		run.Processes = st.Runs + 1
		if !st.FirstStart.IsZero() {
			run.StartedAt = st.FirstStart
		}
	}
	stopped, runErr := r.applyAll(ctx, total)
	run.FinishedAt, run.Stopped = time.Now(), stopped != stopNone
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

// untilSignal is ctx, cancelled by a signal; stop ends the watch and says
// whether a signal came.
func (r *runState) untilSignal(ctx context.Context) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var got atomic.Bool
	go func() {
		select {
		case <-r.Signals:
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
func (r *runState) applyAll(ctx context.Context, total int) (stopKind, error) {
	if err := r.journal.StartedBy(time.Now(), r.Actor); err != nil {
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
	runner := &batch.Runner{Targets: r.targets, DryRun: r.DryRun, Workers: r.Workers, Stop: stop,
		Log: r.Log, Interrupted: resumed.Interrupted, Clock: r.Clock, CatchUp: r.CatchUp, Gate: r.gate}
	if r.rows != nil {
		runner.Plan = r.rows.lookup
	}
	sink := newProgress(countRequests{Sink: r.journal, rec: r.done}, r.Log, r.scope(total, skip), r.targets, r.Bar)
	defer sink.stop()
	want := func(row batch.Row) bool { return r.includes(row.Op) && !skip(row.Index) }
	if r.Canary > 0 && r.rows != nil && !r.DryRun {
		var ok bool
		if want, ok, err = r.canary(ctx, runner, sink, want); err != nil || !ok {
			return stopped(), err
		}
	}
	p, done, err := openParser(r.in.path, r.infos, r.Parse)
	if err != nil {
		return stopped(), err
	}
	defer done()
	p.OpsOnly()
	err = runner.Run(ctx, pending(p, want), sink)
	return stopped(), err
}

// countRequests counts each target's reads, writes and retries for the
// metrics.
// Sinks are called from one goroutine at a time.
type countRequests struct {
	batch.Sink
	rec *runRecord
}

func (c countRequests) Result(res batch.Result) error {
	c.rec.reads[res.Target] += res.Attempts - res.Writes
	c.rec.writes[res.Target] += res.Writes
	c.rec.retries[res.Target] += res.Retries
	return c.Sink.Result(res)
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
	sigs := r.Signals
	var kind atomic.Int32
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		r.Log.Warn().Str("grace", r.Grace.String()).Msg("stopping: no new rows; rows in flight may finish (signal again to stop at once)")
		kind.Store(int32(stopGraceful))
		close(stop)
		t := time.NewTimer(r.Grace)
		defer t.Stop()
		select {
		case <-sigs:
		case <-t.C:
		case <-ctx.Done():
			return
		}
		kind.Store(int32(stopAtOnce))
		if r.Mute != nil {
			r.Mute()
		}
		r.printf("userbatch: stopped at once: requests still in flight were cut off and may or may not have arrived; the journal is consistent (what was sent is recorded). To finish the run: %s\n", r.resumeCommand())
		cancel()
	}()
	return func() stopKind { return stopKind(kind.Load()) }
}

// finish writes the report from the journal and gives the summary.
func (r *runState) finish(run reports.Run) error {
	idx, err := batch.OpenOutcomeIndex(filepath.Join(r.ReportDir, batch.JournalName))
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
	sum, err := writeReport(r.Options, r.in.path, r.infos, idx, r.targets, notRun, run)
	r.done.summary = sum
	if err != nil {
		return stoppedErr(fmt.Errorf("writing the report: %v\nthe journal is consistent: free space or fix permissions, then run: %s", err, r.resumeCommand()))
	}
	if r.Console {
		sum.WriteTable(r.Stderr) // a dry run's ends with its plan line
	} else {
		r.Log.Info().Interface("summary", sum).Msg("run finished")
		if line := sum.PlanLine(); line != "" {
			r.Log.Info().Interface("plan", sum.Plan).Msg(line)
		}
	}
	fmt.Fprintf(r.Stdout, "report: %s\n", r.ReportDir)
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
