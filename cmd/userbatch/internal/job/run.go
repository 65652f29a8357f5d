package job

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/adapters/scim"
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/reports"
)

// Options are one run's settings, as the command line gives them.
type Options struct {
	Config      *config.Config
	ConfigPath  string
	Input       string // a path, or "-" for Stdin
	ReportDir   string
	DryRun      bool
	Resume      bool
	SkipInvalid bool
	Excel       bool
	Parse       ParseOptions
	// Grace is how long rows in flight may take to finish after a signal.
	Grace time.Duration
	Shard batch.Shard
	// ShardFullRate gives this shard each target's whole rate.
	ShardFullRate bool
	// Workers caps requests in flight across all targets (0: no cap).
	Workers int
	// Client is the HTTP client for every target (nil: a new one).
	Client *http.Client
	// Signals delivers SIGINT/SIGTERM, caught by main from before the run
	// starts (nil: none comes). The first stops the run gracefully, a
	// second at once.
	Signals <-chan os.Signal
	Log     zerolog.Logger
	// Mute silences the log for good: after a second signal, nothing is
	// logged after the line that says what was cut off.
	Mute   func()
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Console is true when a person reads stderr: the summary is a table
	// there; otherwise it is one structured log record.
	Console bool
	// Bar is the terminal to draw the live progress on (stderr, a terminal,
	// console logs); nil: none, as on a pipe or with JSON logs.
	Bar *Terminal
	// Command is the command line as typed, for the exact resume command.
	Command string
	// Clock is the run's time (nil: the wall clock); tests of effective
	// dates move it.
	Clock batch.Clock
	// CatchUp, when set, is how late a due row may still run.
	CatchUp time.Duration
	// MaxChanges holds the run (exit 4, nothing sent) when more rows would
	// change; 0: no limit (targets' max_changes still apply).
	MaxChanges int
	// Canary applies this many changing rows first, reads them back, and
	// goes on only if all of them took.
	Canary int
	// Terminal is true when a person answers on Stdin: before the first
	// write they are asked to confirm, unless Yes.
	Terminal bool
	// Answer is where the person answers, when not Stdin: the terminal
	// (/dev/tty) when Stdin is the input.
	Answer io.Reader
	Yes    bool
	// Plan, when set, is a saved plan to apply exactly (userbatch apply).
	Plan *SavedPlan
	// Actor is who runs it (--actor): recorded in the journal, summary.json,
	// the ledger and the webhook.
	Actor string
	// MetricsFile, when set, receives the run's metrics in Prometheus
	// text format at its end, whatever the exit code.
	MetricsFile string

	// done is what the run leaves for its metrics and notification.
	done *runRecord
	// createReport is reports.CreateWith (nil); tests make it fail.
	createReport func(dir string, h batch.Header, o reports.Options) (*reports.Writer, error)
}

// runRecord is what a run leaves behind for its metrics and notification.
type runRecord struct {
	summary *reports.Summary
	held    bool
	// reads, writes and retries count this process's requests by target.
	reads, writes, retries map[string]int
}

func (o *Options) now() time.Time {
	if o.Clock == nil {
		return time.Now()
	}
	return o.Clock.Now()
}

func (o *Options) check() error {
	switch {
	case o.Workers < 0:
		return BadInput("--workers %d: must be 0 (no cap) or more", o.Workers)
	case o.Grace < 0:
		return BadInput("--grace %v: must be 0 or more, such as 30s", o.Grace)
	case o.MaxChanges < 0 || o.Canary < 0:
		return BadInput("--max-changes and --canary take a number of rows: 0 or more")
	case o.CatchUp < 0:
		return BadInput("--catch-up %v: must be 0 (no limit) or more, such as 72h", o.CatchUp)
	case o.ShardFullRate && o.Shard.Count <= 1:
		return BadInput("--shard-full-rate needs --shard K/N: it says how much of the rate one shard of several takes")
	case o.Config == nil:
		return BadInput("no config")
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	return nil
}

// rateShare is the part of each target's rate this process may use.
func (o *Options) rateShare() float64 {
	if o.Shard.Count > 1 && !o.ShardFullRate {
		return 1 / float64(o.Shard.Count)
	}
	return 1
}

// rates are each target's requests per second as this process paces them.
func (o *Options) rates() map[string]float64 {
	rates := map[string]float64{}
	for _, name := range o.Config.Names() {
		rates[name] = o.Config.Targets[name].Rate * o.rateShare()
	}
	return rates
}

// includes reports whether op is this process's to run (its shard's).
// Rows of one user by identity share a shard, however their cells spell it.
func (o *Options) includes(op batch.Op) bool { return o.Shard.Includes(op.Target, op.Key().User) }

// Run is the whole run: validate, lock, journal, apply, report, then the
// metrics file and the notification. Its error is an *Error carrying the
// exit code; nil is exit 0.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	o.done = &runRecord{reads: map[string]int{}, writes: map[string]int{}, retries: map[string]int{}}
	err := run(ctx, o)
	o.afterRun(ctx, err, time.Since(start))
	return err
}

// afterRun writes the metrics file and sends the notification. Neither
// changes the exit code: a run that did its work is not failed by them.
func (o *Options) afterRun(ctx context.Context, err error, took time.Duration) {
	code := Exit(err)
	if o.MetricsFile != "" {
		m := RunMetrics{Summary: o.done.summary, Reads: o.done.reads, Writes: o.done.writes, Retries: o.done.retries,
			ExitCode: code, Duration: took, Finished: time.Now()}
		if o.Shard.Count > 1 {
			m.Labels = map[string]string{"shard": o.Shard.String()}
		}
		if werr := WriteMetrics(o.MetricsFile, m); werr != nil {
			o.Log.Warn().Err(werr).Str("metrics_file", o.MetricsFile).Msg("the metrics file could not be written")
		}
	}
	if o.Config != nil && o.Config.Webhook != "" && o.done.summary != nil {
		text := NotifyText(o.done.summary, code, o.done.held, reportLocation(o.ReportDir))
		Notify(context.WithoutCancel(ctx), o.Log, o.Config.Webhook, text, o.done.summary)
	}
}

func run(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	in, err := openInput(o.Input, o.Stdin)
	if err != nil {
		return badInputErr(err)
	}
	defer in.cleanup()
	lock, err := LockDir(o.ReportDir)
	if err != nil {
		return badInputErr(err)
	}
	defer lock.Unlock()
	lock.CleanUp(o.Log)
	plan, err := planJournal(&o, in)
	if err != nil {
		lock.Abandon()
		return err
	}
	infos := o.Config.Infos()
	// Found once for every pass the run makes over the file.
	if o.Parse.Repeats, err = findRepeats(in.path, infos, o.Parse); err != nil {
		return badInputErr(err)
	}
	counts, err := validate(in.path, infos, o.Parse, 0, nil, nil, nil)
	if err != nil {
		return badInputErr(err)
	}
	o.logStart(in, counts)
	if counts.Invalid > 0 {
		if err := o.showProblems(in.path, infos); err != nil {
			return badInputErr(err)
		}
	}
	if counts.Invalid > 0 && !o.SkipInvalid {
		return refuseInvalid(&o, in, infos, counts, plan)
	}
	targets, err := o.Config.Runtime(o.Client, o.rateShare())
	if err != nil {
		return badInputErr(err)
	}
	gate, closeLedger, err := o.openLedger(ctx, plan, in, targets)
	if err != nil {
		return badInputErr(err)
	}
	defer closeLedger()
	o.discover(ctx, targets, counts.Targets)
	r := &runState{Options: &o, in: in, infos: infos, targets: targets, plan: plan, gate: gate}
	if err := r.decide(ctx); err != nil {
		return err
	}
	if r.journal, err = plan.open(); err != nil {
		return badInputErr(err)
	}
	return r.run(ctx, counts.Valid)
}

// openLedger opens the config's ledger, if it names one, as the run's gate.
func (o *Options) openLedger(ctx context.Context, plan *journalPlan, in *input, targets map[string]*batch.Target) (batch.Gate, func(), error) {
	if o.Config.Ledger == "" {
		return nil, func() {}, nil
	}
	l, err := ledger.Open(ctx, o.Config.Ledger)
	if err != nil {
		return nil, nil, err
	}
	g := &ledgerGate{l: l, runID: plan.header.RunID, actor: o.Actor, inputSHA: in.sha256, dryRun: o.DryRun, now: o.now,
		repeatable: repeatable(targets), identities: identities(o.Config.Infos())}
	return g, func() { l.Close() }, nil
}

// discover asks each SCIM target the file has rows for, once, at the
// start, what it supports, and logs it: an operator sees at once whether
// PATCH and ETags will be used.
func (o *Options) discover(ctx context.Context, targets map[string]*batch.Target, rows map[string]int) {
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		c, ok := targets[name].Adapter.(*scim.Client)
		if !ok || rows[name] == 0 {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, targets[name].Timeout)
		_, err := c.Discover(dctx)
		cancel()
		if err != nil {
			o.Log.Warn().Str("target", name).Err(err).Msg("scim: /ServiceProviderConfig could not be read; it is tried again with the first row")
			continue
		}
		o.Log.Info().Str("target", name).Str("features", c.Features()).Msg("scim: service provider config")
	}
}

// logStart is the first record a cron log holds: what this run is over.
func (o *Options) logStart(in *input, v Validation) {
	rates := zerolog.Dict()
	for name, r := range o.rates() {
		rates.Float64(name, r)
	}
	o.Log.Info().Str("input", o.Input).Str("input_sha256", in.sha256).Str("config", o.ConfigPath).
		Str("report_dir", o.ReportDir).Strs("targets", o.Config.Names()).Int("rows", v.Valid+v.Invalid).
		Int("valid", v.Valid).Int("invalid", v.Invalid).Dict("rate_per_s", rates).Bool("dry_run", o.DryRun).
		Bool("resume", o.Resume).Str("shard", o.Shard.String()).Msg("run starting")
}

// refuseInvalid sends nothing and exits 2. When the directory held no run
// it also writes a report marking every problem, and a journal that says
// so: the next run there sets the files aside.
func refuseInvalid(o *Options, in *input, infos batch.Targets, v Validation, plan *journalPlan) error {
	where := "the problems are listed above"
	if plan.fresh {
		if err := plan.markRefused(); err != nil {
			return badInputErr(err)
		}
		now := time.Now()
		sum, err := writeReport(o, in.path, infos, nil, nil, "not sent: the file has invalid rows (fix them, or run with --skip-invalid)",
			reports.Run{StartedAt: now, FinishedAt: now, DryRun: o.DryRun, ExitCode: reports.ExitBadInput, Processes: 1})
		if err != nil {
			return badInputErr(err)
		}
		o.done.summary = sum
		where = "report: " + filepath.Join(o.ReportDir, reports.ReportFile)
	}
	verb := "are"
	if v.Invalid == 1 {
		verb = "is"
	}
	return BadInput("%d of %s %s invalid; nothing was sent. Fix them (%s), or use --skip-invalid to send the %s",
		v.Invalid, batch.CountRows(v.Invalid+v.Valid), verb, where, batch.Count(v.Valid, "valid row"))
}

// writeReport replays the input against the recorded outcomes into the
// report directory.
func writeReport(o *Options, inputPath string, infos batch.Targets, idx *batch.OutcomeIndex,
	targets map[string]*batch.Target, notRun string, run reports.Run) (*reports.Summary, error) {
	var of batch.OutcomeSource
	if idx != nil {
		of = idx.Of
	}
	return writeReportFrom(o, inputPath, infos, of, targets, notRun, run)
}

// writeReportWith writes a report whose every row's outcome comes from fn.
func writeReportWith(o *Options, inputPath string, infos batch.Targets, fn func(batch.Row) (batch.Result, bool),
	targets map[string]*batch.Target, run reports.Run) (*reports.Summary, error) {
	of := func(row batch.Row) (batch.Result, bool, error) {
		res, ok := fn(row)
		return res, ok, nil
	}
	return writeReportFrom(o, inputPath, infos, of, targets, "not sent", run)
}

func writeReportFrom(o *Options, inputPath string, infos batch.Targets, of batch.OutcomeSource,
	targets map[string]*batch.Target, notRun string, run reports.Run) (*reports.Summary, error) {
	p, done, err := openParser(inputPath, infos, o.Parse)
	if err != nil {
		return nil, err
	}
	defer done()
	run.Actor = o.Actor
	create := o.createReport
	if create == nil {
		create = reports.CreateWith
	}
	w, err := create(o.ReportDir, p.Header(), reports.Options{Excel: o.Excel, Repeatable: repeatable(targets)})
	if err != nil {
		return nil, err
	}
	err = batch.ReplayWith(p, of, o.includes, notRun, w.Write)
	sum, cerr := w.Close(run)
	if err != nil {
		return nil, err
	}
	return sum, cerr
}

// repeatable says which rows' requests are safe to send again: the
// adapter's word. Nil targets: reports' default (all but toggles).
func repeatable(targets map[string]*batch.Target) func(string, batch.Action) bool {
	if targets == nil {
		return nil
	}
	return func(target string, a batch.Action) bool {
		t, ok := targets[target]
		return !ok && a != batch.ToggleStatus || ok && t.MayResend(a)
	}
}

// identities are the targets' vendors' ways of comparing user cells.
func identities(infos batch.Targets) map[string]batch.Identity {
	ids := map[string]batch.Identity{}
	for name, t := range infos {
		if t.Identity != nil {
			ids[name] = t.Identity
		}
	}
	return ids
}

// resumeCommand is the exact command that finishes this run.
func (o *Options) resumeCommand() string {
	if o.Command == "" {
		return "the same command with --resume"
	}
	if o.Resume {
		return o.Command
	}
	return o.Command + " --resume"
}

func (o *Options) printf(format string, args ...any) { fmt.Fprintf(o.Stderr, format, args...) }
