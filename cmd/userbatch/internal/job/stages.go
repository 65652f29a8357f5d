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

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/reports"
)

// runState is a run once its directory is locked and its journal's rules
// are checked: what the stages after that share, each part named for the
// stage that needs it.
type runState struct {
	pipeline              // how rows go through the pipeline
	guards                // what may hold the run before its first write
	streams               // what the person or the cron log reads
	howTo                 // the commands the messages give
	out         reportOut // where and how the report is written
	obs         Observer
	done        *runRecord
	in          *input
	infos       batch.Targets
	parse       ParseOptions
	includes    func(batch.Op) bool // this process's rows (its shard's)
	rates       map[string]float64
	start       Start
	skipInvalid bool

	plan    *journalPlan
	targets map[string]*batch.Target
	gate    batch.Gate // the ledger's, or nil
	journal *batch.Journal
	// saved is the plan of userbatch apply, when it applies one.
	saved *rowPlan
	// inScope are the valid rows this process runs (validate finds them).
	inScope batch.RowSet
	// rows is the plan the run follows, when it has one (guards, apply).
	rows *rowPlan
	// canaryFailed says why the canary stopped the run.
	canaryFailed string
	// notRun, when set, is the detail of the rows the run did not start.
	notRun string
}

// pipeline is how rows go through batch.Runner, and how a signal stops them.
type pipeline struct {
	dryRun  bool
	workers int
	clock   batch.Clock
	catchUp time.Duration
	grace   time.Duration
	signals <-chan os.Signal
	log     zerolog.Logger
	mute    func()
}

func (p pipeline) now() time.Time {
	if p.clock == nil {
		return time.Now()
	}
	return p.clock.Now()
}

// streams are where the run's messages go.
type streams struct {
	stdout, stderr io.Writer
	// console is true when a person reads stderr: the summary is a table.
	console bool
}

func (s streams) printf(format string, args ...any) { fmt.Fprintf(s.stderr, format, args...) }

// stages splits the options into what each stage needs.
func (o *Options) stages(in *input, plan *journalPlan, done *runRecord) *runState {
	r := &runState{
		pipeline: pipeline{dryRun: o.DryRun, workers: o.Workers, clock: o.Clock, catchUp: o.CatchUp, grace: o.Grace,
			signals: o.Signals, log: o.Log, mute: o.Mute},
		guards:  o.guards(),
		streams: streams{stdout: o.Stdout, stderr: o.Stderr, console: o.Console},
		howTo:   howTo{command: o.Command, configPath: o.ConfigPath, input: o.Input, reportDir: o.ReportDir, resume: o.Resume},
		out: reportOut{dir: o.ReportDir, excel: o.Excel, actor: o.Actor, parse: o.Parse, includes: o.includes,
			create: o.createReport, open: o.open},
		obs: o.Observers, done: done, in: in, infos: o.Config.Infos(), parse: o.Parse, includes: o.includes,
		rates: o.rates(), plan: plan, skipInvalid: o.SkipInvalid,
		start: Start{Input: o.Input, InputSHA256: in.sha256, ConfigPath: o.ConfigPath, ReportDir: o.ReportDir,
			Targets: o.Config.Names(), DryRun: o.DryRun, Resume: o.Resume, Shard: o.Shard.String()},
	}
	r.start.Rates = r.rates
	if o.Plan != nil {
		r.saved = o.Plan.rows
	}
	return r
}

// lockDir takes the report directory's lock and removes what a killed
// process left there.
func lockDir(dir string, log zerolog.Logger) (*Lock, error) {
	lock, err := LockDir(dir)
	if err != nil {
		return nil, err
	}
	lock.CleanUp(log)
	return lock, nil
}

// validate reads the whole file: the observers hear what the run is over,
// the person reads its problems, and a file with invalid rows sends
// nothing unless --skip-invalid. The same reading finds the duplicates and
// conflicts (once for every pass the run makes over the file), the rows in
// this process's scope, and the first problems to show: one pass when no
// rows meet, three when some do.
func (r *runState) validate() (Validation, error) {
	var shown []batch.Problem
	t := newRowTally(maxShown, func(p batch.Problem) { shown = append(shown, p) }, nil)
	r.inScope = batch.RowSet{}
	t.each = func(row batch.Row) { r.inScope.Put(row.Index, row.Valid() && r.includes(row.Op)) }
	t, repeats, err := r.in.tally(r.infos, r.parse, t)
	if err != nil {
		return t.Validation, badInputErr(err)
	}
	r.parse.Repeats, r.done.repeats = repeats, repeats
	r.out.parse = r.parse
	counts := t.Validation
	r.start.Valid, r.start.Invalid = counts.Valid, counts.Invalid
	r.obs.Started(r.start)
	if counts.Invalid > 0 {
		r.showProblems(shown, t)
	}
	if counts.Invalid > 0 && !r.skipInvalid {
		return counts, r.refuseInvalid(counts)
	}
	return counts, nil
}

// openTargets builds the targets the rows go to and opens the config's
// ledger, if it names one, as the run's gate.
func (r *runState) openTargets(ctx context.Context, cfg *config.Config, client *http.Client, rateShare float64) (func(), error) {
	targets, err := cfg.Runtime(client, rateShare)
	if err != nil {
		return nil, err
	}
	r.targets = targets
	if cfg.Ledger == "" {
		return func() {}, nil
	}
	l, err := ledger.Open(ctx, cfg.Ledger)
	if err != nil {
		return nil, err
	}
	g := &ledgerGate{l: l, runID: r.plan.header.RunID, actor: r.out.actor, inputSHA: r.in.sha256,
		now: r.now, repeatable: repeatable(targets), identities: identities(r.infos)}
	if !r.dryRun {
		g.claims = ledger.NewBatcher(l, ledger.ClaimBatch, ledger.MaxClaimBatch, r.now)
	}
	r.gate = g
	return func() {
		if g.claims != nil {
			g.claims.Close(context.Background())
		}
		l.Close()
	}, nil
}

// discover asks each target the file has rows for whose adapter can tell,
// once, at the start, what its vendor supports, and logs it.
func discover(ctx context.Context, log zerolog.Logger, targets map[string]*batch.Target, rows map[string]int) {
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		d, ok := targets[name].Adapter.(batch.Discoverer)
		if !ok || rows[name] == 0 {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, targets[name].Timeout)
		found, err := d.Discover(dctx)
		cancel()
		if err != nil {
			log.Warn().Str("target", name).Err(err).Msg("what the vendor supports could not be read; it is tried again with the first row")
			continue
		}
		log.Info().Str("target", name).Str("features", found).Msg("what the vendor supports")
	}
}

// refuseInvalid sends nothing and exits 2. When the directory held no run
// it also writes a report marking every problem, and a journal that says
// so: the next run there sets the files aside.
func (r *runState) refuseInvalid(v Validation) error {
	where := "the problems are listed above"
	if r.plan.fresh {
		if err := r.plan.markRefused(); err != nil {
			return badInputErr(err)
		}
		now := time.Now()
		sum, err := r.out.write(r.in.path, r.infos, nil, nil, "not sent: the file has invalid rows (fix them, or run with --skip-invalid)",
			reports.Run{StartedAt: now, FinishedAt: now, DryRun: r.dryRun, ExitCode: reports.ExitBadInput, Processes: 1})
		if err != nil {
			return badInputErr(err)
		}
		r.done.summary = sum
		where = "report: " + filepath.Join(r.out.dir, reports.ReportFile)
	}
	verb := "are"
	if v.Invalid == 1 {
		verb = "is"
	}
	return BadInput("%d of %s %s invalid; nothing was sent. Fix them (%s), or use --skip-invalid to send the %s",
		v.Invalid, batch.CountRows(v.Invalid+v.Valid), verb, where, batch.Count(v.Valid, "valid row"))
}

// showProblems reports the input's first problems as the log is read:
// plain lines for a person at a console, one warn record each in a JSON
// log, then how many more t counted.
func (r *runState) showProblems(shown []batch.Problem, t *rowTally) {
	if r.console {
		for _, p := range shown {
			fmt.Fprintln(r.stderr, p.String())
		}
		t.more(func(more int) { fmt.Fprintf(r.stderr, moreProblems, more) })
		return
	}
	for _, p := range shown {
		r.log.Warn().Int("line", p.Line).Str("column", p.Column).Str("problem", p.Msg).Str("accepted", p.Accepted).Msg(p.String())
	}
	t.more(func(more int) {
		r.log.Warn().Int("more_problems", more).Msg("more invalid rows: every one is in report.csv; `userbatch validate` lists them all")
	})
}
