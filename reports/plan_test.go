package reports

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// TestSummaryPlan: a dry run's summary counts what it found, and the time
// its writes would take is the slowest target's at its rate.
func TestSummaryPlan(t *testing.T) {
	w, dir := create(t, header("target", "user", "action"))
	planned := func(target, detail string) batch.Result {
		return batch.Result{Target: target, Action: batch.Disable, Outcome: batch.Planned, Detail: detail, Attempts: 1}
	}
	var results []batch.Result
	for range 9 {
		results = append(results, planned("kii", batch.WouldChange))
	}
	for range 3 {
		results = append(results, planned("kii", batch.NoChange))
	}
	for range 4 {
		results = append(results, planned("shop", batch.UnknownState))
	}
	results = append(results,
		batch.Result{Target: "kii", Action: batch.Disable, Outcome: batch.Failed, Attempts: 2, Retries: 1}, // a read that failed
		batch.Result{Target: "kii", Action: batch.Disable, Outcome: batch.NotDue},
		batch.Result{Target: "shop", Action: batch.Disable, Outcome: batch.Skipped, Detail: "protected user"})
	for i, res := range results {
		write(t, w, batch.Row{Line: i + 2}, res)
	}
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	s, err := w.Close(Run{StartedAt: start, FinishedAt: start.Add(time.Second), DryRun: true,
		Rates: map[string]float64{"kii": 2, "shop": 10}})
	if err != nil {
		t.Fatal(err)
	}
	var got Summary
	readJSON(t, filepath.Join(dir, SummaryFile), &got)
	// kii: 9 would change + 1 unreadable = 10 writes at 2/s = 5 s; shop: 4 at 10/s.
	want := PlanCounts{WouldChange: 9, NoChange: 3, UnknownState: 5, Seconds: 5}
	if got.Plan == nil || *got.Plan != want || *s.Plan != want {
		t.Fatalf("plan %+v, want %+v", got.Plan, want)
	}
	if got.Reads != 18 || got.Writes != 0 || got.Sent != 0 {
		t.Errorf("reads %d, writes %d, sent %d; want 18, 0, 0", got.Reads, got.Writes, got.Sent)
	}
	line := "Plan: 9 to change, 3 already, 5 unknown state — about 5 seconds at the configured rates"
	if s.PlanLine() != line {
		t.Errorf("PlanLine = %q, want %q", s.PlanLine(), line)
	}
	var b strings.Builder
	s.WriteTable(&b)
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); lines[len(lines)-1] != line {
		t.Errorf("the table does not end with the plan:\n%s", b.String())
	}
}

// TestSummaryNoPlanForARun: only a dry run has a plan.
func TestSummaryNoPlanForARun(t *testing.T) {
	w, dir := create(t, header("target", "user", "action"))
	write(t, w, batch.Row{Line: 2}, batch.Result{Target: "kii", Outcome: batch.Applied, Attempts: 2, Writes: 1})
	s, err := w.Close(Run{Rates: map[string]float64{"kii": 2}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	readJSON(t, filepath.Join(dir, SummaryFile), &got)
	if _, ok := got["plan"]; ok || s.PlanLine() != "" {
		t.Errorf("a run's summary has a plan: %v", got["plan"])
	}
	if got["reads"] != 1.0 || got["writes"] != 1.0 {
		t.Errorf("reads %v, writes %v; want 1, 1", got["reads"], got["writes"])
	}
}

func TestPlanLineWords(t *testing.T) {
	for _, c := range []struct {
		plan PlanCounts
		want string
	}{
		{PlanCounts{NoChange: 4}, "Plan: 0 to change, 4 already, 0 unknown state — nothing to send"},
		{PlanCounts{WouldChange: 1, Seconds: 0.1}, "Plan: 1 to change, 0 already, 0 unknown state — less than a second at the configured rates"},
		{PlanCounts{WouldChange: 1, Seconds: 1}, "— about 1 second at"},
		{PlanCounts{WouldChange: 1, Seconds: 89.4}, "— about 89 seconds at"},
		{PlanCounts{WouldChange: 1, Seconds: 60 * 60}, "— about 60 minutes at"},
		{PlanCounts{WouldChange: 1, Seconds: 91 * 60}, "— about 1 hour 31 minutes at"},
		{PlanCounts{WouldChange: 1, Seconds: 2 * 3600}, "— about 2 hours at"},
		{PlanCounts{WouldChange: 1, Seconds: 2*3600 + 60}, "— about 2 hours 1 minute at"},
	} {
		s := &Summary{Plan: &c.plan}
		if got := s.PlanLine(); !strings.Contains(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.plan, got, c.want)
		}
	}
}
