package reports

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// done reports whether a row with outcome o needs nothing more.
func done(o batch.Outcome) bool {
	return o == batch.Applied || o == batch.Already || o == batch.Planned || o == batch.NotDue
}

// Run describes the run as a whole, for the summary: what the caller knows
// and the rows do not tell.
type Run struct {
	// StartedAt is when the run began: for a resumed run, when its first
	// process started. FinishedAt is when it ended. duration_s and
	// ops_per_s are taken from them as given.
	StartedAt, FinishedAt time.Time
	// Stopped is true when the run stopped early (signal, guard).
	Stopped bool
	DryRun  bool
	// ExitCode, when not 0, is the process's exit code and is written as
	// exit_code as it is (2 for a file refused for its invalid rows, say).
	// When 0, exit_code is computed from the outcomes and Stopped.
	ExitCode ExitCode
	// Rates are each target's requests per second as the run paces them:
	// a dry run's plan says how long its writes would take at them.
	Rates map[string]float64
	// Processes is the number of processes that made the run: 1, plus one
	// for each --resume. 0 is taken as 1.
	Processes int
	// Actor is who ran it (--actor), written as actor.
	Actor string
}

// exitCode is the exit code the summary states: the caller's when it set one.
func (r Run) exitCode(outcomes Counts) ExitCode {
	if r.ExitCode != 0 {
		return r.ExitCode
	}
	return ExitFor(outcomes, r.Stopped)
}

// Counts holds the number of rows per outcome. In a Summary it lists every
// outcome, zeros included.
type Counts map[batch.Outcome]int

// Latency holds percentiles of the rows' time at the vendor, in
// milliseconds, over the rows that were sent (Attempts > 0): the sum of a
// row's requests, retries included; never time queued behind the rate
// limit, a Retry-After pause or a backoff.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// FileRows counts the data rows of the report files beside summary.json.
type FileRows struct {
	// Failed rows are safe to run again as they are.
	Failed int `json:"failed.csv"`
	// Check rows must be checked by hand: they may have reached the vendor,
	// or whether this run made their change is not known.
	Check int `json:"check.csv"`
	// Undo rows reverse the applied rows (some rows take two).
	Undo int `json:"undo.csv"`
}

// Summary is summary.json. Outcomes, each ByTarget entry and each ByAction
// entry add up to Rows. ByAction is keyed by the canonical action, or by the
// cell as written for a row whose action is invalid. It marshals to JSON as
// summary.json holds it, so a caller can log it as one structured value.
type Summary struct {
	Rows      int               `json:"rows"`
	Outcomes  Counts            `json:"outcomes"`
	ByTarget  map[string]Counts `json:"by_target"`
	ByAction  map[string]Counts `json:"by_action"`
	StartedAt time.Time         `json:"started_at"`
	// FinishedAt is when the run ended, not when the report was written.
	FinishedAt time.Time `json:"finished_at"`
	DurationS  float64   `json:"duration_s"`
	// Sent is Writes, under its older name: the requests that asked for a
	// change.
	Sent int `json:"sent"`
	// OpsPerS is requests (Reads + Writes) per second over the whole run,
	// as a target's rate counts them; 0 when the duration is.
	OpsPerS   float64 `json:"ops_per_s"`
	LatencyMS Latency `json:"latency_ms"`
	// Retries counts the attempts after each row's first, reads included.
	Retries  int `json:"retries"`
	Attempts int `json:"attempts"`
	// ExitCode is the run's exit code: the process's own (see Run.ExitCode).
	// A merged summary holds the worst of its shards' and of the merged
	// outcomes'.
	ExitCode ExitCode `json:"exit_code"`
	Stopped  bool     `json:"stopped"`
	DryRun   bool     `json:"dry_run"`
	// Processes counts the processes that made the run (1 + resumes).
	Processes int      `json:"processes"`
	FileRows  FileRows `json:"file_rows"`
	// Actor is who ran it (--actor).
	Actor string `json:"actor"`
	// Reads and Writes count requests apart: a dry run has Writes 0.
	Reads  int `json:"reads"`
	Writes int `json:"writes"`
	// Plan is set on a dry run and a plan: what a run would do.
	Plan *PlanCounts `json:"plan,omitempty"`
}

// PlanCounts is what a dry run or a plan found: rows that would change,
// rows already in state, rows whose state cannot be read. Seconds is about
// how long the changes would take at the configured rates.
type PlanCounts struct {
	WouldChange  int     `json:"would_change"`
	NoChange     int     `json:"no_change"`
	UnknownState int     `json:"unknown_state"`
	Seconds      float64 `json:"seconds"`
}

// maxKeys bounds the targets and actions the summary counts separately. Only
// invalid rows carry arbitrary cells there; past the bound they are counted
// under otherKey, so a file of garbage cannot grow memory without limit.
const (
	maxKeys  = 1000
	otherKey = "(other)"
)

// tally accumulates the summary row by row, in memory independent of the
// number of rows.
type tally struct {
	rows     int
	outcomes Counts
	byTarget map[string]Counts
	byAction map[string]Counts
	reads    int
	writes   int
	attempts int
	retries  int
	latency  histogram
	plan     planTally
}

func newTally() tally {
	return tally{outcomes: Counts{}, byTarget: map[string]Counts{}, byAction: map[string]Counts{}}
}

func (t *tally) add(res batch.Result) {
	t.rows++
	t.outcomes[res.Outcome]++
	entry(t.byTarget, res.Target)[res.Outcome]++
	entry(t.byAction, string(res.Action))[res.Outcome]++
	t.attempts += res.Attempts
	t.retries += res.Retries
	t.writes += res.Writes
	t.reads += res.Attempts - res.Writes
	t.plan.add(res)
	if res.Attempts > 0 {
		t.latency.add(res.Duration)
	}
}

func entry(m map[string]Counts, key string) Counts {
	if c, ok := m[key]; ok {
		return c
	}
	if len(m) >= maxKeys {
		key = otherKey
		if c, ok := m[key]; ok {
			return c
		}
	}
	c := Counts{}
	m[key] = c
	return c
}

func (t *tally) summary(run Run) *Summary {
	s := &Summary{
		Rows:       t.rows,
		Outcomes:   withZeros(t.outcomes),
		ByTarget:   map[string]Counts{},
		ByAction:   map[string]Counts{},
		StartedAt:  run.StartedAt,
		FinishedAt: run.FinishedAt,
		Sent:       t.writes,
		Reads:      t.reads,
		Writes:     t.writes,
		Retries:    t.retries,
		Attempts:   t.attempts,
		ExitCode:   run.exitCode(t.outcomes),
		Stopped:    run.Stopped,
		DryRun:     run.DryRun,
		Processes:  max(run.Processes, 1),
		Actor:      run.Actor,
	}
	if run.DryRun && run.ExitCode == 0 { // a refused file planned nothing
		s.Plan = t.plan.result(run.Rates)
	}
	for k, c := range t.byTarget {
		s.ByTarget[k] = withZeros(c)
	}
	for k, c := range t.byAction {
		s.ByAction[k] = withZeros(c)
	}
	s.setRate()
	s.LatencyMS = Latency{
		P50: millis(t.latency.quantile(0.50)),
		P95: millis(t.latency.quantile(0.95)),
		P99: millis(t.latency.quantile(0.99)),
		Max: millis(time.Duration(t.latency.max)),
	}
	return s
}

// setRate sets DurationS and OpsPerS from the run's start and end.
func (s *Summary) setRate() {
	s.DurationS, s.OpsPerS = 0, 0
	if d := s.FinishedAt.Sub(s.StartedAt).Seconds(); d > 0 {
		s.DurationS = round(d, 3)
		s.OpsPerS = round(float64(s.Reads+s.Writes)/d, 2)
	}
}

// withZeros copies c with every outcome present, so that readers of
// summary.json need not tell "none" from "missing".
func withZeros(c Counts) Counts {
	out := make(Counts, len(batch.Outcomes))
	for _, o := range batch.Outcomes {
		out[o] = 0
	}
	for o, n := range c {
		out[o] = n
	}
	return out
}

func millis(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// WriteTable writes a short aligned table for a terminal: the rows per
// outcome (with a column per target when there are several), then
// throughput, latency percentiles and retries. Write errors are ignored: it
// is a courtesy on stderr, the report files are the record.
func (s *Summary) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	targets := s.targets()
	fmt.Fprintf(tw, "outcome\trows")
	for _, t := range targets {
		fmt.Fprintf(tw, "\t%s", t)
	}
	fmt.Fprintln(tw)
	for _, o := range s.outcomeOrder() {
		fmt.Fprintf(tw, "%s\t%d", o, s.Outcomes[o])
		for _, t := range targets {
			fmt.Fprintf(tw, "\t%d", s.ByTarget[t][o])
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "total\t%d", s.Rows)
	for _, t := range targets {
		fmt.Fprintf(tw, "\t%d", sum(s.ByTarget[t]))
	}
	fmt.Fprintln(tw)
	tw.Flush()

	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	duration := time.Duration(s.DurationS * float64(time.Second)).Round(time.Millisecond)
	fmt.Fprintf(tw, "throughput\t%.1f requests/s (%s, %s in %s)\n", s.OpsPerS,
		batch.Count(s.Reads, "read"), batch.Count(s.Writes, "write"), duration)
	fmt.Fprintf(tw, "latency\tp50 %s  p95 %s  p99 %s\n",
		ms(s.LatencyMS.P50), ms(s.LatencyMS.P95), ms(s.LatencyMS.P99))
	fmt.Fprintf(tw, "retries\t%d (%d attempts)\n", s.Retries, s.Attempts)
	if s.FileRows.Check > 0 {
		fmt.Fprintf(tw, "check\t%s to check by hand (%s, whose reason column says why); never re-run them blindly\n",
			batch.CountRows(s.FileRows.Check), CheckFile)
	}
	tw.Flush()
	if line := s.PlanLine(); line != "" {
		fmt.Fprintln(w, line)
	}
}

// targets lists the per-target columns: none for a single target, whose
// column would repeat the rows column.
func (s *Summary) targets() []string {
	if len(s.ByTarget) < 2 {
		return nil
	}
	names := make([]string, 0, len(s.ByTarget))
	for t := range s.ByTarget {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

// outcomeOrder is batch.Outcomes, then any outcome outside it in name order,
// so that every counted row shows in the table.
func (s *Summary) outcomeOrder() []batch.Outcome {
	order := slices.Clone(batch.Outcomes)
	var extra []batch.Outcome
	for o := range s.Outcomes {
		if !slices.Contains(order, o) {
			extra = append(extra, o)
		}
	}
	slices.Sort(extra)
	return append(order, extra...)
}

func sum(c Counts) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func ms(v float64) string { return fmt.Sprintf("%.1fms", v) }
