package job

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/reports"
)

// Args are one run's settings, as the command line gives them.
type Args struct {
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
	// CatchUp, when set, is how late a due row may still run.
	CatchUp time.Duration
	// MaxChanges holds the run (exit 4, nothing sent) when more rows would
	// change; 0: no limit (targets' max_changes still apply).
	MaxChanges int
	// Canary applies this many changing rows first, reads them back, and
	// goes on only if all of them took.
	Canary int
	// Yes sends without asking the person at the terminal.
	Yes bool
	// Plan, when set, is a saved plan to apply exactly (userbatch apply).
	Plan *SavedPlan
	// Actor is who runs it (--actor): recorded in the journal, summary.json,
	// the ledger and the webhook.
	Actor string
	// Command is the command line as typed, for the exact resume command.
	Command string

	// open reads the input and the plan's files (nil: os.Open); tests
	// count the reads with it.
	open opener
}

// Options are a run: its arguments, and what it runs with, as the command
// composes them: the streams, the signals, the clock, the question and the
// observers (README "Layout").
type Options struct {
	Args
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
	// Clock is the run's time (nil: the wall clock); tests of effective
	// dates move it.
	Clock batch.Clock
	// Prompt asks a person to confirm the changes before the first write,
	// unless Yes; nil: nobody answers (cron, a pipe).
	Prompt *Prompt
	// Observers watch the run: the bar, the progress log, the metrics
	// file, the webhook (nil: none).
	Observers Observers

	// createReport is reports.CreateWith (nil); tests make it fail.
	createReport func(dir string, h batch.Header, o reports.Options) (*reports.Writer, error)
}

// Run is one run, stage by stage; its observers hear how it ended. Its
// error is an *Error carrying the exit code; nil is exit 0.
func Run(ctx context.Context, o Options) error {
	_, err := runRecorded(ctx, o)
	return err
}

// runRecorded is Run, and returns what the run left behind.
func runRecorded(ctx context.Context, o Options) (*runRecord, error) {
	start := time.Now()
	done := &runRecord{}
	err := run(ctx, &o, done)
	o.Observers.Finished(End{Summary: done.summary, Held: done.held, ExitCode: Exit(err), Duration: time.Since(start), At: time.Now()})
	return done, err
}

// run is the stages in order: each takes what it needs, and its error ends
// the run.
func run(ctx context.Context, o *Options, done *runRecord) error {
	if err := o.check(); err != nil {
		return err
	}
	in, err := openInputWith(o.Input, o.Stdin, o.open)
	if err != nil {
		return badInputErr(err)
	}
	defer in.cleanup()
	lock, err := lockDir(o.ReportDir, o.Log)
	if err != nil {
		return badInputErr(err)
	}
	defer lock.Unlock()
	plan, err := planJournal(o.dirRules(), o.header(in))
	if err != nil {
		lock.Abandon()
		return err
	}
	r := o.stages(in, plan, done)
	valid, err := r.validate()
	if err != nil {
		return err
	}
	closeTargets, err := r.openTargets(ctx, o.Config, o.Client, o.rateShare())
	if err != nil {
		return badInputErr(err)
	}
	defer closeTargets()
	discover(ctx, o.Log, r.targets, valid.Targets)
	if err := r.decide(ctx); err != nil { // read state, guard and confirm
		return err
	}
	if r.journal, err = plan.open(); err != nil {
		return badInputErr(err)
	}
	return r.apply(ctx) // and report
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
func (o *Options) includes(op batch.Op) bool { return inShard(o.Shard, op) }

// inShard says whether op is one of shard's rows.
func inShard(shard batch.Shard, op batch.Op) bool { return shard.Includes(op.Target, op.Key().User) }

// runRecord is what a run leaves behind for its observers.
type runRecord struct {
	summary *reports.Summary
	held    bool
	// repeats are the input's duplicates and conflicts, once validated:
	// plan.csv marks them without reading the file for them again.
	repeats *batch.Repeats
}

// Now is the run's time: its Clock's, or the wall clock.
func (o *Options) Now() time.Time { return pipeline{clock: o.Clock}.now() }
