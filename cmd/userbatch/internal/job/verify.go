package job

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/reports"
)

// VerifyFile is the file Verify writes in the report directory.
const VerifyFile = "verify.csv"

// The verdicts of verify.csv.
const (
	// VerdictOK: the user is in the state the row asked for, or the row
	// never claimed a change (failed, skipped, unknown, not_due, invalid,
	// planned), or a later row of the run changed the same user again.
	VerdictOK = "ok"
	// VerdictDrift: the report says applied or already, and the user is
	// not in that state now.
	VerdictDrift = "drift"
	// VerdictUnreadable: the row claimed a change, and the vendor cannot
	// read the user's state (no batch.Reader) or the read failed.
	VerdictUnreadable = "unreadable"
)

// VerifyColumns are verify.csv's columns, SPEC's exactly: `verify --help`
// names them from here, so the help and the file cannot disagree. Why a row
// could not be read is said in its state_now cell.
var VerifyColumns = []string{"line", "target", "user", "action", "outcome", "state_now", "verdict"}

// VerifyOptions are one verify's settings, as the command line gives them.
type VerifyOptions struct {
	Config    *config.Config
	ReportDir string
	// Workers caps requests in flight across all targets (0: no cap).
	Workers int
	// Client is the HTTP client for every target (nil: a new one).
	Client *http.Client
	Log    zerolog.Logger
	Stdout io.Writer
}

// VerifyCounts are verify.csv's rows by verdict.
type VerifyCounts struct{ OK, Drift, Unreadable int }

// Verify reads back, where the vendor allows, the state of every user in a
// finished report and writes REPORT_DIR/verify.csv: one line per row of
// report.csv, in its order. It never sends a change: the readers it uses
// refuse any write. Reads are paced as in a run (rate, concurrency,
// retries, Retry-After). Its error is an *Error: reports.ExitBadInput when the
// directory holds no finished report, is in use, or ran with other targets
// than o.Config's (nothing is read then); reports.ExitIncomplete when any row
// drifted; reports.ExitStopped when a signal or a failed write of verify.csv ended
// it (verify.csv is then left as it was). What was read is held in memory
// until verify.csv is written: a few dozen bytes a row. Each target gets
// its whole rate: verifying the N shards of a run at once takes N times it.
func Verify(ctx context.Context, o VerifyOptions) error {
	if o.Config == nil {
		return BadInput("no config")
	}
	if o.Workers < 0 {
		return BadInput("--workers %d: must be 0 (no cap) or more", o.Workers)
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	lock, err := LockExistingDir(o.ReportDir)
	if err != nil {
		return badInputErr(err)
	}
	defer lock.Unlock()
	lock.CleanUp(o.Log)
	if err := checkVerifiable(o.ReportDir, o.Config); err != nil {
		return err
	}
	v, err := newVerifier(o)
	if err != nil {
		return err
	}
	err = v.readAll(ctx)
	switch {
	case ctx.Err() != nil: // reads cut off end as failed rows, not as an error
		return stoppedErr(errors.New("verify stopped before every row was read: verify.csv was not written; run verify again"))
	case err != nil:
		return stoppedErr(fmt.Errorf("reading the users back: %v (verify.csv was not written)", err))
	}
	counts, drifted, err := v.write()
	if err != nil {
		return stoppedErr(fmt.Errorf("writing %s: %v", VerifyFile, err))
	}
	return v.conclude(counts, drifted)
}

// checkVerifiable refuses a directory without a finished report, or whose
// run used other targets than cfg: reading those users there would tell
// nothing about this run.
func checkVerifiable(dir string, cfg *config.Config) error {
	if _, err := os.Stat(filepath.Join(dir, reports.SummaryFile)); err != nil {
		return BadInput("%s holds no finished report (no %s): verify reads back a finished run; finish it first (run the same command with --resume)", dir, reports.SummaryFile)
	}
	st, err := batch.ReadJournal(filepath.Join(dir, batch.JournalName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return BadInput("%s holds no %s, so the config its run used cannot be checked (a merged report? verify each shard's directory)", dir, batch.JournalName)
	case err != nil:
		return BadInput("%s: %v", dir, err)
	}
	if names := cfg.Names(); !slices.Equal(st.Header.Targets, names) {
		return BadInput("the config's targets changed since the run (run: %v, now: %v): verify with the config the run used", st.Header.Targets, names)
	}
	if st.Header.ConfigSHA256 != cfg.Fingerprint() {
		return BadInput("the config changed since the run for the same targets (vendor, base_url, app_id or email differ): verify with the config the run used")
	}
	return nil
}

// verifier is one verify: the targets it reads through, and what it read.
type verifier struct {
	VerifyOptions
	infos   batch.Targets
	targets map[string]*batch.Target // the readable targets only
	states  *stateLog
	// reads holds each row sent through the pipeline (by index): its
	// state, or why it could not be read.
	reads map[int]readBack
	// lastClaim is, per user, the index of the last row that claimed a
	// change: earlier rows for that user were changed again by the run.
	lastClaim map[batch.Key]int
}

// readBack is what a read found for one row.
type readBack struct {
	ok      bool
	inState bool
	current string
	failure string // why the read failed, when !ok
}

func newVerifier(o VerifyOptions) (*verifier, error) {
	all, err := o.Config.Runtime(o.Client, 1)
	if err != nil {
		return nil, badInputErr(err)
	}
	v := &verifier{VerifyOptions: o, infos: o.Config.Infos(), targets: map[string]*batch.Target{},
		states: &stateLog{m: map[int]batch.State{}}, reads: map[int]readBack{}, lastClaim: map[batch.Key]int{}}
	for name, t := range all {
		r, ok := t.Adapter.(batch.Reader)
		if !ok {
			continue
		}
		// Reading a protected user takes nothing away: its row shows its
		// state like any other. No guard applies to reads.
		t.Protected, t.MaxChanges = batch.Protected{}, 0
		t.Adapter = readOnly{Adapter: t.Adapter, reader: r, states: v.states}
		v.targets[name] = t
	}
	return v, nil
}

// readAll sends a read for every row the vendor can read, through the
// pipeline in dry-run mode, and keeps what each found.
func (v *verifier) readAll(ctx context.Context) error {
	rr, err := openReport(v.ReportDir)
	if err != nil {
		return err
	}
	defer rr.close()
	src := func() (batch.Op, error) {
		for {
			row, err := rr.next()
			if err != nil {
				return batch.Op{}, err
			}
			if row.claimed() {
				v.lastClaim[v.userOf(row)] = row.index
			}
			if op, reason := v.readable(row); reason == "" {
				return op, nil
			}
		}
	}
	runner := &batch.Runner{Targets: v.targets, DryRun: true, Workers: v.Workers, Log: v.Log}
	return runner.Run(ctx, src, &verifySink{v: v})
}

// readable returns the read to send for row, or why none is sent.
func (v *verifier) readable(row reportRow) (batch.Op, string) {
	if row.outcome == batch.Invalid {
		return batch.Op{}, "invalid row: it was never sent, and is not read"
	}
	info, ok := v.infos[row.target]
	if !ok {
		return batch.Op{}, fmt.Sprintf("no target %q in the config", row.target)
	}
	action, ok := batch.ParseAction(row.action)
	if _, reads := v.targets[row.target]; !reads || !ok || (action != batch.Disable && action != batch.Enable) {
		return batch.Op{}, fmt.Sprintf("%s cannot read a user's state for %s", info.Vendor, row.action)
	}
	op := batch.Op{Index: row.index, Line: row.line, Target: row.target, User: row.user, Action: action}
	if info.Validator == nil {
		return op, ""
	}
	// report.csv keeps no vendor column: a read that needs one must find
	// it in the target's settings.
	if _, p := info.Validator.Validate(op, info.Settings); len(p) > 0 {
		return batch.Op{}, fmt.Sprintf("%s reads need %s, and report.csv does not keep the rows' own: set %s on target %s to verify its rows",
			info.Vendor, p[0].Column, p[0].Column, row.target)
	}
	return op, ""
}

// verifySink keeps each read's outcome. A write's intent ends the run: a
// verify must never get that far.
type verifySink struct{ v *verifier }

func (s *verifySink) Intent(op batch.Op, _ int) error {
	return fmt.Errorf("verify sends no change, yet line %d asked to (a bug): stopped before sending it", op.Line)
}

func (s *verifySink) Result(res batch.Result) error {
	st, found := s.v.states.take(res.Index)
	switch {
	case res.Outcome == batch.Planned && found:
		s.v.reads[res.Index] = readBack{ok: true, inState: st.InState, current: st.Current}
	default:
		s.v.reads[res.Index] = readBack{failure: readFailure(res)}
	}
	return nil
}

func (s *verifySink) Commit() error { return nil }

// readFailure says why a row's read gave no state.
func readFailure(res batch.Result) string {
	msg := "the read failed"
	if res.ErrorCode != "" {
		msg += " (" + res.ErrorCode + ")"
	}
	switch {
	case res.Message != "":
		msg += ": " + res.Message
	case res.Detail != "":
		msg += ": " + res.Detail
	}
	return msg
}

// readOnly is a readable target's adapter for a verify: reads go through,
// and what they found is kept; a write is refused without a request.
type readOnly struct {
	batch.Adapter
	reader batch.Reader
	states *stateLog
}

func (a readOnly) Apply(context.Context, batch.Op) (batch.Reply, error) {
	return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeRefused, Message: "verify never writes"}
}

func (a readOnly) Read(ctx context.Context, op batch.Op) (batch.State, error) {
	st, err := a.reader.Read(ctx, op)
	if err == nil {
		a.states.put(op.Index, st)
	}
	return st, err
}

var _ batch.Reader = readOnly{}

// stateLog hands the states read by the workers to the sink.
type stateLog struct {
	mu sync.Mutex
	m  map[int]batch.State
}

func (l *stateLog) put(i int, st batch.State) {
	l.mu.Lock()
	l.m[i] = st
	l.mu.Unlock()
}

func (l *stateLog) take(i int) (batch.State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[i]
	delete(l.m, i)
	return st, ok
}

// verdict judges one row of the report from what was read of its user.
// It returns the verdict, the state read ("" when none) and a note.
func (v *verifier) verdict(row reportRow) (verdict, stateNow, note string) {
	rb, sent := v.reads[row.index]
	if !sent {
		_, note = v.readable(row)
	} else if !rb.ok {
		note = rb.failure
	}
	stateNow = rb.current
	switch {
	case !row.claimed():
		return VerdictOK, stateNow, note
	case !rb.ok:
		return VerdictUnreadable, "", note
	case v.lastClaim[v.userOf(row)] != row.index:
		return VerdictOK, stateNow, "a later line of the run changed this user again: it is checked there"
	case rb.inState:
		return VerdictOK, stateNow, ""
	}
	return VerdictDrift, stateNow, fmt.Sprintf("the report says %s (%s), and the user is %s now", row.outcome, row.action, stateNow)
}

// write writes verify.csv under a temporary name, then renames it into
// place. It returns the counts, and the first drifted rows for the
// operator's screen.
func (v *verifier) write() (VerifyCounts, []string, error) {
	var counts VerifyCounts
	var drifted []string
	rr, err := openReport(v.ReportDir)
	if err != nil {
		return counts, nil, err
	}
	defer rr.close()
	out, err := newVerifyWriter(v.ReportDir, rr.r.BOM, rr.r.Comma)
	if err != nil {
		return counts, nil, err
	}
	defer out.discard()
	for {
		row, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return counts, nil, err
		}
		verdict, state, note := v.verdict(row)
		switch verdict {
		case VerdictOK:
			counts.OK++
		case VerdictDrift:
			counts.Drift++
			if len(drifted) < maxShownDrift {
				drifted = append(drifted, fmt.Sprintf("line %d: %s %s %s: %s", row.line, row.target, row.user, row.action, note))
			}
		case VerdictUnreadable:
			counts.Unreadable++
		}
		if state == "" && note != "" {
			state = "(not read: " + note + ")"
		}
		if err := out.write([]string{row.lineCell, row.target, row.user, row.action, string(row.outcome), state, verdict}); err != nil {
			return counts, nil, err
		}
	}
	return counts, drifted, out.commit()
}

// maxShownDrift bounds the drifted rows printed; verify.csv has them all.
const maxShownDrift = 10

// conclude prints the counts and turns them into the exit code.
func (v *verifier) conclude(c VerifyCounts, drifted []string) error {
	path := filepath.Join(v.ReportDir, VerifyFile)
	fmt.Fprintf(v.Stdout, "verify: %s: %d ok, %d drift, %d unreadable\n", batch.CountRows(c.OK+c.Drift+c.Unreadable), c.OK, c.Drift, c.Unreadable)
	for _, d := range drifted {
		fmt.Fprintf(v.Stdout, "  drift: %s\n", d)
	}
	if c.Drift > len(drifted) {
		fmt.Fprintf(v.Stdout, "  ... and %s more\n", batch.Count(c.Drift-len(drifted), "drifted row"))
	}
	fmt.Fprintf(v.Stdout, "verify: %s\n", path)
	v.Log.Info().Int("ok", c.OK).Int("drift", c.Drift).Int("unreadable", c.Unreadable).Str("file", path).Msg("verify finished")
	if c.Drift > 0 {
		return &Error{Code: reports.ExitIncomplete, Err: fmt.Errorf("%s drifted: their users are no longer in the state the report says (see %s)", batch.CountRows(c.Drift), path)}
	}
	return nil
}

// reportRow is one row of report.csv, as verify reads it.
type reportRow struct {
	index    int // 0-based among the data rows
	line     int
	lineCell string
	target   string
	user     string
	action   string
	outcome  batch.Outcome
}

// claimed reports whether the report says the user is in the row's state.
func (r reportRow) claimed() bool { return r.outcome == batch.Applied || r.outcome == batch.Already }

// userOf names the row's user as its target's vendor does: two spellings
// of one person are one user whose last claim decides.
func (v *verifier) userOf(r reportRow) batch.Key {
	if id := v.infos[r.target].Identity; id != nil {
		return batch.Key{Target: r.target, User: id.Key(r.user)}
	}
	return batch.Key{Target: r.target, User: r.user}
}

// reportReader reads report.csv's rows in order.
type reportReader struct {
	r    *reports.CSVReader // r.BOM: written with --excel, verify.csv gets one too
	cols map[string]int
	n    int
}

// openReport opens dir's report.csv and checks its header.
func openReport(dir string) (*reportReader, error) {
	path := filepath.Join(dir, reports.ReportFile)
	r, err := reports.OpenCSV(path)
	if err != nil {
		return nil, err
	}
	rr := &reportReader{r: r, cols: map[string]int{}}
	header, err := rr.r.Read()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for i, name := range header {
		name = reports.Unneutralize(name)
		if _, dup := rr.cols[name]; !dup { // a passthrough column may repeat a name: ours come first
			rr.cols[name] = i
		}
	}
	for _, c := range []string{"line", "target", "user", "action", "outcome"} {
		if _, ok := rr.cols[c]; !ok {
			r.Close()
			return nil, fmt.Errorf("%s has no %s column: not a userbatch report", path, c)
		}
	}
	return rr, nil
}

// next returns the next row, or io.EOF after the last.
func (rr *reportReader) next() (reportRow, error) {
	rec, err := rr.r.Read()
	if err != nil {
		return reportRow{}, err
	}
	cell := func(name string) string {
		if i := rr.cols[name]; i < len(rec) {
			return reports.Unneutralize(rec[i])
		}
		return ""
	}
	row := reportRow{index: rr.n, lineCell: cell("line"), target: cell("target"), user: cell("user"),
		action: cell("action"), outcome: batch.Outcome(cell("outcome"))}
	if row.line, err = strconv.Atoi(row.lineCell); err != nil {
		return reportRow{}, fmt.Errorf("%s: data row %d: line %q is not a number", reports.ReportFile, rr.n+1, row.lineCell)
	}
	rr.n++
	return row, nil
}

func (rr *reportReader) close() { rr.r.Close() }

// verifyWriter is verify.csv under a temporary name until commit.
type verifyWriter struct {
	p    *reports.Partial
	buf  *bufio.Writer
	csv  *csv.Writer
	cell []string
}

// newVerifyWriter writes verify.csv as report.csv was written: with a byte
// order mark and its delimiter when that was for Excel.
func newVerifyWriter(dir string, bom bool, comma rune) (*verifyWriter, error) {
	p, err := reports.CreatePartial(dir, VerifyFile)
	if err != nil {
		return nil, err
	}
	w := &verifyWriter{p: p, buf: bufio.NewWriter(p)}
	w.csv = csv.NewWriter(w.buf)
	w.csv.Comma = comma
	if bom {
		_, _ = w.buf.WriteString(reports.UTF8BOM)
	}
	if err := w.write(VerifyColumns); err != nil {
		w.discard()
		return nil, err
	}
	return w, nil
}

// write adds one line, every cell formula-neutralised.
func (w *verifyWriter) write(rec []string) error {
	w.cell = w.cell[:0]
	for _, c := range rec {
		w.cell = append(w.cell, reports.Neutralize(c))
	}
	return w.csv.Write(w.cell)
}

// commit flushes and syncs the file, then renames it to verify.csv,
// replacing an earlier verify's.
func (w *verifyWriter) commit() error {
	w.csv.Flush()
	err := w.csv.Error()
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil {
		err = w.p.Close()
	}
	if err == nil {
		err = w.p.Commit()
	}
	w.p.Discard()
	return err
}

// discard removes the temporary file of a verify that did not commit.
func (w *verifyWriter) discard() { w.p.Discard() }
