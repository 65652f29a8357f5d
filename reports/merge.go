package reports

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// Merge joins the report directories of the shards of one file into out:
// report.csv, failed.csv and undo.csv in input order, and summary.json with
// the counts added up. It streams: each shard's files are read once, side by
// side. Latency percentiles cannot be merged exactly; the merged summary
// takes, for each, the highest of the shards'.
func Merge(out string, dirs []string) (*Summary, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no report directories to merge")
	}
	shards := make([]*shard, 0, len(dirs))
	defer func() {
		for _, s := range shards {
			s.close()
		}
	}()
	for _, d := range dirs {
		s, err := openShard(d)
		if err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	if err := sameHeaders(shards); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	w, err := newMergeWriter(out, shards[0])
	if err != nil {
		return nil, err
	}
	err = mergeRows(w, shards)
	sum, serr := mergeSummaries(shards)
	if err == nil {
		err = serr
	}
	if err != nil {
		w.discard()
		return nil, err
	}
	return sum, w.commit(out, sum)
}

// shard is one report directory being read.
type shard struct {
	dir                    string
	report, failed, undo   *csvReader
	reportHead, failedHead []string
	undoHead               []string
	undoNote               int // index of undo_note in undo.csv
	line, outcome          int // indexes in report.csv
	next                   []string
	nextLine               int
	nextUndo               []string
	nextUndoLine           int
}

type csvReader struct {
	f *os.File
	r *csv.Reader
}

func openCSV(dir, name string) (*csvReader, []string, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, nil, err
	}
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %v", filepath.Join(dir, name), err)
	}
	return &csvReader{f: f, r: r}, slices.Clone(head), nil
}

func openShard(dir string) (*shard, error) {
	s := &shard{dir: dir}
	var err error
	if s.report, s.reportHead, err = openCSV(dir, ReportFile); err != nil {
		return nil, err
	}
	if s.failed, s.failedHead, err = openCSV(dir, FailedFile); err != nil {
		s.close()
		return nil, err
	}
	if s.undo, s.undoHead, err = openCSV(dir, UndoFile); err != nil {
		s.close()
		return nil, err
	}
	s.line, s.outcome = slices.Index(s.reportHead, "line"), slices.Index(s.reportHead, "outcome")
	s.undoNote = slices.IndexFunc(s.undoHead, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), ColUndoNote) })
	if s.line < 0 || s.outcome < 0 || s.undoNote < 0 {
		s.close()
		return nil, fmt.Errorf("%s: not a userbatch report directory (report.csv or undo.csv lacks its columns)", dir)
	}
	if err := s.advance(); err != nil {
		s.close()
		return nil, err
	}
	return s, s.advanceUndo()
}

func (s *shard) close() {
	for _, r := range []*csvReader{s.report, s.failed, s.undo} {
		if r != nil {
			r.f.Close()
		}
	}
}

// advance reads the shard's next report.csv row; nextLine is 0 at the end.
func (s *shard) advance() error {
	rec, err := s.report.r.Read()
	if errors.Is(err, io.EOF) {
		s.next, s.nextLine = nil, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(s.dir, ReportFile), err)
	}
	line, err := strconv.Atoi(field(rec, s.line))
	if err != nil || line <= s.nextLine {
		return fmt.Errorf("%s: line %q is not a line number after %d: the report is not in input order", filepath.Join(s.dir, ReportFile), field(rec, s.line), s.nextLine)
	}
	s.next, s.nextLine = slices.Clone(rec), line
	return nil
}

func (s *shard) advanceUndo() error {
	rec, err := s.undo.r.Read()
	if errors.Is(err, io.EOF) {
		s.nextUndo, s.nextUndoLine = nil, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(s.dir, UndoFile), err)
	}
	s.nextUndo, s.nextUndoLine = slices.Clone(rec), UndoLine(field(rec, s.undoNote))
	if s.nextUndoLine == 0 {
		return fmt.Errorf("%s: an undo row without \"reverses line N\" in undo_note", filepath.Join(s.dir, UndoFile))
	}
	return nil
}

func sameHeaders(shards []*shard) error {
	first := shards[0]
	for _, s := range shards[1:] {
		if !slices.Equal(s.reportHead, first.reportHead) || !slices.Equal(s.failedHead, first.failedHead) || !slices.Equal(s.undoHead, first.undoHead) {
			return fmt.Errorf("%s and %s have different columns: they are not shards of one file", first.dir, s.dir)
		}
	}
	return nil
}

// mergeRows writes every shard's rows in input order.
func mergeRows(w *mergeWriter, shards []*shard) error {
	for {
		s := lowest(shards, func(s *shard) int { return s.nextLine })
		if s == nil {
			break
		}
		if err := w.report.write(s.next); err != nil {
			return err
		}
		if err := copyFailed(w, s); err != nil {
			return err
		}
		if err := s.advance(); err != nil {
			return err
		}
	}
	for {
		s := lowest(shards, func(s *shard) int { return s.nextUndoLine })
		if s == nil {
			return nil
		}
		if err := w.undo.write(s.nextUndo); err != nil {
			return err
		}
		if err := s.advanceUndo(); err != nil {
			return err
		}
	}
}

// copyFailed copies the shard's failed.csv row that belongs to its current
// report row: failed.csv holds one row, in order, for each failed, unknown
// or skipped report row.
func copyFailed(w *mergeWriter, s *shard) error {
	switch batch.Outcome(field(s.next, s.outcome)) {
	case batch.Failed, batch.Unknown, batch.Skipped:
	default:
		return nil
	}
	rec, err := s.failed.r.Read()
	if err != nil {
		return fmt.Errorf("%s: fewer rows than report.csv's failed, unknown and skipped rows: %v", filepath.Join(s.dir, FailedFile), err)
	}
	return w.failed.write(rec)
}

// lowest returns the shard whose key is smallest and not 0 (0: done).
func lowest(shards []*shard, key func(*shard) int) *shard {
	var best *shard
	for _, s := range shards {
		if k := key(s); k > 0 && (best == nil || k < key(best)) {
			best = s
		}
	}
	return best
}

// mergeWriter writes the merged files; the cells are already neutralised.
type mergeWriter struct {
	report, failed, undo *csvFile
}

func newMergeWriter(out string, first *shard) (*mergeWriter, error) {
	w := &mergeWriter{}
	var err error
	for _, f := range []struct {
		dst  **csvFile
		name string
		head []string
	}{{&w.report, ReportFile, first.reportHead}, {&w.failed, FailedFile, first.failedHead}, {&w.undo, UndoFile, first.undoHead}} {
		if *f.dst, err = createCSV(out, f.name); err != nil {
			w.discard()
			return nil, err
		}
		if err = (*f.dst).write(f.head); err != nil {
			w.discard()
			return nil, err
		}
	}
	return w, nil
}

func (w *mergeWriter) files() []*csvFile { return []*csvFile{w.report, w.failed, w.undo} }

func (w *mergeWriter) discard() {
	for _, f := range w.files() {
		if f != nil {
			f.discard()
		}
	}
}

// commit finishes the CSV files and writes summary.json, then moves them all
// into place, summary.json last.
func (w *mergeWriter) commit(out string, sum *Summary) error {
	for _, f := range w.files() {
		if err := f.finish(); err != nil {
			w.discard()
			return err
		}
	}
	p, err := writeSummary(out, sum)
	if err != nil {
		w.discard()
		return err
	}
	for _, f := range w.files() {
		if err := f.commit(); err != nil {
			return err
		}
	}
	return p.commit()
}

// mergeSummaries adds up the shards' summary.json files.
func mergeSummaries(shards []*shard) (*Summary, error) {
	sum := &Summary{Outcomes: Counts{}, ByTarget: map[string]Counts{}, ByAction: map[string]Counts{}}
	for _, o := range batch.Outcomes {
		sum.Outcomes[o] = 0
	}
	for _, s := range shards {
		raw, err := os.ReadFile(filepath.Join(s.dir, SummaryFile))
		if err != nil {
			return nil, err
		}
		var part Summary
		if err := json.Unmarshal(raw, &part); err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(s.dir, SummaryFile), err)
		}
		sum.add(&part)
	}
	sum.DurationS = sum.FinishedAt.Sub(sum.StartedAt).Seconds()
	if sum.DurationS > 0 {
		sum.OpsPerS = float64(sum.Sent) / sum.DurationS
	}
	sum.ExitCode = ExitCode(sum.Outcomes, sum.Stopped)
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
	s.Retries += p.Retries
	s.Attempts += p.Attempts
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
