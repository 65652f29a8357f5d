package job

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/reports"
)

// readCounter is an opener that counts how often each file is opened.
type readCounter struct {
	mu     sync.Mutex
	opened map[string]int
}

func (c *readCounter) open(path string) (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened == nil {
		c.opened = map[string]int{}
	}
	c.opened[filepath.Clean(path)]++
	return os.Open(path)
}

func (c *readCounter) of(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened[filepath.Clean(path)]
}

// checkReads fails unless the file at path was opened want times.
func checkReads(t *testing.T, c *readCounter, path string, want int, why string) {
	t.Helper()
	if got := c.of(path); got != want {
		t.Errorf("%s opened %d times, want %d (%s)", filepath.Base(path), got, want, why)
	}
}

// checkApplied fails unless every row of the report in dir was applied.
func checkApplied(t *testing.T, dir string) {
	t.Helper()
	for _, row := range readReport(t, dir, reports.ReportFile) {
		if row["outcome"] != "applied" {
			t.Errorf("row %v: outcome %q, want applied", row["line"], row["outcome"])
		}
	}
}

// TestRunReadsInputThreeTimes: a run hashes the input, then parses it once
// to validate it (the duplicates pass is that parse when no rows meet),
// once to send and once for the report; counting the rows in scope and
// showing problems read it no more.
func TestRunReadsInputThreeTimes(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.dir, "out")
	c := &readCounter{}
	o := f.options(out)
	o.open = c.open
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkReads(t, c, f.input, 4, "hash, validate, send, report")
	if n := f.kii.Writes("k1"); n != 1 {
		t.Errorf("kii got %d writes for k1, want 1", n)
	}
	checkApplied(t, out)
}

// TestRunWithDuplicateReadsTwoMore: when rows meet, the duplicates pass
// reads the file a second time to learn them, and validation a third, as
// its first reading's rows were not final; the duplicate is not sent.
func TestRunWithDuplicateReadsTwoMore(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.input, []byte(rowsCSV+"apps,k1,disable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "out")
	c := &readCounter{}
	o := f.options(out)
	o.open = c.open
	err := Run(context.Background(), o)
	if code := Exit(err); code != reports.ExitIncomplete {
		t.Fatalf("exit %d (%v), want %d: the duplicate ends skipped", code, err, reports.ExitIncomplete)
	}
	checkReads(t, c, f.input, 6, "hash, two duplicates passes, validate, send, report")
	if n := f.kii.Writes("k1"); n != 1 {
		t.Errorf("kii got %d writes for k1, want 1: the duplicate is never sent", n)
	}
	rows := readReport(t, out, reports.ReportFile)
	if last := rows[len(rows)-1]; last["outcome"] != "skipped" || !strings.Contains(last["detail"], "duplicate of line 2") {
		t.Errorf("last row %v, want skipped as a duplicate of line 2", last)
	}
}

// TestRunWithInvalidRowsShowsProblemsWithoutReadingAgain: a file refused
// for an invalid row is read to hash it, to validate it (the problems shown
// come from that reading) and to write the refused report.
func TestRunWithInvalidRowsShowsProblemsWithoutReadingAgain(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.input, []byte(rowsCSV+"apps,k9,explode\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &readCounter{}
	var stderr strings.Builder
	o := f.options(filepath.Join(f.dir, "out"))
	o.open, o.Stderr, o.Console = c.open, &stderr, true
	err := Run(context.Background(), o)
	if code := Exit(err); code != reports.ExitBadInput {
		t.Fatalf("exit %d (%v), want %d", code, err, reports.ExitBadInput)
	}
	if !strings.Contains(stderr.String(), `line 6, column action: unknown action "explode"`) {
		t.Errorf("stderr does not show the problem:\n%s", stderr.String())
	}
	checkReads(t, c, f.input, 3, "hash, validate, refused report")
	if got := f.kii.Requests(); got != 0 {
		t.Errorf("kii got %d requests, want none", got)
	}
}

// TestPlanAndApplyReads: plan reads the input as a dry run does, and once
// more to copy it; plan.csv reads the copy once, with the run's duplicates.
// apply hashes both files, reads the copy once for the plan's rows, then
// runs as a run does.
func TestPlanAndApplyReads(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.dir, "plan")
	c := &readCounter{}
	o := f.options(dir)
	o.open, o.Stdout = c.open, io.Discard
	if err := MakePlan(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, PlanInput)
	checkReads(t, c, f.input, 5, "hash, validate, dry run, report, copy")
	checkReads(t, c, copyPath, 1, "plan.csv")
	if n := f.kii.Writes("k1"); n != 0 {
		t.Fatalf("plan sent %d writes to kii", n)
	}

	ac := &readCounter{}
	a := f.options(filepath.Join(f.dir, "applied")).Args
	a.open = ac.open
	sp, err := LoadPlan(dir, a, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ao := f.options(filepath.Join(f.dir, "applied"))
	ao.open, ao.Plan, ao.Input = ac.open, sp, sp.InputPath()
	if err := Run(context.Background(), ao); err != nil {
		t.Fatal(err)
	}
	checkReads(t, ac, f.input, 1, "apply checks the original's hash")
	checkReads(t, ac, copyPath, 6, "hash, plan rows, hash, validate, send, report")
	if n := f.kii.Writes("k1"); n != 1 {
		t.Errorf("apply sent %d writes for k1, want 1", n)
	}
	checkApplied(t, filepath.Join(f.dir, "applied"))
}

// TestValidateReadsOnce: validate parses a file whose rows do not meet
// once, and shows every problem as it would have on a second reading.
func TestValidateReadsOnce(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.input, []byte(rowsCSV+"apps,,disable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &readCounter{}
	var w strings.Builder
	v, err := (&input{path: f.input, open: c.open}).validate(f.cfg.Infos(), ParseOptions{}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid != 4 || v.Invalid != 1 || !strings.Contains(w.String(), "line 6, column user: user is empty") {
		t.Errorf("validation %+v, output:\n%s", v, w.String())
	}
	checkReads(t, c, f.input, 1, "one parse")
}
