// Package reports writes a run's report directory: report.csv, failed.csv,
// check.csv, undo.csv, report.html and summary.json (README, "The report
// directory").
//
// Everything streams. A Writer keeps counts per outcome, target and action, a
// fixed-size latency histogram, a bounded table of error messages and a
// bounded timeline, never a per-row slice or map, so a run of a million rows
// writes its report in flat memory. undo.csv, which lists rows last first,
// waits in a spool on disk.
//
// Files are written 0600 under temporary names unique to the writer
// (".report.csv.123456.partial") and renamed into place by Close,
// summary.json last: a crash never leaves a half report under a final name,
// and a summary.json in the directory means the report beside it is
// complete.
package reports

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// The final names of the report files.
const (
	ReportFile  = "report.csv"
	FailedFile  = "failed.csv"
	CheckFile   = "check.csv"
	UndoFile    = "undo.csv"
	SummaryFile = "summary.json"
)

// reportColumns are report.csv's own columns; the input's passthrough
// columns follow them.
var reportColumns = []string{
	"line", "target", "user", "action", "outcome", "detail", "http_status",
	"attempts", "error_code", "message", "duration_ms", "finished_at",
}

// finishedAtLayout is RFC 3339 with milliseconds, always written in UTC.
const finishedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// Writer writes one run's report. It is not safe for concurrent use: one
// goroutine owns the report (the pipeline's collector).
type Writer struct {
	dir    string
	h      batch.Header
	opt    Options
	report *csvFile
	failed *csvFile
	check  *csvFile
	undo   *undoFile
	rec    []string // report.csv line being built, reused
	chk    []string // check.csv line being built, reused
	tally  tally
	page   *page
	at     stamp // finished_at of the last row, formatted
	err    error // the first error met; every later Write returns it too
	closed bool
}

// CreateWith opens the report files in dir, which must exist, and writes
// their headers. h is the input's header. The files stay under temporary
// names until Close. An error names the file that could not be created;
// nothing is left behind then.
func CreateWith(dir string, h batch.Header, opt Options) (*Writer, error) {
	w := &Writer{dir: dir, h: h, opt: opt, tally: newTally(), page: newPage()}
	var files []*csvFile
	fail := func(err error) (*Writer, error) {
		for _, f := range files {
			f.Discard()
		}
		return nil, err
	}
	for _, f := range []struct {
		dst  **csvFile
		name string
	}{{&w.report, ReportFile}, {&w.failed, FailedFile}, {&w.check, CheckFile}} {
		c, err := createCSV(dir, f.name, opt.Excel, h.Delimiter)
		if err != nil {
			return fail(err)
		}
		*f.dst = c
		files = append(files, c)
	}
	undo, err := createCSV(dir, UndoFile, opt.Excel, h.Delimiter)
	if err != nil {
		return fail(err)
	}
	files = append(files, undo)
	sp, err := newSpool(dir)
	if err != nil {
		return fail(err)
	}
	w.undo = newUndoFile(undo, sp, h, opt)
	w.rec = make([]string, len(reportColumns)+len(h.Passthrough))
	// The headers sit in the buffers: an error writing them surfaces on a
	// later Write or on Close.
	w.keep(w.report.writeHeader(w.reportHeader()))
	w.keep(w.failed.writeHeader(h.Names))
	w.keep(w.check.writeHeader(append(append([]string(nil), h.Names...), ColCheckReason)))
	w.keep(w.undo.writeHeader())
	return w, nil
}

func (w *Writer) reportHeader() []string {
	head := append([]string(nil), reportColumns...)
	for _, i := range w.h.Passthrough {
		head = append(head, w.h.Names[i])
	}
	return head
}

// Write adds row's line to report.csv, and to the file where it belongs:
// failed.csv takes the rows that are safe to run again as they are (failed,
// skipped, and unknown rows whose action Options.Repeatable allows);
// check.csv takes the other unknown rows, and the already rows whose change
// may or may not be this run's, with the reason; undo.csv takes
// the reversing operations of every applied row. Rows must come in input
// order, each exactly once. res is counted for the summary even when writing
// fails. The error is the first one any write met, so once the disk is full
// every later call reports it; the caller may keep going to Close.
func (w *Writer) Write(row batch.Row, res batch.Result) error {
	if w.closed {
		return errors.New("reports: Write after Close")
	}
	w.tally.add(res)
	w.page.addResult(row.Line, res)
	w.keep(w.report.write(w.reportLine(row, res)))
	switch res.Outcome {
	case batch.Failed, batch.Skipped:
		w.keep(w.failed.write(row.Record))
	case batch.Unknown:
		if w.opt.repeatable(res.Target, res.Action) {
			w.keep(w.failed.write(row.Record))
		} else {
			w.keep(w.check.write(w.checkLine(row, res)))
			w.page.addCheck(row.Line, res.Target, res.User, w.chk[len(w.chk)-1])
		}
	case batch.Applied:
		w.keep(w.undo.write(row))
	case batch.Already:
		if res.Detail == batch.AlreadyAfterInterruption {
			w.keep(w.check.write(w.checkLine(row, res)))
			w.page.addCheck(row.Line, res.Target, res.User, w.chk[len(w.chk)-1])
		}
	}
	return w.err
}

func (w *Writer) reportLine(row batch.Row, res batch.Result) []string {
	rec := w.rec[:0]
	rec = append(rec,
		strconv.Itoa(row.Line),
		res.Target,
		res.User,
		string(res.Action),
		string(res.Outcome),
		res.Detail,
		emptyIfZero(res.HTTPStatus),
		strconv.Itoa(res.Attempts),
		res.ErrorCode,
		res.Message,
		durationMS(res),
		w.at.format(res.FinishedAt),
	)
	for _, i := range w.h.Passthrough {
		rec = append(rec, field(row.Record, i))
	}
	return rec
}

// checkLine is the input row's cells, padded to the header, then the reason.
func (w *Writer) checkLine(row batch.Row, res batch.Result) []string {
	rec := w.chk[:0]
	for i := range w.h.Names {
		rec = append(rec, field(row.Record, i))
	}
	rec = append(rec, CheckReason(row.Line, res))
	w.chk = rec
	return rec
}

func emptyIfZero(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// durationMS is empty for a row that was never sent, so that 0 means "under
// half a millisecond", not "not measured".
func durationMS(res batch.Result) string {
	if res.Attempts == 0 && res.Duration == 0 {
		return ""
	}
	return strconv.FormatInt(res.Duration.Round(time.Millisecond).Milliseconds(), 10)
}

func finishedAt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(finishedAtLayout)
}

// stamp formats finished_at, remembering the last one: rows that finished
// in the same millisecond, as many do, share one string.
type stamp struct {
	ms  int64
	out string
}

func (s *stamp) format(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	// The layout shows milliseconds, truncated: the same UnixMilli is the
	// same text.
	if ms := t.UnixMilli(); ms != s.ms || s.out == "" {
		s.ms, s.out = ms, finishedAt(t)
	}
	return s.out
}

// field returns rec[i], or "" for a record shorter than the header (the
// parser gives a row with the wrong field count an empty record).
func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

// Close writes undo.csv out of its spool, flushes and syncs the report
// files, writes report.html and summary.json, and renames every file into
// place, summary.json last. It returns the summary, with ExitCode set as Run
// says, and the first error met by any Write or by Close itself. The summary
// is returned even with an error, so the caller can still print it. After an
// error the files not yet in place are removed (the journal still holds
// every outcome, and --resume writes the report again), and summary.json is
// never in place.
func (w *Writer) Close(run Run) (*Summary, error) {
	if w.closed {
		return nil, errors.New("reports: Close called twice")
	}
	w.closed = true
	w.keep(w.undo.finish())
	files := []*csvFile{w.report, w.failed, w.check}
	for _, f := range files {
		w.keep(f.finish())
	}
	files = append(files, w.undo.csv)
	s := w.tally.summary(run)
	s.FileRows = FileRows{Failed: w.failed.rows, Check: w.check.rows, Undo: w.undo.csv.rows}
	if w.err == nil {
		w.err = commitAll(w.dir, partials(files), w.page, s)
	}
	if w.err != nil {
		for _, f := range files {
			f.Discard()
		}
	}
	return s, w.err
}

// commitAll writes report.html and summary.json beside files, then renames
// files, report.html and summary.json into place in that order. It stops
// at the first error, leaving the rest uncommitted.
func commitAll(dir string, files []*Partial, pg *page, s *Summary) error {
	html, err := writeWhole(dir, HTMLFile, func(out io.Writer) error { return pg.writeHTML(out, s) })
	if err != nil {
		return err
	}
	summary, err := writeSummary(dir, s)
	if err != nil {
		html.Discard()
		return err
	}
	for _, p := range append(files, html, summary) {
		if err := p.Commit(); err != nil {
			html.Discard()
			summary.Discard()
			return err
		}
	}
	return nil
}

func partials(files []*csvFile) []*Partial {
	out := make([]*Partial, len(files))
	for i, f := range files {
		out[i] = f.Partial
	}
	return out
}

// keep records err when it is the first one.
func (w *Writer) keep(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// errorf builds the errors of this package, which name the report file so the
// operator knows what could not be written.
func errorf(name string, err error) error {
	return fmt.Errorf("reports: cannot write %s: %w", name, err)
}
