package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

type runOptions struct {
	*globalOptions
	configPath    string
	reportDir     string
	dryRun        bool
	resume        bool
	skipInvalid   bool
	excel         bool
	delimiter     string
	tz            string
	catchUp       time.Duration
	grace         time.Duration
	shardFlag     string
	shardFullRate bool
	metricsFile   string
	maxChanges    int
	canary        int
	yes           bool
	actor         string
	// client, when set, is the HTTP client for every target (demo, tests).
	client *http.Client
}

func newRunCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "run -c targets.yaml -o REPORT_DIR ops.csv",
		Short: "Validate, then apply every row of an operations CSV ('-' reads stdin)",
		Long: `Validate every row, then apply the changes through each target's vendor API,
paced per target, and write report.csv, summary.json, failed.csv, check.csv,
undo.csv and report.html to REPORT_DIR. A file with any invalid row sends
nothing (see --skip-invalid). A dry run's files in REPORT_DIR are moved to
REPORT_DIR/dry-run when the real run starts there.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "targets config (YAML); required")
	f.StringVarP(&o.reportDir, "output", "o", "", "report directory (created 0700 if missing); required")
	f.BoolVar(&o.dryRun, "dry-run", false, "read current state where the vendor allows and report the plan; send no change")
	f.BoolVar(&o.resume, "resume", false, "continue the interrupted run recorded in REPORT_DIR's journal")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "send the valid rows even if some rows are invalid (those are reported invalid)")
	f.BoolVar(&o.excel, "excel", false, "write the CSV reports for Excel: a UTF-8 byte order mark (non-ASCII names show right) and the input's delimiter (; or tab), so they open in columns")
	f.StringVar(&o.delimiter, "delimiter", "", "the input's delimiter: , ; or tab (default: told from the header line)")
	f.StringVar(&o.tz, "tz", "UTC", "the IANA zone in which an effective_at date without a time (YYYY-MM-DD) means midnight, e.g. Europe/Berlin")
	f.DurationVar(&o.catchUp, "catch-up", 0, "run a due row only if its effective_at passed at most this long ago (e.g. 72h); later ones end skipped (default: no limit)")
	f.DurationVar(&o.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long requests in flight may take to finish")
	f.StringVar(&o.shardFlag, "shard", "", "process only shard K/N: the rows whose (target, user) hashes to K of N (e.g. $(JOB_COMPLETION_INDEX)/8)")
	f.BoolVar(&o.shardFullRate, "shard-full-rate", false, "with --shard, give this shard each target's whole rate (default: rate divided by N)")
	o.guardFlags(cmd)
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// guardFlags are run's and apply's protection against a wrong mass change,
// and the metrics file a scheduled run leaves.
func (o *runOptions) guardFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&o.maxChanges, "max-changes", 0, "hold the run (exit 4, nothing sent) when more rows would change (0: no limit; targets' max_changes still apply)")
	f.StringVar(&o.metricsFile, "metrics-file", "", "write the run's metrics here at its end, in Prometheus text format (for node_exporter's textfile collector)")
	f.IntVar(&o.canary, "canary", 0, "apply the first N changing rows, read them back, and go on only if all of them took (else exit 3, resumable)")
	f.BoolVar(&o.yes, "yes", false, "on a terminal, do not ask to confirm the number of changes")
	actorFlag(cmd, &o.actor)
}

func runRun(ctx context.Context, o *runOptions, input string) error {
	jo, ls, err := o.load(input)
	if err != nil {
		return err
	}
	jo.Observers = o.observers(ls, jo)
	return job.Run(ctx, jo)
}

// observers are what watch a run: the progress log, the live bar on a
// terminal, and the metrics file and the webhook when asked for.
func (o *runOptions) observers(ls logSetup, jo job.Options) job.Observers {
	obs := job.Observers{job.NewProgressLog(ls.log, ls.bar == nil)}
	if ls.bar != nil {
		obs = append(obs, job.NewBarView(ls.bar))
	}
	if o.metricsFile != "" {
		var labels map[string]string
		if jo.Shard.Count > 1 {
			labels = map[string]string{"shard": jo.Shard.String()}
		}
		obs = append(obs, job.NewMetricsFile(o.metricsFile, labels, ls.log))
	}
	if jo.Config.Webhook != "" {
		obs = append(obs, job.NewWebhook(jo.Config.Webhook, jo.ReportDir, ls.log, job.DefaultNotifyTiming()))
	}
	return obs
}

// jobOptions turns the flags into the run's options.
func (o *runOptions) jobOptions(cfg *config.Config, ls logSetup, input string) (job.Options, error) {
	jo := job.Options{Args: job.Args{Config: cfg, ConfigPath: o.configPath, Input: input, ReportDir: o.reportDir,
		DryRun: o.dryRun, Resume: o.resume, SkipInvalid: o.skipInvalid, Excel: o.excel, Grace: o.grace,
		ShardFullRate: o.shardFullRate, Workers: o.workers, Command: o.commandLine(), CatchUp: o.catchUp,
		MaxChanges: o.maxChanges, Canary: o.canary, Yes: o.yes},
		Client: o.client, Signals: o.catcher.signals(), Log: ls.log, Mute: ls.mute, Console: ls.console,
		Stdin: o.stdin, Stdout: o.stdout, Stderr: o.stderr}
	if ls.bar != nil { // messages go above the live progress, as the log does
		jo.Stderr = ls.bar
	}
	jo.Prompt = o.prompt(input, jo.Stderr)
	var err error
	if jo.Actor, err = resolveActor(o.actor); err != nil {
		return jo, err
	}
	if jo.Clock, err = clockFromEnv(); err != nil {
		return jo, err
	}
	if o.shardFlag != "" {
		if jo.Shard, err = batch.ParseShard(o.shardFlag); err != nil {
			return jo, &job.Error{Code: reports.ExitBadInput, Err: err}
		}
	}
	if jo.Parse, err = parseOptions(o.delimiter, o.tz); err != nil {
		return jo, err
	}
	return jo, nil
}

// prompt asks on out when a person at a terminal can answer, reading the
// answer from stdin, or, when stdin is the input, from the terminal itself
// (/dev/tty) if the question shows on one (stderr); nil when nobody can:
// never a cron job, which has no terminal.
func (o *runOptions) prompt(input string, out io.Writer) *job.Prompt {
	if input != "-" {
		if !isTerminal(o.stdin) {
			return nil
		}
		return job.NewPrompt(out, o.stdin)
	}
	if _, ok := o.stdin.(*os.File); !ok || !isTerminal(o.stderr) {
		return nil
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return nil // no controlling terminal
	}
	if !isatty.IsTerminal(tty.Fd()) {
		tty.Close()
		return nil
	}
	return job.NewPrompt(out, tty) // read until the process ends
}

// isTerminal reports whether r is a terminal a person types at.
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// nowEnv names the variable that moves the run's clock to another time
// (RFC 3339): rehearsals, and tests of effective dates, without waiting for
// the day. Pacing still runs in real time.
const nowEnv = "USERBATCH_NOW"

func clockFromEnv() (batch.Clock, error) {
	v := os.Getenv(nowEnv)
	if v == "" {
		return nil, nil
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, job.BadInput("%s=%q: want an RFC 3339 time such as 2026-12-01T02:00:00Z", nowEnv, v)
	}
	return batch.ShiftedClock{Offset: time.Until(at)}, nil
}

// parseOptions reads the flags that say how to read the input.
func parseOptions(delimiter, tz string) (job.ParseOptions, error) {
	var po job.ParseOptions
	if tz != "" && tz != "UTC" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return po, job.BadInput("--tz %q: not an IANA zone such as Europe/Berlin or America/New_York", tz)
		}
		po.Location = loc
	}
	if delimiter != "" {
		d, err := batch.ParseDelimiter(delimiter)
		if err != nil {
			return po, &job.Error{Code: reports.ExitBadInput, Err: err}
		}
		po.Delimiter = d
	}
	return po, nil
}
