package job

import (
	"context"
	"fmt"
	"slices"
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

// canary applies the first Canary rows that would change, reads them back
// where the vendor allows, and says whether the run may go on. It returns
// what the rest of the run wants: the rows want wants, less the canary's.
func (r *runState) canary(ctx context.Context, runner *batch.Runner, sink batch.Sink, want func(batch.Row) bool) (func(batch.Row) bool, bool, error) {
	p, done, err := openParser(r.in.path, r.infos, r.Parse)
	if err != nil {
		return nil, false, err
	}
	defer done()
	p.OpsOnly()
	ops := map[int]batch.Op{}
	pick := func(row batch.Row) bool {
		if len(ops) < r.Canary && want(row) && r.rows.of(row.Index).writes() {
			ops[row.Index] = row.Op
			return true
		}
		return false
	}
	cs := &canarySink{Sink: sink, results: map[int]batch.Result{}}
	if err := runner.Run(ctx, pending(p, pick), cs); err != nil {
		return nil, false, err
	}
	if reason := r.checkCanary(ctx, ops, cs.results); reason != "" {
		r.canaryFailed = reason
		r.Log.Error().Str("reason", reason).Int("canary", len(ops)).Msg("CANARY FAILED: the run stopped; nothing more was sent")
		return nil, false, nil
	}
	r.Log.Info().Int("canary", len(ops)).Msg("canary passed: every row took and read back right; going on")
	rest := func(row batch.Row) bool {
		_, picked := ops[row.Index]
		return !picked && want(row)
	}
	return rest, true, nil
}

// checkCanary says why the canary failed, or "".
func (r *runState) checkCanary(ctx context.Context, ops map[int]batch.Op, results map[int]batch.Result) string {
	for _, i := range sortedIndexes(ops) {
		op := ops[i]
		res, ok := results[i]
		switch {
		case !ok:
			return fmt.Sprintf("line %d was not finished", op.Line)
		case res.Outcome != batch.Applied && res.Outcome != batch.Already:
			return fmt.Sprintf("line %d ended %s: %s", op.Line, res.Outcome, res.Detail)
		}
		if reason := r.readBack(ctx, op); reason != "" {
			return fmt.Sprintf("line %d: %s", op.Line, reason)
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

func sortedIndexes(m map[int]batch.Op) []int {
	out := make([]int, 0, len(m))
	for i := range m {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}
