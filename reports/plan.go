package reports

import (
	"fmt"
	"math"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// planTally counts what a dry run found, and the rows each target would
// write, for the plan's time.
type planTally struct {
	counts PlanCounts
	writes map[string]int // by target: would change and unknown state
}

// add counts one row of a dry run. A row whose state could not be read
// (failed, unknown) is unknown state: a run would still send its write,
// as plan.csv says.
func (p *planTally) add(res batch.Result) {
	switch {
	case res.Outcome == batch.Planned && res.Detail == batch.NoChange, res.Outcome == batch.Already:
		p.counts.NoChange++
		return
	case res.Outcome == batch.Planned && res.Detail == batch.WouldChange:
		p.counts.WouldChange++
	case res.Outcome == batch.Planned, res.Outcome == batch.Failed, res.Outcome == batch.Unknown:
		p.counts.UnknownState++
	default:
		return // not due, invalid, skipped: nothing a run would send
	}
	if p.writes == nil {
		p.writes = map[string]int{}
	}
	p.writes[res.Target]++
}

// result is the plan's counts and time: each target's writes at its rate,
// targets running side by side, so the slowest decides. A target with no
// rate given is taken as unpaced.
func (p *planTally) result(rates map[string]float64) *PlanCounts {
	c := p.counts
	for target, n := range p.writes {
		if r := rates[target]; r > 0 {
			c.Seconds = max(c.Seconds, float64(n)/r)
		}
	}
	c.Seconds = round(c.Seconds, 1)
	return &c
}

// add joins a shard's plan: counts add up; shards run side by side, so
// the time is the slowest shard's.
func (c *PlanCounts) add(p *PlanCounts) {
	c.WouldChange += p.WouldChange
	c.NoChange += p.NoChange
	c.UnknownState += p.UnknownState
	c.Seconds = max(c.Seconds, p.Seconds)
}

// PlanLine is the one line a dry run and a plan end with, such as
// "Plan: 9 to change, 181 already, 10 unknown state — about 4 seconds at
// the configured rates"; "" when the summary holds no plan.
func (s *Summary) PlanLine() string {
	if s.Plan == nil {
		return ""
	}
	p := s.Plan
	line := fmt.Sprintf("Plan: %d to change, %d already, %d unknown state", p.WouldChange, p.NoChange, p.UnknownState)
	if p.WouldChange+p.UnknownState == 0 {
		return line + " — nothing to send"
	}
	return line + " — " + about(p.Seconds) + " at the configured rates"
}

// about says roughly how long seconds is, in words an operator reads at a
// glance: "less than a second", "about 1 second", "about 4 minutes",
// "about 2 hours 5 minutes".
func about(seconds float64) string {
	s := int(math.Round(seconds))
	switch {
	case s < 1:
		return "less than a second"
	case s < 90:
		return "about " + batch.Count(s, "second")
	case s < 90*60:
		return "about " + batch.Count(int(math.Round(float64(s)/60)), "minute")
	}
	m := int(math.Round(float64(s) / 60))
	parts := []string{batch.Count(m/60, "hour")}
	if m%60 != 0 {
		parts = append(parts, batch.Count(m%60, "minute"))
	}
	return "about " + strings.Join(parts, " ")
}
