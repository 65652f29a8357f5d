package reports

import (
	"fmt"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// What report.html says first, for the person who reads it the next
// morning (README, "The report"): one line on how the run went, what needs
// a person, and a bar of outcomes per target.

// maxCheckListed bounds the check.csv rows the page lists; check.csv has
// every one.
const maxCheckListed = 100

// checkRow is a check.csv row as the page lists it.
type checkRow struct {
	Line   int
	Target string
	User   string
	Reason string
}

// addCheck lists a row that went to check.csv, within the bound.
func (p *page) addCheck(line int, target, user, reason string) {
	p.checkRows++
	if _, rest, ok := strings.Cut(reason, ": "); ok && CheckLine(reason) == line {
		reason = rest // the page shows the line in a column of its own
	}
	if len(p.checks) < maxCheckListed {
		p.checks = append(p.checks, checkRow{Line: line, Target: target, User: truncate(user, 100), Reason: truncate(reason, maxMessageLen)})
	}
}

// HeldDetail is the detail of a row of a run a guard held: why, and what
// the plan said of this row. heldReason reads it back for the morning page.
func HeldDetail(reason, row string) string {
	return heldPrefix + reason + heldSent + " (this row: " + row + ")"
}

const (
	heldPrefix = "held: "
	heldSent   = "; nothing was sent"
)

// heldReason reads why a held run was held from a row's detail
// (HeldDetail), "" for another row.
func heldReason(outcome batch.Outcome, detail string) string {
	rest, ok := strings.CutPrefix(detail, heldPrefix)
	if outcome != batch.Skipped || !ok {
		return ""
	}
	reason, _, _ := strings.Cut(rest, heldSent)
	return truncate(reason, maxMessageLen)
}

// verdict is the page's first line, and its tone: ok (nothing to do),
// attention (rows need a person), stopped (the run did not finish).
type verdict struct {
	Text string
	Tone string
}

// verdictOf says how the run went in one line, and what to do next. held
// is why a held run was held, as its rows' detail says ("" when unknown).
func verdictOf(s *Summary, held string) verdict {
	o := s.Outcomes
	switch {
	case s.DryRun:
		return verdict{Text: dryRunVerdict(s), Tone: "ok"}
	case s.ExitCode == ExitBadInput && o[batch.Invalid] > 0:
		return verdict{Text: fmt.Sprintf("Not sent: %d of %d rows are invalid — fix them (report.csv says where and why) and run again, or use --skip-invalid", o[batch.Invalid], s.Rows), Tone: "stopped"}
	case s.ExitCode == ExitHeld && held != "":
		return verdict{Text: fmt.Sprintf("Held: nothing was sent (%d rows) — %s", s.Rows, held), Tone: "stopped"}
	case s.ExitCode == ExitHeld:
		return verdict{Text: fmt.Sprintf("Held: nothing was sent (%d rows) — report.csv's detail says why", s.Rows), Tone: "stopped"}
	case s.Rows == 0:
		return verdict{Text: "No rows in the input: nothing to do", Tone: "ok"}
	}
	done := o[batch.Applied] + o[batch.Already]
	text := fmt.Sprintf("%d of %d done", done, s.Rows)
	if done == s.Rows {
		text = fmt.Sprintf("All %d done", s.Rows)
	}
	if rest := restCounts(o); rest != "" {
		text += "; " + rest
	}
	tone := "ok"
	var next []string
	if s.Stopped {
		tone = "stopped"
		text = "Stopped: " + text
		next = append(next, "resume: run the same command with --resume")
	}
	if f := s.FileRows.Failed; f > 0 && !s.Stopped {
		next = append(next, fmt.Sprintf("fix and re-run failed.csv (%s)", batch.Count(f, "row")))
	}
	if c := s.FileRows.Check; c > 0 {
		next = append(next, fmt.Sprintf("check %s by hand: check.csv, never re-run blindly", batch.Count(c, "user")))
	}
	if n := o[batch.Invalid]; n > 0 {
		next = append(next, "fix the invalid rows (report.csv says why) and run them again")
	}
	if len(next) > 0 {
		if tone == "ok" {
			tone = "attention"
		}
		text += " — " + strings.Join(next, "; ")
	} else if n := o[batch.NotDue]; n > 0 {
		text += " — a later run sends them when due"
	}
	return verdict{Text: text, Tone: tone}
}

// restCounts lists the rows not done, as "1 failed, 2 unknown".
func restCounts(o Counts) string {
	var parts []string
	for _, c := range []struct {
		outcome batch.Outcome
		word    string
	}{{batch.Failed, "failed"}, {batch.Unknown, "unknown"}, {batch.Skipped, "skipped"},
		{batch.Invalid, "invalid"}, {batch.NotDue, "not due yet"}, {batch.Planned, "planned"}} {
		if n := o[c.outcome]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c.word))
		}
	}
	return strings.Join(parts, ", ")
}

// dryRunVerdict is a dry run's line: its plan, and that nothing was sent.
func dryRunVerdict(s *Summary) string {
	if p := s.Plan; p != nil {
		return fmt.Sprintf("Dry run of %d rows: %d would change, %d already as asked, %d unknown state — nothing was sent; run without --dry-run to apply",
			s.Rows, p.WouldChange, p.NoChange, p.UnknownState)
	}
	text := fmt.Sprintf("Dry run of %d rows: %d planned", s.Rows, s.Outcomes[batch.Planned])
	if rest := restCounts(withoutPlanned(s.Outcomes)); rest != "" {
		text += "; " + rest
	}
	return text + " — nothing was sent; run without --dry-run to apply"
}

func withoutPlanned(o Counts) Counts {
	c := Counts{}
	for k, n := range o {
		if k != batch.Planned {
			c[k] = n
		}
	}
	return c
}

// fixes is what a person does about a row that did not end well, by its
// error code: the vendor's message says what, this says what to do.
var fixes = map[string]string{
	batch.CodeNotFound:     "check the user id (the vendor has no such user), fix the row, re-run failed.csv",
	batch.CodeUnauthorized: "check the target's credentials in targets.yaml, then re-run failed.csv",
	batch.CodeConflict:     "the user's state differs from what the row expects: check the user at the vendor",
	batch.CodeValidation:   "fix the field the vendor's message names, then re-run failed.csv",
	batch.CodeRefused:      "read the vendor's message, fix the cause, then re-run failed.csv",
	batch.CodeRateLimited:  "the vendor was busy: re-run failed.csv later, or lower the target's rate",
	batch.CodeServer:       "the vendor failed: re-run failed.csv later",
	batch.CodeTimeout:      "no answer in time: re-run failed.csv later, or raise the target's timeout",
	batch.CodeNetwork:      "the connection failed: check base_url and the network, then re-run failed.csv",
	batch.CodeBadResponse:  "the answer could not be read: check base_url, then re-run failed.csv",
	batch.CodeWaitTooLong:  "the vendor asked to wait past max_wait: re-run failed.csv later, or raise max_wait",
	batch.CodeTLS:          "the TLS certificate was refused: check base_url and the certificate",
	batch.CodeRequest:      "the request could not be built: fix the row, then re-run failed.csv",
	batch.CodeAmbiguous:    "the user cell matches several users: use the vendor's id, then re-run failed.csv",
}

// Fix is what to do about the group's rows.
func (g *errorGroup) Fix() string { return fixFor(g.errorKey) }

// fixFor is the fix for a group of rows.
func fixFor(k errorKey) string {
	switch k.Outcome {
	case batch.Invalid:
		return "fix the row in the input (the message says how), then run it again"
	case batch.Unknown:
		return "may have reached the vendor: check.csv rows by hand; failed.csv rows are safe to re-run"
	}
	if f, ok := fixes[k.Code]; ok {
		return f
	}
	if k.Outcome == batch.Skipped {
		return "not sent: once the cause is fixed, re-run failed.csv"
	}
	return "read the message, fix the cause, then re-run failed.csv"
}

// The outcome bars: one stacked bar per target, scaled to that target's
// rows, so each shows how its own rows ended.
const (
	barsWidth    = 960
	barsLabelW   = 180
	barsTotalW   = 90
	barRowH      = 28
	barH         = 20
	maxBarsShown = 30
	minLabelW    = 30 // a segment narrower than this shows its count on hover only
)

// targetBars is the SVG's rows, the legend, and the targets left out.
type targetBars struct {
	Width, Height int
	NameX, TotalX int // where the names end and the totals start
	BarH          int
	Rows          []targetBar
	Legend        []legendItem
	Hidden        int
	Text          string // the whole chart as one sentence, for screen readers
}

type targetBar struct {
	Name     string
	Y, TextY int // the bar's top, and its text's baseline
	Total    int
	Segments []segment
}

type segment struct {
	Target   string
	Outcome  batch.Outcome
	Rows     int
	X, W     float64
	MidX     float64 // where its count is written
	Y, TextY int
	Colour   string
	Ink      string // the colour of its count
	Label    bool   // wide enough to show its count
}

// inkOn is the colour of a count written on a segment of the given
// outcome: dark on the light ones, white on the others.
func inkOn(o batch.Outcome) string {
	if o == batch.Already || o == batch.Skipped {
		return "#1b1b1b"
	}
	return "#ffffff"
}

type legendItem struct {
	Outcome batch.Outcome
	Colour  string
}

// outcomeColours tell the outcomes apart: greens are done, red and orange
// need a person, greys were not sent.
var outcomeColours = map[batch.Outcome]string{
	batch.Applied: "#2e7d32", batch.Already: "#81c784", batch.Planned: "#1565c0",
	batch.NotDue: "#78909c", batch.Invalid: "#6a1b9a", batch.Failed: "#c62828",
	batch.Unknown: "#ef6c00", batch.Skipped: "#9e9e9e",
}

func colourOf(o batch.Outcome) string {
	if c, ok := outcomeColours[o]; ok {
		return c
	}
	return "#455a64"
}

// newTargetBars lays out the bars of lines (by target), outcomes in order.
func newTargetBars(lines []countsLine) targetBars {
	b := targetBars{Width: barsWidth, NameX: barsLabelW - 8, TotalX: barsWidth - barsTotalW + 8, BarH: barH}
	shown := lines
	if len(shown) > maxBarsShown {
		shown, b.Hidden = shown[:maxBarsShown], len(shown)-maxBarsShown
	}
	used := map[batch.Outcome]bool{}
	var text []string
	span := float64(barsWidth - barsLabelW - barsTotalW)
	for i, l := range shown {
		row := targetBar{Name: l.Name, Y: i*barRowH + 4, TextY: i*barRowH + 4 + barH/2 + 5, Total: l.Total}
		x := float64(barsLabelW)
		var parts []string
		for _, c := range l.Cells {
			if c.Rows == 0 || l.Total == 0 {
				continue
			}
			w := span * float64(c.Rows) / float64(l.Total)
			row.Segments = append(row.Segments, segment{Target: l.Name, Outcome: c.Outcome, Rows: c.Rows, X: x, W: w,
				MidX: x + w/2, Y: row.Y, TextY: row.TextY, Ink: inkOn(c.Outcome),
				Colour: colourOf(c.Outcome), Label: w >= minLabelW})
			x += w
			used[c.Outcome] = true
			parts = append(parts, fmt.Sprintf("%d %s", c.Rows, c.Outcome))
		}
		b.Rows = append(b.Rows, row)
		text = append(text, fmt.Sprintf("%s: %d rows, %s", l.Name, l.Total, strings.Join(parts, ", ")))
	}
	if len(shown) > 0 {
		for _, c := range shown[0].Cells { // every line lists the outcomes in one order
			if used[c.Outcome] {
				b.Legend = append(b.Legend, legendItem{Outcome: c.Outcome, Colour: colourOf(c.Outcome)})
			}
		}
	}
	b.Height = len(b.Rows)*barRowH + 8
	b.Text = strings.Join(text, "; ")
	return b
}
