package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// ErrMergeRefused is wrapped by every error of Merge that comes from what it
// was given rather than from the disk: a shard missing or given twice,
// reports of different inputs, configs or modes, a report of an unsharded
// run, a directory that is not a complete report, an output directory that
// is not empty. Nothing is written then. Match it with errors.Is.
var ErrMergeRefused = errors.New("report merge refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMergeRefused, fmt.Sprintf(format, args...))
}

// Merge joins the report directories of all the shards of one file into out,
// which must be new or empty: report.csv, failed.csv and check.csv in input
// order, undo.csv in reverse input order, summary.json with the counts added
// up, and report.html. Each directory's journal header must say it is one
// shard of the same split of the same input, run with the same config and
// mode, and every shard must be there exactly once; out must not exist, or
// hold nothing but hidden files (a lock file); otherwise Merge refuses
// with an error wrapping ErrMergeRefused and writes nothing. It streams:
// each shard's files are read once, side by side. Latency percentiles
// cannot be merged exactly; the merged summary takes, for each, the highest
// of the shards'. The merged CSV files start with a UTF-8 byte order mark
// when a shard's report.csv does (it was written with --excel).
func Merge(out string, dirs []string) (*Summary, error) {
	if len(dirs) == 0 {
		return nil, refuse("no report directories to merge")
	}
	if err := checkOut(out); err != nil {
		return nil, err
	}
	if err := checkShards(dirs); err != nil {
		return nil, err
	}
	shards := make([]*shard, 0, len(dirs))
	defer func() {
		for _, s := range shards {
			s.close()
		}
	}()
	excel := false
	for _, d := range dirs {
		s, err := openShard(d)
		if err != nil {
			return nil, err
		}
		shards = append(shards, s)
		excel = excel || s.bom
	}
	if err := sameHeaders(shards); err != nil {
		return nil, err
	}
	sum, err := mergeSummaries(shards)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	w, err := newMergeWriter(out, shards[0], excel)
	if err != nil {
		return nil, err
	}
	if err := mergeRows(w, shards); err != nil {
		w.discard()
		return nil, err
	}
	sum.FileRows = FileRows{Failed: w.failed.rows, Check: w.check.rows, Undo: w.undo.rows}
	return sum, w.commit(out, sum)
}

// checkOut refuses an output directory that exists and holds anything, so
// that no report, undo.csv above all, is ever overwritten. Hidden files are
// allowed: the caller's lock file (.userbatch.lock), an aborted merge's
// partial files. A merge writes no hidden file but under a name it has just
// made unique.
func checkOut(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return refuse("output directory %s: %v", out, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return refuse("output directory %s is not empty (it holds %s): give a new or empty directory, a merge never overwrites a report", out, e.Name())
		}
	}
	return nil
}

// checkShards reads each directory's journal header and refuses anything
// but every shard of one split of one input, each once.
func checkShards(dirs []string) error {
	var first batch.JournalHeader
	seen := map[int]string{}
	count := 0
	for i, d := range dirs {
		h, err := journalHeader(d)
		if err != nil {
			return err
		}
		if h.Shard == "" {
			return refuse("%s is the report of an unsharded run: only the reports of every shard of one file (run --shard K/N) can be merged", d)
		}
		sh, err := batch.ParseShard(h.Shard)
		if err != nil {
			return refuse("%s: the journal names shard %q: %v", d, h.Shard, err)
		}
		if i == 0 {
			first, count = h, sh.Count
		}
		if err := sameRun(dirs[0], first, d, h); err != nil {
			return err
		}
		if sh.Count != count {
			return refuse("%s is shard %s but %s is shard %s: not the same split", dirs[0], first.Shard, d, h.Shard)
		}
		if prev, dup := seen[sh.Index]; dup {
			return refuse("shard %s is given twice (%s and %s)", h.Shard, prev, d)
		}
		seen[sh.Index] = d
	}
	var missing []string
	for k := range count {
		if _, ok := seen[k]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", k, count))
		}
	}
	if len(missing) > 0 {
		return refuse("shard %s missing: give the report directories of all %d shards", strings.Join(missing, ", "), count)
	}
	return nil
}

// sameRun refuses a shard of another input, config or mode than the first.
func sameRun(firstDir string, first batch.JournalHeader, dir string, h batch.JournalHeader) error {
	switch {
	case h.InputSHA256 != first.InputSHA256:
		return refuse("%s and %s are reports of different input files (SHA-256 %.12s… and %.12s…)",
			firstDir, dir, first.InputSHA256, h.InputSHA256)
	case h.ConfigSHA256 != first.ConfigSHA256 || !slices.Equal(h.Targets, first.Targets):
		return refuse("%s and %s were run with different configs", firstDir, dir)
	case h.DryRun != first.DryRun:
		return refuse("%s and %s: one is a dry run and the other is not", firstDir, dir)
	}
	return nil
}

// journalHeader reads the first record of dir's journal, which every run
// writes before it sends anything.
func journalHeader(dir string) (batch.JournalHeader, error) {
	var h batch.JournalHeader
	path := filepath.Join(dir, batch.JournalName)
	f, err := os.Open(path)
	if err != nil {
		return h, refuse("%s has no readable %s (%v): not the report directory of a run", dir, batch.JournalName, err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 1<<20)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return h, fmt.Errorf("%s: %v", path, err)
	}
	if json.Unmarshal(line, &h) != nil || h.Type != "header" || h.Version == 0 {
		return batch.JournalHeader{}, refuse("%s: %v", path, batch.ErrNoHeader)
	}
	return h, nil
}

// shard is one report directory being read.
type shard struct {
	dir                         string
	bom                         bool // report.csv starts with a byte order mark
	comma                       rune // report.csv's delimiter
	report, failed, check, undo *CSVReader
	reportHead, failedHead      []string
	checkHead, undoHead         []string
	col                         reportCols
	undoNote, checkReason       int // indexes in undo.csv and check.csv
	next                        []string
	nextLine                    int
	nextUndo                    []string
	nextUndoLine                int
	nextCheckLine               int // line of check.csv's next row; 0 at the end
	nextCheck                   []string
}

// reportCols are the indexes in report.csv of the columns a merge reads.
type reportCols struct {
	line, target, user, outcome, detail, attempts, code, message, finished int
}

// openCSV opens a report file and reads its header. The delimiter is told
// from the header line: --excel writes the input's.
func openCSV(dir, name string) (*CSVReader, []string, error) {
	path := filepath.Join(dir, name)
	r, err := OpenCSV(path)
	if err != nil {
		return nil, nil, refuse("%s: %v: not a complete report (did the run finish writing it?)", dir, err)
	}
	head, err := r.Read()
	if err != nil {
		r.Close()
		return nil, nil, refuse("%s: %v", path, err)
	}
	return r, slices.Clone(head), nil
}

func openShard(dir string) (*shard, error) {
	s := &shard{dir: dir}
	var err error
	if s.report, s.reportHead, err = openCSV(dir, ReportFile); err != nil {
		return nil, err
	}
	s.comma, s.bom = s.report.Comma, s.report.BOM
	for _, f := range []struct {
		r    **CSVReader
		head *[]string
		name string
	}{{&s.failed, &s.failedHead, FailedFile}, {&s.check, &s.checkHead, CheckFile}, {&s.undo, &s.undoHead, UndoFile}} {
		if *f.r, *f.head, err = openCSV(dir, f.name); err != nil {
			s.close()
			return nil, err
		}
	}
	named := func(head []string, name string) int {
		return slices.IndexFunc(head, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), name) })
	}
	at := func(name string) int { return slices.Index(s.reportHead, name) }
	s.col = reportCols{line: at("line"), target: at("target"), user: at("user"), outcome: at("outcome"),
		detail: at("detail"), attempts: at("attempts"), code: at("error_code"), message: at("message"),
		finished: at("finished_at")}
	s.undoNote = named(s.undoHead, ColUndoNote)
	s.checkReason = len(s.checkHead) - 1
	if s.col.line < 0 || s.col.outcome < 0 || s.undoNote < 0 || s.checkReason < 0 || s.checkHead[s.checkReason] != ColCheckReason {
		s.close()
		return nil, refuse("%s: not a userbatch report directory (report.csv, check.csv or undo.csv lacks its columns)", dir)
	}
	for _, step := range []func() error{s.advance, s.advanceUndo, s.advanceCheck} {
		if err := step(); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *shard) close() {
	for _, r := range []*CSVReader{s.report, s.failed, s.check, s.undo} {
		if r != nil {
			r.Close()
		}
	}
}

// advance reads the shard's next report.csv row; nextLine is 0 at the end.
func (s *shard) advance() error {
	rec, err := s.report.Read()
	if errors.Is(err, io.EOF) {
		s.next, s.nextLine = nil, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(s.dir, ReportFile), err)
	}
	line, err := strconv.Atoi(field(rec, s.col.line))
	if err != nil || line <= s.nextLine {
		return refuse("%s: line %q is not a line number after %d: the report is not in input order", filepath.Join(s.dir, ReportFile), field(rec, s.col.line), s.nextLine)
	}
	s.next, s.nextLine = slices.Clone(rec), line
	return nil
}

// advanceUndo reads the next undo.csv row, which must not reverse a later
// line than the row before it: undo.csv is in reverse input order.
func (s *shard) advanceUndo() error {
	rec, err := s.undo.Read()
	if errors.Is(err, io.EOF) {
		s.nextUndo, s.nextUndoLine = nil, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(s.dir, UndoFile), err)
	}
	line := UndoLine(field(rec, s.undoNote))
	if line == 0 {
		return refuse("%s: an undo row without \"reverses line N\" in undo_note", filepath.Join(s.dir, UndoFile))
	}
	if s.nextUndo != nil && line > s.nextUndoLine {
		return refuse("%s: line %d comes after line %d: undo.csv is not in reverse input order (written by an older userbatch?)",
			filepath.Join(s.dir, UndoFile), line, s.nextUndoLine)
	}
	s.nextUndo, s.nextUndoLine = slices.Clone(rec), line
	return nil
}

// advanceCheck reads the next check.csv row and the line its reason names.
func (s *shard) advanceCheck() error {
	rec, err := s.check.Read()
	if errors.Is(err, io.EOF) {
		s.nextCheck, s.nextCheckLine = nil, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(s.dir, CheckFile), err)
	}
	line := CheckLine(field(rec, s.checkReason))
	if line <= s.nextCheckLine {
		return refuse("%s: a row whose reason does not name a line after %d", filepath.Join(s.dir, CheckFile), s.nextCheckLine)
	}
	s.nextCheck, s.nextCheckLine = slices.Clone(rec), line
	return nil
}

func sameHeaders(shards []*shard) error {
	first := shards[0]
	for _, s := range shards[1:] {
		if !slices.Equal(s.reportHead, first.reportHead) || !slices.Equal(s.failedHead, first.failedHead) ||
			!slices.Equal(s.checkHead, first.checkHead) || !slices.Equal(s.undoHead, first.undoHead) {
			return refuse("%s and %s have different columns: they are not shards of one file", first.dir, s.dir)
		}
	}
	return nil
}

// mergeRows writes every shard's report, failed and check rows in input
// order, then the undo rows in reverse input order.
func mergeRows(w *mergeWriter, shards []*shard) error {
	for {
		s := pick(shards, func(s *shard) int { return s.nextLine }, func(a, b int) bool { return a < b })
		if s == nil {
			break
		}
		if err := w.report.writeRaw(s.next); err != nil {
			return err
		}
		w.page.addReportRow(s.col, s.next)
		if err := copyFailedOrCheck(w, s); err != nil {
			return err
		}
		if err := s.advance(); err != nil {
			return err
		}
	}
	for _, s := range shards {
		if s.nextCheck != nil {
			return refuse("%s: a row for line %d, which report.csv does not list as unknown or already", filepath.Join(s.dir, CheckFile), s.nextCheckLine)
		}
		if _, err := s.failed.Read(); !errors.Is(err, io.EOF) {
			return refuse("%s: more rows than report.csv's failed, unknown and skipped rows", filepath.Join(s.dir, FailedFile))
		}
	}
	for {
		s := pick(shards, func(s *shard) int { return s.nextUndoLine }, func(a, b int) bool { return a > b })
		if s == nil {
			return nil
		}
		if err := w.undo.writeRaw(s.nextUndo); err != nil {
			return err
		}
		if err := s.advanceUndo(); err != nil {
			return err
		}
	}
}

// copyFailedOrCheck copies the shard's failed.csv or check.csv row that
// belongs to its current report row. failed.csv holds one row, in order, for
// each failed, skipped or unknown report row that check.csv does not name.
func copyFailedOrCheck(w *mergeWriter, s *shard) error {
	outcome := batch.Outcome(field(s.next, s.col.outcome))
	// check.csv takes unknown rows, and already rows whose change may not be
	// this run's (batch.AlreadyAfterInterruption).
	if (outcome == batch.Unknown || outcome == batch.Already) && s.nextCheckLine == s.nextLine {
		if err := w.check.writeRaw(s.nextCheck); err != nil {
			return err
		}
		w.page.addCheck(s.nextLine, Unneutralize(field(s.next, s.col.target)), Unneutralize(field(s.next, s.col.user)),
			Unneutralize(field(s.nextCheck, len(s.nextCheck)-1)))
		return s.advanceCheck()
	}
	switch outcome {
	case batch.Unknown, batch.Failed, batch.Skipped:
	default:
		return nil
	}
	rec, err := s.failed.Read()
	if err != nil {
		return refuse("%s: fewer rows than report.csv's failed, unknown and skipped rows: %v", filepath.Join(s.dir, FailedFile), err)
	}
	return w.failed.writeRaw(rec)
}

// pick returns the shard whose key is not 0 (0: done) and comes first by
// before.
func pick(shards []*shard, key func(*shard) int, before func(a, b int) bool) *shard {
	var best *shard
	for _, s := range shards {
		if k := key(s); k > 0 && (best == nil || before(k, key(best))) {
			best = s
		}
	}
	return best
}

// mergeWriter writes the merged files; the cells are already neutralised.
type mergeWriter struct {
	report, failed, check, undo *csvFile
	page                        *page
}

func newMergeWriter(out string, first *shard, excel bool) (*mergeWriter, error) {
	w := &mergeWriter{page: newPage()}
	for _, f := range []struct {
		dst  **csvFile
		name string
		head []string
	}{{&w.report, ReportFile, first.reportHead}, {&w.failed, FailedFile, first.failedHead},
		{&w.check, CheckFile, first.checkHead}, {&w.undo, UndoFile, first.undoHead}} {
		c, err := createCSV(out, f.name, excel, first.comma)
		if err != nil {
			w.discard()
			return nil, err
		}
		*f.dst = c
		if err := c.writeRaw(f.head); err != nil {
			w.discard()
			return nil, err
		}
		c.rows = 0 // the header is not a row
	}
	return w, nil
}

func (w *mergeWriter) files() []*csvFile { return []*csvFile{w.report, w.failed, w.check, w.undo} }

func (w *mergeWriter) discard() {
	for _, f := range w.files() {
		if f != nil {
			f.Discard()
		}
	}
}

// commit finishes the CSV files, writes report.html and summary.json, then
// moves them all into place, summary.json last. After an error the files not
// yet in place are removed.
func (w *mergeWriter) commit(out string, sum *Summary) error {
	for _, f := range w.files() {
		if err := f.finish(); err != nil {
			w.discard()
			return err
		}
	}
	if err := commitAll(out, partials(w.files()), w.page, sum); err != nil {
		w.discard()
		return err
	}
	return nil
}

// addReportRow counts a merged report.csv row for the page.
func (p *page) addReportRow(c reportCols, rec []string) {
	line, _ := strconv.Atoi(field(rec, c.line))
	attempts, _ := strconv.Atoi(field(rec, c.attempts))
	finished, _ := time.Parse(time.RFC3339Nano, field(rec, c.finished))
	cell := func(i int) string { return Unneutralize(field(rec, i)) }
	p.add(line, cell(c.target), cell(c.user), batch.Outcome(cell(c.outcome)), cell(c.code), cell(c.detail),
		cell(c.message), attempts > 0, finished)
}

// mergeSummaries adds up the shards' summary.json files.
func mergeSummaries(shards []*shard) (*Summary, error) {
	sum := &Summary{Outcomes: Counts{}, ByTarget: map[string]Counts{}, ByAction: map[string]Counts{}}
	for _, o := range batch.Outcomes {
		sum.Outcomes[o] = 0
	}
	worst := ExitOK
	for _, s := range shards {
		path := filepath.Join(s.dir, SummaryFile)
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, refuse("%s: %v: not a complete report (did the run finish writing it?)", s.dir, err)
		}
		var part Summary
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&part); err != nil {
			return nil, refuse("%s: %v", path, err)
		}
		sum.add(&part)
		worst = max(worst, part.ExitCode)
	}
	sum.setRate()
	sum.ExitCode = max(ExitFor(sum.Outcomes, sum.Stopped), worst)
	return sum, nil
}

func (s *Summary) add(p *Summary) {
	s.Rows += p.Rows
	addCounts(s.Outcomes, p.Outcomes)
	for k, c := range p.ByTarget {
		addCounts(entry(s.ByTarget, k), c)
	}
	for k, c := range p.ByAction {
		addCounts(entry(s.ByAction, k), c)
	}
	if s.StartedAt.IsZero() || p.StartedAt.Before(s.StartedAt) {
		s.StartedAt = p.StartedAt
	}
	if p.FinishedAt.After(s.FinishedAt) {
		s.FinishedAt = p.FinishedAt
	}
	s.Sent += p.Sent
	s.Reads += p.Reads
	s.Writes += p.Writes
	if p.Plan != nil {
		if s.Plan == nil {
			s.Plan = &PlanCounts{}
		}
		s.Plan.add(p.Plan)
	}
	s.Retries += p.Retries
	s.Attempts += p.Attempts
	s.Processes += max(p.Processes, 1)
	s.Stopped = s.Stopped || p.Stopped
	s.DryRun = s.DryRun || p.DryRun
	s.LatencyMS = Latency{P50: max(s.LatencyMS.P50, p.LatencyMS.P50), P95: max(s.LatencyMS.P95, p.LatencyMS.P95),
		P99: max(s.LatencyMS.P99, p.LatencyMS.P99), Max: max(s.LatencyMS.Max, p.LatencyMS.Max)}
}

func addCounts(dst, src Counts) {
	for o, n := range src {
		dst[o] += n
	}
}
