package reports

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
	browser "github.com/userbatch/userbatch/internal/chromium"
)

// mergeInput is one file's rows and what became of each: every outcome, an
// unknown toggle (check.csv) and an unknown disable (failed.csv), already
// rows whose change may not be the run's (check.csv), and users changed
// twice, whose undo must come out last change first.
type mergeRow struct {
	target, user string
	action       batch.Action
	outcome      batch.Outcome
}

func mergeInput() []mergeRow {
	var rows []mergeRow
	outcomes := []batch.Outcome{batch.Applied, batch.Applied, batch.Failed, batch.Already, batch.Unknown, batch.Skipped, batch.Applied}
	for i := range 60 {
		r := mergeRow{target: "shop", user: fmt.Sprintf("u%d", i%25), action: batch.Disable, outcome: outcomes[i%len(outcomes)]}
		if i >= 25 && i < 50 {
			r.action = batch.Enable // the same users again
		}
		if i%4 == 0 {
			r.target, r.action = "cs", batch.ToggleStatus
		}
		rows = append(rows, r)
	}
	return rows
}

type runSpec struct {
	input, config string
	dryRun, excel bool
	comma         rune // the input's delimiter
}

var defaultSpec = runSpec{input: strings.Repeat("a1", 32), config: strings.Repeat("c0", 32)}

// writeRun writes the report directory of one shard ("" for the whole file)
// of mergeInput, with a journal header as a run writes it.
func writeRun(t *testing.T, dir string, shard batch.Shard, spec runSpec) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	j, err := batch.CreateJournal(filepath.Join(dir, batch.JournalName), batch.JournalHeader{
		InputSHA256: spec.input, ConfigSHA256: spec.config, Targets: []string{"cs", "shop"},
		DryRun: spec.dryRun, Shard: shard.String(), CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	h := header("target", "user", "action", "note")
	h.Delimiter = spec.comma
	w, err := CreateWith(dir, h, Options{Excel: spec.excel})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, r := range mergeInput() {
		if !shard.Includes(r.target, r.user) {
			continue
		}
		op := batch.Op{Target: r.target, User: r.user, Action: r.action}
		res := batch.Result{Target: r.target, User: r.user, Action: r.action, Outcome: r.outcome, Attempts: 1,
			Duration: time.Duration(i+1) * time.Millisecond, FinishedAt: start.Add(time.Duration(i) * 100 * time.Millisecond)}
		if r.outcome == batch.Failed || r.outcome == batch.Unknown {
			res.ErrorCode, res.Message = "timeout", "no answer in time <b>"
		}
		if r.outcome == batch.Already && i%3 == 0 {
			res.Detail = batch.AlreadyAfterInterruption
		}
		if r.outcome == batch.Skipped {
			res.Attempts, res.Duration, res.FinishedAt, res.Detail = 0, 0, time.Time{}, "protected user"
		}
		if r.outcome == batch.Applied {
			res.Attempts, res.Writes = 2, 1 // a read, then the write
		}
		rec := []string{r.target, r.user, string(r.action), fmt.Sprintf("=note %d", i)}
		if err := w.Write(batch.Row{Line: i + 2, Record: rec, Op: op}, res); err != nil {
			t.Fatal(err)
		}
	}
	run := Run{StartedAt: start, FinishedAt: start.Add(10 * time.Second), DryRun: spec.dryRun,
		Rates: map[string]float64{"shop": 2, "cs": 1}}
	if _, err := w.Close(run); err != nil {
		t.Fatal(err)
	}
}

func writeShards(t *testing.T, root string, n int, spec runSpec) []string {
	t.Helper()
	var dirs []string
	for k := range n {
		dir := filepath.Join(root, fmt.Sprintf("shard-%d", k))
		writeRun(t, dir, batch.Shard{Index: k, Count: n}, spec)
		dirs = append(dirs, dir)
	}
	return dirs
}

// TestMergeAddsPlans: the shards' plans add up to the whole file's; the
// shards run side by side, so the time is the slowest shard's.
func TestMergeAddsPlans(t *testing.T) {
	root := t.TempDir()
	spec := defaultSpec
	spec.dryRun = true
	whole := filepath.Join(root, "whole")
	writeRun(t, whole, batch.Shard{}, spec)
	dirs := writeShards(t, root, 3, spec)
	sum, err := Merge(filepath.Join(root, "merged"), dirs)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	var one Summary
	readJSON(t, filepath.Join(whole, SummaryFile), &one)
	slowest := 0.0
	for _, dir := range dirs {
		var part Summary
		readJSON(t, filepath.Join(dir, SummaryFile), &part)
		slowest = max(slowest, part.Plan.Seconds)
	}
	if sum.Plan == nil || one.Plan == nil || one.Plan.UnknownState == 0 || one.Plan.NoChange == 0 {
		t.Fatalf("merged plan %+v, one run's %+v", sum.Plan, one.Plan)
	}
	want := *one.Plan
	want.Seconds = slowest
	if *sum.Plan != want || slowest == 0 || slowest >= one.Plan.Seconds {
		t.Errorf("merged plan %+v, want %+v (one run's %+v)", *sum.Plan, want, *one.Plan)
	}
}

// The merged report of the shards is, file for file, the report of one run
// over the whole file.
func TestMergeEqualsOneRun(t *testing.T) {
	root := t.TempDir()
	whole := filepath.Join(root, "whole")
	writeRun(t, whole, batch.Shard{}, defaultSpec)
	dirs := writeShards(t, root, 3, defaultSpec)
	out := filepath.Join(root, "merged")
	sum, err := Merge(out, dirs)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	for _, name := range []string{ReportFile, FailedFile, CheckFile, UndoFile} {
		want, _ := os.ReadFile(filepath.Join(whole, name))
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("merged %s differs from one run's:\n got %s\nwant %s", name, got, want)
		}
	}
	var one Summary
	readJSON(t, filepath.Join(whole, SummaryFile), &one)
	if sum.Rows != one.Rows || fmt.Sprint(sum.Outcomes) != fmt.Sprint(one.Outcomes) || sum.FileRows != one.FileRows ||
		sum.Sent != one.Sent || sum.Reads != one.Reads || sum.Writes != one.Writes || sum.Writes == 0 ||
		sum.Processes != 3 || sum.ExitCode != ExitIncomplete || sum.Plan != nil {
		t.Errorf("merged summary %+v\none run's %+v", sum, one)
	}
	if one.FileRows.Check == 0 || one.FileRows.Undo < 2 {
		t.Fatalf("the input exercises too little: %+v", one.FileRows)
	}
	for _, name := range list(t, out) {
		mode(t, filepath.Join(out, name))
	}
	if names := list(t, out); fmt.Sprint(names) != fmt.Sprint([]string{CheckFile, FailedFile, ReportFile, HTMLFile, SummaryFile, UndoFile}) {
		t.Errorf("the merged directory holds %q", names)
	}
}

func TestMergedPageInChromium(t *testing.T) {
	bin := browser.Find(t)
	browser.Warm(bin)
	t.Parallel()
	root := t.TempDir()
	out := filepath.Join(root, "merged")
	if _, err := Merge(out, writeShards(t, root, 2, defaultSpec)); err != nil {
		t.Fatal(err)
	}
	dom := checkPageAgainstSummary(t, bin, out, 800, 600, "")
	if strings.Contains(dom, "<b>") || !strings.Contains(dom, "no answer in time &lt;b&gt;") {
		t.Error("a vendor's message is not escaped in the merged page")
	}
}

// TestMergeKeepsExcelBOM: shards written for Excel from a ';' input merge
// into files with one BOM and the same delimiter.
func TestMergeKeepsExcelBOM(t *testing.T) {
	root := t.TempDir()
	spec := defaultSpec
	spec.excel, spec.comma = true, ';'
	out := filepath.Join(root, "merged")
	if _, err := Merge(out, writeShards(t, root, 2, spec)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ReportFile, FailedFile, CheckFile, UndoFile} {
		raw, _ := os.ReadFile(filepath.Join(out, name))
		if !bytes.HasPrefix(raw, []byte(UTF8BOM)) || bytes.Count(raw, []byte(UTF8BOM)) != 1 {
			t.Errorf("merged %s: want exactly one BOM, first", name)
		}
		if first, _, _ := bytes.Cut(raw, []byte("\n")); bytes.Count(first, []byte(";")) < 3 || bytes.Contains(first, []byte(",")) {
			t.Errorf("merged %s: header %q, want ';'-separated", name, first)
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	root := t.TempDir()
	dirs := writeShards(t, filepath.Join(root, "a"), 3, defaultSpec)
	other := defaultSpec
	other.input = strings.Repeat("b2", 32)
	otherInput := writeShards(t, filepath.Join(root, "other-input"), 3, other)
	other = defaultSpec
	other.config = strings.Repeat("d3", 32)
	otherConfig := writeShards(t, filepath.Join(root, "other-config"), 3, other)
	other = defaultSpec
	other.dryRun = true
	dryRun := writeShards(t, filepath.Join(root, "dry"), 3, other)
	fourWay := writeShards(t, filepath.Join(root, "four"), 4, defaultSpec)
	whole := filepath.Join(root, "whole")
	writeRun(t, whole, batch.Shard{}, defaultSpec)
	noJournal := filepath.Join(root, "no-journal")
	writeRun(t, noJournal, batch.Shard{Index: 2, Count: 3}, defaultSpec)
	os.Remove(filepath.Join(noJournal, batch.JournalName))
	unfinished := filepath.Join(root, "unfinished")
	writeRun(t, unfinished, batch.Shard{Index: 2, Count: 3}, defaultSpec)
	os.Remove(filepath.Join(unfinished, SummaryFile))

	cases := []struct {
		name string
		dirs []string
		says string
	}{
		{"a shard missing", dirs[:2], "shard 2/3 missing"},
		{"a shard twice", []string{dirs[0], dirs[1], dirs[1], dirs[2]}, "given twice"},
		{"the same shard twice instead of another", []string{dirs[0], dirs[1], dirs[1]}, "given twice"},
		{"another input", []string{dirs[0], dirs[1], otherInput[2]}, "different input"},
		{"another config", []string{dirs[0], otherConfig[1], dirs[2]}, "different configs"},
		{"a dry run", []string{dirs[0], dirs[1], dryRun[2]}, "dry run"},
		{"another split", []string{dirs[0], dirs[1], dirs[2], fourWay[3]}, "not the same split"},
		{"an unsharded run", []string{whole}, "unsharded"},
		{"an unsharded run among shards", []string{dirs[0], dirs[1], dirs[2], whole}, "unsharded"},
		{"no journal", []string{dirs[0], dirs[1], noJournal}, "journal"},
		{"no summary", []string{dirs[0], dirs[1], unfinished}, "not a complete report"},
		{"nothing", nil, "no report directories"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "merged")
			_, err := Merge(out, c.dirs)
			if !errors.Is(err, ErrMergeRefused) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Merge: %v; want ErrMergeRefused saying %q", err, c.says)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused merge created %s", out)
			}
		})
	}
}

// A merge never overwrites: not an earlier merged report, not a stray file.
func TestMergeRefusesAnOutputThatIsNotEmpty(t *testing.T) {
	root := t.TempDir()
	dirs := writeShards(t, root, 2, defaultSpec)
	out := filepath.Join(root, "merged")
	if _, err := Merge(out, dirs); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)
	if _, err := Merge(out, dirs); !errors.Is(err, ErrMergeRefused) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("merging again into %s: %v, want a refusal", out, err)
	}
	if after := snapshot(t, out); after != before {
		t.Error("the refused merge changed the earlier merged report")
	}
	// A shard's own directory as the output.
	if _, err := Merge(dirs[0], dirs); !errors.Is(err, ErrMergeRefused) {
		t.Errorf("merging into a shard's directory: %v, want a refusal", err)
	}
	// An empty directory is fine, and so is one that holds only the
	// caller's lock file, which the merge leaves alone.
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(empty, ".userbatch.lock")
	if err := os.WriteFile(lock, []byte("pid 42"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(empty, dirs); err != nil {
		t.Errorf("merging into a directory holding only a lock file: %v", err)
	}
	if raw, err := os.ReadFile(lock); err != nil || string(raw) != "pid 42" {
		t.Errorf("the lock file is now %q, %v", raw, err)
	}
}

func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range list(t, dir) {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %x\n", name, raw)
	}
	return b.String()
}

// Shards whose undo.csv is in input order (an older userbatch) cannot be
// merged into a reverse-order undo.csv.
func TestMergeRefusesUndoInInputOrder(t *testing.T) {
	root := t.TempDir()
	dirs := writeShards(t, root, 2, defaultSpec)
	path := filepath.Join(dirs[1], UndoFile)
	recs := readCSV(t, path)
	var b strings.Builder
	b.WriteString(strings.Join(recs[0], ",") + "\n")
	for i := len(recs) - 1; i > 0; i-- {
		b.WriteString(strings.Join(recs[i], ",") + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Merge(filepath.Join(root, "merged"), dirs)
	if !errors.Is(err, ErrMergeRefused) || !strings.Contains(err.Error(), "reverse input order") {
		t.Errorf("Merge: %v, want a refusal naming the order", err)
	}
}
