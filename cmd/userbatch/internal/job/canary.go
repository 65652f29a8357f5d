package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/userbatch/userbatch/batch"
)

// canarySink keeps the canary rows' results as they are recorded.
type canarySink struct {
	batch.Sink
	mu      sync.Mutex
	results map[int]batch.Result
}

func (s *canarySink) Result(res batch.Result) error {
	s.mu.Lock()
	s.results[res.Index] = res
	s.mu.Unlock()
	return s.Sink.Result(res)
}

// canaryRow is one row of the canary and, once it has one, its outcome.
type canaryRow struct {
	op      batch.Op
	res     batch.Result
	settled bool
	earlier bool // settled by an earlier process of the run
}

// canary applies the first Canary rows that would change, reads them back
// where the vendor allows, and says whether the run may go on. The canary
// is the one the run's first canary recorded in the journal, when there is
// one: a resume judges it on every row's outcome, earlier processes'
// included, and stops again, sending nothing new, on a row that failed.
// It returns what the rest of the run wants: the rows want wants, less the
// canary's.
func (r *runState) canary(ctx context.Context, runner *batch.Runner, sink batch.Sink, want func(batch.Row) bool) (func(batch.Row) bool, bool, error) {
	rows, err := r.canaryRows(want)
	if err != nil {
		return nil, false, err
	}
	var earlier, todo []*canaryRow
	for _, c := range rows {
		if c.settled {
			earlier = append(earlier, c)
		} else {
			todo = append(todo, c)
		}
	}
	if reason := r.checkCanary(ctx, earlier); reason != "" {
		return nil, false, r.canaryStopped(reason, len(rows))
	}
	if err := r.runCanary(ctx, runner, sink, todo); err != nil {
		return nil, false, err
	}
	if reason := r.checkCanary(ctx, todo); reason != "" {
		return nil, false, r.canaryStopped(reason, len(rows))
	}
	r.log.Info().Int("canary", len(rows)).Int("judged_from_earlier_processes", len(earlier)).
		Msg("canary passed: every row took and read back right; going on")
	picked := map[int]bool{}
	for _, c := range todo {
		picked[c.op.Index] = true
	}
	rest := func(row batch.Row) bool { return !picked[row.Index] && want(row) }
	return rest, true, nil
}

// canaryHint says how to go on after a failed canary: a resume with
// --canary judges the same rows and stops again.
const canaryHint = "check that line; a resume with --canary stops again on it. " +
	"Once you judge the rest safe to send, run the same command with --resume and without --canary"

// canaryStopped records why the canary stopped the run; the run ends as
// one stopped (exit 3), with its report.
func (r *runState) canaryStopped(reason string, n int) error {
	r.canaryFailed = reason
	r.log.Error().Str("reason", reason).Int("canary", n).Msg("CANARY FAILED: the run stopped; nothing more was sent")
	return nil
}

// runCanary records the canary's rows in the journal, the first time, and
// applies the ones not yet settled.
func (r *runState) runCanary(ctx context.Context, runner *batch.Runner, sink batch.Sink, todo []*canaryRow) error {
	if len(todo) == 0 {
		return nil
	}
	if st := r.plan.state; st == nil || st.Canary == nil {
		indexes := make([]int, len(todo))
		for i, c := range todo {
			indexes[i] = c.op.Index
		}
		if err := r.journal.Canary(indexes); err != nil {
			return err
		}
	}
	next := 0
	src := func() (batch.Op, error) {
		if next == len(todo) {
			return batch.Op{}, io.EOF
		}
		next++
		return todo[next-1].op, nil
	}
	cs := &canarySink{Sink: sink, results: map[int]batch.Result{}}
	if err := runner.Run(ctx, src, cs); err != nil {
		return err
	}
	for _, c := range todo {
		c.res, c.settled = cs.results[c.op.Index]
	}
	return nil
}

// canaryRows finds the canary's rows in input order: those the journal
// recorded, with the outcome an earlier process gave them, or else the
// first Canary rows still to run that the plan says would write.
func (r *runState) canaryRows(want func(batch.Row) bool) ([]*canaryRow, error) {
	st := r.plan.state
	recorded := map[int]bool{}
	if st != nil {
		for _, i := range st.Canary {
			recorded[i] = true
		}
	}
	var idx *batch.OutcomeIndex
	if len(recorded) > 0 {
		var err error
		if idx, err = batch.OpenOutcomeIndex(filepath.Join(r.out.dir, batch.JournalName)); err != nil {
			return nil, err
		}
		defer idx.Close()
	}
	p, done, err := r.in.parser(r.infos, r.parse)
	if err != nil {
		return nil, err
	}
	defer done()
	p.OpsOnly()
	var rows []*canaryRow
	for {
		row, err := p.Next()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		if !row.Valid() {
			continue
		}
		if len(recorded) == 0 {
			if want(row) && r.rows.of(row.Index).writes() {
				rows = append(rows, &canaryRow{op: row.Op})
			}
			if len(rows) == r.canaryCount {
				return rows, nil
			}
			continue
		}
		if !recorded[row.Index] {
			continue
		}
		delete(recorded, row.Index)
		c, err := earlierOutcome(row.Op, st, idx)
		if err != nil {
			return nil, err
		}
		if c.settled || want(row) {
			rows = append(rows, c)
		}
		if len(recorded) == 0 {
			return rows, nil
		}
	}
}

// earlierOutcome is a recorded canary row with the outcome the journal
// holds for it: an earlier process's, or the unknown a resume gave a write
// that was in flight and may not be sent again.
func earlierOutcome(op batch.Op, st *batch.JournalState, idx *batch.OutcomeIndex) (*canaryRow, error) {
	c := &canaryRow{op: op}
	if res, ok := st.InFlight[op.Index]; ok && res.Outcome == batch.Unknown {
		c.res, c.settled, c.earlier = res, true, true
		return c, nil
	}
	if !st.Settled(op.Index) {
		return c, nil
	}
	res, ok, err := idx.Lookup(op)
	c.res, c.settled, c.earlier = res, ok, ok
	return c, err
}

// checkCanary says why the canary failed, or "".
func (r *runState) checkCanary(ctx context.Context, rows []*canaryRow) string {
	for _, c := range rows {
		when := ""
		if c.earlier {
			when = " (in an earlier process of this run)"
		}
		switch {
		case !c.settled:
			return fmt.Sprintf("line %d was not finished", c.op.Line)
		case c.res.Outcome != batch.Applied && c.res.Outcome != batch.Already:
			return fmt.Sprintf("line %d ended %s%s: %s", c.op.Line, c.res.Outcome, when, c.res.Detail)
		}
		if reason := r.readBack(ctx, c.op); reason != "" {
			return fmt.Sprintf("line %d: %s", c.op.Line, reason)
		}
	}
	return ""
}

// readBack reads a canary row's user where the vendor can, and says what
// is wrong, or "".
func (r *runState) readBack(ctx context.Context, op batch.Op) string {
	t := r.targets[op.Target]
	reader, ok := t.Adapter.(batch.Reader)
	if !ok || (op.Action != batch.Disable && op.Action != batch.Enable) {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	st, err := reader.Read(ctx, op)
	switch {
	case err != nil:
		return "could not read the user back: " + err.Error()
	case !st.InState:
		return fmt.Sprintf("read back %s, not %sd", st.Current, op.Action)
	}
	return ""
}
