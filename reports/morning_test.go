package reports

import (
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// TestVerdictWording: the page's first line for each mix of outcomes says
// what happened and what to do next.
func TestVerdictWording(t *testing.T) {
	cases := []struct {
		name string
		s    Summary
		tone string
		want string
	}{
		{"all done", Summary{Rows: 21, Outcomes: Counts{batch.Applied: 18, batch.Already: 3}}, "ok",
			"All 21 done"},
		{"one failed", Summary{Rows: 21, Outcomes: Counts{batch.Applied: 20, batch.Failed: 1}, FileRows: FileRows{Failed: 1}, ExitCode: 1}, "attention",
			"20 of 21 done; 1 failed — fix and re-run failed.csv (1 row)"},
		{"unknown toggles", Summary{Rows: 10, Outcomes: Counts{batch.Applied: 8, batch.Unknown: 2}, FileRows: FileRows{Check: 2}, ExitCode: 1}, "attention",
			"8 of 10 done; 2 unknown — check 2 users by hand: check.csv, never re-run blindly"},
		{"skipped", Summary{Rows: 5, Outcomes: Counts{batch.Applied: 4, batch.Skipped: 1}, FileRows: FileRows{Failed: 1}, ExitCode: 1}, "attention",
			"4 of 5 done; 1 skipped — fix and re-run failed.csv (1 row)"},
		{"skip-invalid", Summary{Rows: 5, Outcomes: Counts{batch.Applied: 3, batch.Invalid: 2}, ExitCode: 1}, "attention",
			"3 of 5 done; 2 invalid — fix the invalid rows (report.csv says why) and run them again"},
		{"refused for invalid rows", Summary{Rows: 5, Outcomes: Counts{batch.Skipped: 3, batch.Invalid: 2}, ExitCode: 2}, "stopped",
			"Not sent: 2 of 5 rows are invalid — fix them (report.csv says where and why) and run again, or use --skip-invalid"},
		{"not due", Summary{Rows: 4, Outcomes: Counts{batch.Applied: 3, batch.NotDue: 1}}, "ok",
			"3 of 4 done; 1 not due yet — a later run sends them when due"},
		{"stopped", Summary{Rows: 100, Outcomes: Counts{batch.Applied: 40, batch.Skipped: 60}, Stopped: true, FileRows: FileRows{Failed: 60}, ExitCode: 3}, "stopped",
			"Stopped: 40 of 100 done; 60 skipped — resume: run the same command with --resume"},
		{"held", Summary{Rows: 50, Outcomes: Counts{batch.Skipped: 50}, ExitCode: 4}, "stopped",
			"Held: nothing was sent (50 rows) — report.csv's detail says why"},
		{"dry run with a plan", Summary{Rows: 200, DryRun: true, Outcomes: Counts{batch.Planned: 200},
			Plan: &PlanCounts{WouldChange: 9, NoChange: 181, UnknownState: 10}}, "ok",
			"Dry run of 200 rows: 9 would change, 181 already as asked, 10 unknown state — nothing was sent; run without --dry-run to apply"},
		{"dry run", Summary{Rows: 3, DryRun: true, Outcomes: Counts{batch.Planned: 2, batch.Failed: 1}}, "ok",
			"Dry run of 3 rows: 2 planned; 1 failed — nothing was sent; run without --dry-run to apply"},
		{"empty", Summary{Outcomes: Counts{}}, "ok", "No rows in the input: nothing to do"},
	}
	for _, c := range cases {
		v := verdictOf(&c.s, "")
		if v.Text != c.want || v.Tone != c.tone {
			t.Errorf("%s:\n got (%s) %q\nwant (%s) %q", c.name, v.Tone, v.Text, c.tone, c.want)
		}
	}
}

// TestVerdictOfAHeldRun: a held run's page says why it was held, as its
// rows' detail does: a limit, or a question not confirmed.
func TestVerdictOfAHeldRun(t *testing.T) {
	p := newPage()
	p.add(2, "apps", "u1", batch.Skipped, "", `held: not confirmed (typed "4", not 5); nothing was sent (this row: would change)`, "", false, time.Time{})
	p.add(3, "apps", "u2", batch.Skipped, "", "held: other; nothing was sent (this row: would change)", "", false, time.Time{})
	v := p.view(&Summary{Rows: 2, Outcomes: Counts{batch.Skipped: 2}, ExitCode: 4}).Verdict
	if want := `Held: nothing was sent (2 rows) — not confirmed (typed "4", not 5)`; v.Text != want || v.Tone != "stopped" {
		t.Errorf("got (%s) %q\nwant (stopped) %q", v.Tone, v.Text, want)
	}
}
