package job

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/userbatch/userbatch/batch"
)

// change is what a plan says of one row, one byte a row: a million-row
// plan costs a megabyte.
type change byte

const (
	changeNone      change = iota // no word: the row was not planned (another shard's, settled)
	changeWould                   // would change
	changeNo                      // no change: found in state
	changeUnknown                 // unknown state: the vendor cannot be read
	changeNotDue                  // not due
	changeInvalid                 // invalid
	changeSkipped                 // protected, or another reason not to send
	changeDuplicate               // an exact repeat of an earlier row: never sent
)

// planWords are plan.csv's words for each change.
var planWords = map[change]string{
	changeWould: batch.WouldChange, changeNo: batch.NoChange, changeUnknown: batch.UnknownState,
	changeNotDue: "not due", changeInvalid: "invalid", changeSkipped: "protected",
	changeDuplicate: "duplicate",
}

// writes reports whether the row would send a write: what a guard counts.
func (c change) writes() bool { return c == changeWould || c == changeUnknown }

// changeOf reads a plan result.
func changeOf(res batch.Result) change {
	switch res.Outcome {
	case batch.Planned:
		switch res.Detail {
		case batch.WouldChange:
			return changeWould
		case batch.NoChange:
			return changeNo
		}
		return changeUnknown
	case batch.NotDue:
		return changeNotDue
	case batch.Invalid:
		return changeInvalid
	case batch.Skipped:
		if strings.HasPrefix(res.Detail, "protected") {
			return changeSkipped
		}
		if strings.HasPrefix(res.Detail, "duplicate of line") {
			return changeDuplicate
		}
	}
	// A read that failed: nothing is known of the state, and the row
	// still asks for a write.
	return changeUnknown
}

// rowPlan is a whole plan: a change per row, and the counts a guard reads.
type rowPlan struct {
	mu      sync.Mutex
	changes []change
	counts  planCounts
}

// planCounts counts rows by target, action and change.
type planCounts map[string]map[batch.Action]map[string]int

func (p *rowPlan) set(res batch.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.changes) <= res.Index {
		p.changes = append(p.changes, changeNone)
	}
	c := changeOf(res)
	p.changes[res.Index] = c
	if p.counts == nil {
		p.counts = planCounts{}
	}
	byAction := p.counts[res.Target]
	if byAction == nil {
		byAction = map[batch.Action]map[string]int{}
		p.counts[res.Target] = byAction
	}
	if byAction[res.Action] == nil {
		byAction[res.Action] = map[string]int{}
	}
	byAction[res.Action][planWords[c]]++
}

func (p *rowPlan) of(i int) change {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i < len(p.changes) {
		return p.changes[i]
	}
	return changeNone
}

// lookup is the plan as the pipeline reads it (batch.Runner.Plan).
func (p *rowPlan) lookup(i int) batch.Plan {
	switch p.of(i) {
	case changeWould:
		return batch.Plan{Change: batch.WouldChange}
	case changeNo:
		return batch.Plan{Change: batch.NoChange}
	case changeNotDue:
		return batch.Plan{Change: batch.PlanNotDue}
	}
	return batch.Plan{}
}

// changing counts the rows that would write, in all and by target.
func (p *rowPlan) changing() (int, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	by := map[string]int{}
	total := 0
	for target, byAction := range p.counts {
		for _, words := range byAction {
			n := words[batch.WouldChange] + words[batch.UnknownState]
			by[target] += n
			total += n
		}
	}
	return total, by
}

// table prints the counts by target and action, as a person reviews them.
func (p *rowPlan) table() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "  %-16s %-16s %12s %10s %14s\n", "target", "action", "would change", "no change", "unknown state")
	for _, target := range slices.Sorted(maps.Keys(p.counts)) {
		byAction := p.counts[target]
		for _, a := range batch.Actions {
			w, ok := byAction[a]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "  %-16s %-16s %12d %10d %14d\n", target, a, w[batch.WouldChange], w[batch.NoChange], w[batch.UnknownState])
		}
	}
	return b.String()
}

// planSink records a plan pass: each result in the journal and the plan.
type planSink struct {
	batch.Sink
	plan *rowPlan
}

func (s planSink) Result(res batch.Result) error {
	s.plan.set(res)
	return s.Sink.Result(res)
}

// planPass reads the state of every row still to run, sending no change,
// into a hidden journal in the report directory, and returns the plan.
// Guards and canaries decide from it before anything is written.
func (r *runState) planPass(ctx context.Context) (*rowPlan, error) {
	path := filepath.Join(r.out.dir, ".plan-"+r.plan.header.RunID+".jsonl")
	h := r.plan.header
	h.DryRun = true
	j, err := batch.RestartJournal(path, h)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	skip := func(int) bool { return false }
	if st := r.plan.state; st != nil {
		skip = st.Settled
	}
	p, done, err := r.in.parser(r.infos, r.parse)
	if err != nil {
		j.Close()
		return nil, err
	}
	defer done()
	p.OpsOnly()
	plan := &rowPlan{}
	var gate batch.Gate
	if g, ok := r.gate.(*ledgerGate); ok {
		dry := *g
		dry.claims = nil // a dry run's gate
		gate = &dry
	}
	runner := &batch.Runner{Targets: r.targets, DryRun: true, Workers: r.workers, Log: r.log, Clock: r.clock,
		CatchUp: r.catchUp, Gate: gate}
	// 10,000 rows at 10 reads a second is 17 minutes before the first
	// write or the question: the person watching sees them go by.
	scope := r.scope(skip)
	sink := startPass(planSink{Sink: j, plan: plan}, r.obs, r.targets, Pass{Phase: StateReading, Total: scope.total - scope.settled})
	err = runner.Run(ctx, pending(p, func(row batch.Row) bool { return r.includes(row.Op) && !skip(row.Index) }), sink)
	sink.stop()
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	return plan, err
}
