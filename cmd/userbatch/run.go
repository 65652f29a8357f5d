package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/userbatch/userbatch/adapters"
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

type runOptions struct {
	*globalOptions
	configPath  string
	reportDir   string
	input       string
	dryRun      bool
	resume      bool
	skipInvalid bool
	grace       time.Duration
	shardFlag   string
	shard       batch.Shard
	// shardFullRate gives each shard each target's whole rate.
	shardFullRate bool
	// signals delivers SIGINT/SIGTERM; tests may supply their own.
	signals <-chan os.Signal
	// client, when set, is the HTTP client for every target (demo, tests).
	client *http.Client
}

func newRunCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "run -c targets.yaml -o REPORT_DIR ops.csv",
		Short: "Validate, then apply every row of an operations CSV ('-' reads stdin)",
		Long: `Validate every row, then apply the changes through each target's vendor API,
paced per target, and write report.csv, summary.json, failed.csv and undo.csv
to REPORT_DIR. A file with any invalid row sends nothing (see --skip-invalid).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.input = args[0]
			return runRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "targets config (YAML); required")
	f.StringVarP(&o.reportDir, "output", "o", "", "report directory (created if missing); required")
	f.BoolVar(&o.dryRun, "dry-run", false, "read current state where the vendor allows and report the plan; send no change")
	f.BoolVar(&o.resume, "resume", false, "continue the interrupted run recorded in REPORT_DIR's journal")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "send the valid rows even if some rows are invalid (those are reported invalid)")
	f.DurationVar(&o.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long requests in flight may take to finish")
	f.StringVar(&o.shardFlag, "shard", "", "process only shard K/N: the rows whose (target, user) hashes to K of N (e.g. $(JOB_COMPLETION_INDEX)/8)")
	f.BoolVar(&o.shardFullRate, "shard-full-rate", false, "with --shard, give this shard each target's whole rate (default: rate divided by N)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func runRun(ctx context.Context, o *runOptions) error {
	log, err := o.logger()
	if err != nil {
		return err
	}
	cfg, err := loadConfig(o.configPath)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	return execute(ctx, o, cfg, log)
}

// execute is the whole run: validate, journal, apply, report.
func execute(ctx context.Context, o *runOptions, cfg *config, log zerolog.Logger) error {
	if o.workers < 0 {
		return badInput("--workers must be 0 or more")
	}
	if o.shardFlag != "" {
		var err error
		if o.shard, err = batch.ParseShard(o.shardFlag); err != nil {
			return &exitError{code: exitBadInput, err: err}
		}
	}
	in, err := openInput(o.input, o.stdin)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer in.cleanup()
	plan, err := checkJournal(o, cfg, in)
	if err != nil {
		return err
	}
	infos := cfg.targetInfos()
	counts, err := validateInput(in.path, infos, o.stderr, 20)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if counts.invalid > 0 && !o.skipInvalid {
		return refuseInvalid(o, in, infos, counts, plan.state == nil)
	}
	if err := os.MkdirAll(o.reportDir, 0o755); err != nil {
		return badInput("report directory: %v", err)
	}
	targets, err := buildTargets(cfg, o.client, o.rateShare())
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	j, err := plan.open()
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	st := plan.state
	run := reports.Run{StartedAt: time.Now(), DryRun: o.dryRun}
	stopped, runErr := applyAll(ctx, o, log, targets, infos, in, j, st, counts.valid)
	run.FinishedAt, run.Stopped = time.Now(), stopped
	if err := j.Close(); runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return &exitError{code: exitStopped, err: fmt.Errorf("%v\nthe journal is consistent: fix the cause, then run the same command with --resume", runErr)}
	}
	return finish(o, in, infos, run)
}

type validation struct{ valid, invalid int }

// validateInput reads the whole file once, printing the first max problems.
func validateInput(path string, infos batch.Targets, w io.Writer, max int) (validation, error) {
	var v validation
	shown := 0
	err := eachRow(path, infos, func(row batch.Row) error {
		if row.Valid() {
			v.valid++
			return nil
		}
		v.invalid++
		for _, p := range row.Problems {
			if max <= 0 || shown < max {
				fmt.Fprintln(w, p.String())
			}
			shown++
		}
		return nil
	})
	if max > 0 && shown > max {
		fmt.Fprintf(w, "... and %d more problems (every one is in report.csv; `userbatch validate` lists them all)\n", shown-max)
	}
	return v, err
}

// eachRow parses the file at path and calls fn for every row's op.
func eachRow(path string, infos batch.Targets, fn func(batch.Row) error) error {
	p, done, err := openParser(path, infos)
	if err != nil {
		return err
	}
	defer done()
	p.OpsOnly()
	return p.Each(fn)
}

// openParser opens the input at path for one more pass; done closes it.
func openParser(path string, infos batch.Targets) (*batch.Parser, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := batch.NewParser(f, infos)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return p, func() { p.Close(); f.Close() }, nil
}

// refuseInvalid sends nothing and exits 2. When the directory is new it
// also writes a report marking every problem; an earlier run's report is
// never overwritten.
func refuseInvalid(o *runOptions, in *input, infos batch.Targets, v validation, writeNew bool) error {
	where := "the problems are listed above"
	if writeNew {
		if err := os.MkdirAll(o.reportDir, 0o755); err != nil {
			return badInput("report directory: %v", err)
		}
		_, err := writeReport(o.reportDir, in.path, infos, nil, o.includes, "not sent: the file has invalid rows (fix them, or run with --skip-invalid)",
			reports.Run{StartedAt: time.Now(), FinishedAt: time.Now(), DryRun: o.dryRun})
		if err != nil {
			return &exitError{code: exitBadInput, err: err}
		}
		where = "report: " + filepath.Join(o.reportDir, "report.csv")
	}
	return badInput("%d of %d rows are invalid; nothing was sent. Fix them (%s), or use --skip-invalid to send the %d valid rows",
		v.invalid, v.invalid+v.valid, where, v.valid)
}

// buildTargets makes each configured target's adapter and pacing.
// rateShare is the part of each target's rate this process may use.
func (o *runOptions) rateShare() float64 {
	if o.shard.Count > 1 && !o.shardFullRate {
		return 1 / float64(o.shard.Count)
	}
	return 1
}

// includes reports whether op is this process's to run (its shard's).
func (o *runOptions) includes(op batch.Op) bool { return o.shard.Includes(op.Target, op.User) }

func buildTargets(cfg *config, client *http.Client, share float64) (map[string]*batch.Target, error) {
	if client == nil {
		client = newHTTPClient()
	}
	targets := map[string]*batch.Target{}
	for name, tc := range cfg.Targets {
		s := tc.Settings
		s.Client = client
		a, err := adapters.New(tc.Vendor, s)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: target %s: %v", "config", tc.Line, name, err)
		}
		targets[name] = &batch.Target{
			Name:            name,
			Adapter:         a,
			Limiter:         rate.NewLimiter(rate.Limit(tc.Rate), tc.Burst),
			Concurrency:     tc.Concurrency,
			AutoConcurrency: tc.AutoConcurrency,
			Timeout:         tc.Timeout,
		}
	}
	return targets, nil
}

// newHTTPClient is shared by every target; each adapter uses a copy that
// does not follow redirects (httpcall.NoRedirects).
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr}
}

// applyAll runs every row not yet settled. It returns whether the run was
// stopped by a signal.
func applyAll(ctx context.Context, o *runOptions, log zerolog.Logger, targets map[string]*batch.Target,
	infos batch.Targets, in *input, j *batch.Journal, st *batch.JournalState, total int) (bool, error) {
	if err := j.Started(time.Now()); err != nil {
		return false, err
	}
	skip, err := settleInFlight(j, st, targets)
	if err != nil {
		return false, err
	}
	p, done, err := openParser(in.path, infos)
	if err != nil {
		return false, err
	}
	defer done()
	p.OpsOnly()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	stopped := watchSignals(o, log, stop, cancel)
	r := &batch.Runner{Targets: targets, DryRun: o.dryRun, Workers: o.workers, Stop: stop, Log: log}
	sink := newProgress(j, log, total)
	err = r.Run(ctx, pending(p, func(row batch.Row) bool { return o.includes(row.Op) && !skip(row.Index) }), sink)
	return stopped(), err
}

// pending yields the valid rows that want reports true for.
func pending(p *batch.Parser, want func(batch.Row) bool) batch.Source {
	return func() (batch.Op, error) {
		for {
			row, err := p.Next()
			if err != nil {
				return batch.Op{}, err
			}
			if row.Valid() && want(row) {
				return row.Op, nil
			}
		}
	}
}

// settleInFlight ends the rows a dead run left in flight that must not be
// sent again (toggles): they are unknown. Idempotent ones are simply sent
// again. It returns which rows need no sending.
func settleInFlight(j *batch.Journal, st *batch.JournalState, targets map[string]*batch.Target) (func(int) bool, error) {
	if st == nil {
		return func(int) bool { return false }, nil
	}
	for i, res := range st.InFlight {
		t, ok := targets[res.Target]
		if ok && t.Adapter.Idempotent(res.Action) {
			continue
		}
		res.Outcome, res.ErrorCode = batch.Unknown, "interrupted"
		res.Detail = "interrupted after the request may have been sent; check by hand"
		res.FinishedAt = time.Now().UTC()
		if err := j.Result(res); err != nil {
			return nil, err
		}
		st.InFlight[i] = res
	}
	return func(i int) bool {
		if st.Settled(i) {
			return true
		}
		res, inFlight := st.InFlight[i]
		return inFlight && res.Outcome == batch.Unknown
	}, nil
}

// watchSignals turns the first SIGINT/SIGTERM into a graceful stop (no new
// rows; rows in flight get --grace to finish) and a second into an
// immediate one. It returns a func reporting whether a stop happened.
func watchSignals(o *runOptions, log zerolog.Logger, stop chan struct{}, cancel context.CancelFunc) func() bool {
	sigs := o.signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		sigs = ch
	}
	got := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-stop:
			return
		}
		close(got)
		log.Warn().Dur("grace", o.grace).Msg("stopping: no new rows; rows in flight may finish (signal again to stop at once)")
		close(stop)
		t := time.NewTimer(o.grace)
		defer t.Stop()
		select {
		case <-sigs:
			log.Warn().Msg("stopping at once")
		case <-t.C:
			log.Warn().Msg("grace period over: abandoning rows in flight")
		}
		cancel()
	}()
	return func() bool {
		select {
		case <-got:
			return true
		default:
			return false
		}
	}
}

// finish writes the report from the journal and prints the summary.
func finish(o *runOptions, in *input, infos batch.Targets, run reports.Run) error {
	idx, err := batch.OpenOutcomeIndex(filepath.Join(o.reportDir, batch.JournalName))
	if err != nil {
		return &exitError{code: exitStopped, err: fmt.Errorf("reading the journal for the report: %v", err)}
	}
	defer idx.Close()
	notRun := "not started: the run stopped first; run the same command with --resume"
	sum, err := writeReport(o.reportDir, in.path, infos, idx, o.includes, notRun,
		run)
	if err != nil {
		return &exitError{code: exitStopped, err: fmt.Errorf("writing the report: %v\nthe journal is consistent: free space or fix permissions, then run the same command with --resume", err)}
	}
	sum.WriteTable(o.stderr)
	fmt.Fprintf(o.stdout, "report: %s\n", o.reportDir)
	if run.Stopped {
		fmt.Fprintf(o.stderr, "stopped before finishing: to finish, run the same command again with --resume\n")
	}
	if sum.ExitCode != exitOK {
		return &exitError{code: sum.ExitCode, err: errors.New("")}
	}
	return nil
}

// writeReport replays the input against the recorded outcomes into dir.
func writeReport(dir, inputPath string, infos batch.Targets, idx *batch.OutcomeIndex, include func(batch.Op) bool,
	notRun string, run reports.Run) (*reports.Summary, error) {
	p, done, err := openParser(inputPath, infos)
	if err != nil {
		return nil, err
	}
	defer done()
	w, err := reports.Create(dir, p.Header())
	if err != nil {
		return nil, err
	}
	err = batch.Replay(p, idx, include, notRun, w.Write)
	sum, cerr := w.Close(run)
	if err != nil {
		return nil, err
	}
	return sum, cerr
}
