// Package reports writes a run's report directory: report.csv, failed.csv,
// undo.csv and summary.json (SPEC.md, "Report directory").
//
// Everything streams. A Writer keeps counts per outcome, target and action and
// a fixed-size latency histogram, never a per-row slice or map, so a run of a
// million rows writes its report in flat memory.
//
// Files are written under temporary names (".report.csv.partial") and renamed
// into place by Close, summary.json last: a crash never leaves a half report
// under a final name, and a summary.json in the directory means the report
// beside it is complete.
package reports

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// The final names of the report files.
const (
	ReportFile  = "report.csv"
	FailedFile  = "failed.csv"
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
	report *csvFile
	failed *csvFile
	undo   *undoFile
	rec    []string // report.csv line being built, reused for every row
	tally  tally
	err    error // the first error met; every later Write returns it too
	closed bool
}

// Create opens the report files in dir, which must exist, and writes their
// headers. h is the input's header. The files stay under temporary names
// until Close. An error names the file that could not be created; nothing is
// left behind then.
func Create(dir string, h batch.Header) (*Writer, error) {
	w := &Writer{dir: dir, h: h, tally: newTally()}
	var err error
	if w.report, err = createCSV(dir, ReportFile); err != nil {
		return nil, err
	}
	if w.failed, err = createCSV(dir, FailedFile); err != nil {
		w.report.discard()
		return nil, err
	}
	undo, err := createCSV(dir, UndoFile)
	if err != nil {
		w.report.discard()
		w.failed.discard()
		return nil, err
	}
	w.undo = newUndoFile(undo, h)
	w.rec = make([]string, len(reportColumns)+len(h.Passthrough))
	w.keep(w.report.write(w.reportHeader()))
	w.keep(w.failed.write(h.Names))
	// The headers sit in the buffers: an error writing them surfaces on a
	// later Write or on Close.
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

// Write adds row's line to report.csv, and to failed.csv or undo.csv where it
// belongs: failed.csv takes rows that ended failed, unknown or skipped;
// undo.csv takes the reversing operations of every applied row. Rows must come
// in input order, each exactly once. res is counted for the summary even when
// writing fails. The error is the first one any write met, so once the disk
// is full every later call reports it; the caller may keep going to Close.
func (w *Writer) Write(row batch.Row, res batch.Result) error {
	if w.closed {
		return errors.New("reports: Write after Close")
	}
	w.tally.add(res)
	w.keep(w.report.write(w.reportLine(row, res)))
	switch res.Outcome {
	case batch.Failed, batch.Unknown, batch.Skipped:
		w.keep(w.failed.write(row.Record))
	case batch.Applied:
		w.keep(w.undo.write(row))
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
		finishedAt(res.FinishedAt),
	)
	for _, i := range w.h.Passthrough {
		rec = append(rec, field(row.Record, i))
	}
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

// field returns rec[i], or "" for a record shorter than the header (the
// parser gives a row with the wrong field count an empty record).
func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

// Close flushes and syncs the report files, writes summary.json, and renames
// every file into place, summary.json last. It returns the summary, with
// ExitCode set from the outcomes and run.Stopped, and the first error met by
// any Write or by Close itself. The summary is returned even with an error,
// so the caller can still print it; after an error nothing is renamed, and
// the partial files stay in the directory for inspection.
func (w *Writer) Close(run Run) (*Summary, error) {
	if w.closed {
		return nil, errors.New("reports: Close called twice")
	}
	w.closed = true
	files := []*csvFile{w.report, w.failed, w.undo.csv}
	for _, f := range files {
		w.keep(f.finish())
	}
	s := w.tally.summary(run)
	summary, err := writeSummary(w.dir, s)
	w.keep(err)
	if w.err != nil {
		return s, w.err
	}
	for _, f := range files {
		if err := f.commit(); err != nil {
			w.keep(err)
			return s, w.err
		}
	}
	w.keep(summary.commit())
	return s, w.err
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
