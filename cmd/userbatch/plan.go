package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

func newPlanCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "plan -c targets.yaml -o PLAN_DIR ops.csv",
		Short: "Read current state and save what a run would change, for review; sends no change",
		Long: `Validate, read every user's current state where the vendor allows (paced like a
run), and save the plan in PLAN_DIR: plan.csv (the input's columns and a
"change" column: would change, no change, unknown state, invalid, protected,
not due), plan.json (the input's and config's fingerprints, counts by target
and action, the plan's own SHA-256), a copy of the input, and report.csv as a
dry run writes it. Review plan.csv, then: userbatch apply -c targets.yaml -o REPORT_DIR PLAN_DIR`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			jo, ls, err := o.load(args[0])
			if err != nil {
				return err
			}
			jo.Observers = o.observers(ls, jo)
			return job.MakePlan(cmd.Context(), jo)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "targets config (YAML); required")
	f.StringVarP(&o.reportDir, "output", "o", "", "plan directory (created 0700); required")
	f.StringVar(&o.delimiter, "delimiter", "", "the input's delimiter: , ; or tab (default: told from the header line)")
	f.StringVar(&o.tz, "tz", "UTC", "the IANA zone in which an effective_at date without a time means midnight")
	f.StringVar(&o.shardFlag, "shard", "", "plan only shard K/N of the file")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "plan the valid rows even if some rows are invalid")
	actorFlag(cmd, &o.actor)
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func newApplyCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{globalOptions: g}
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "apply -c targets.yaml -o REPORT_DIR PLAN_DIR",
		Short: "Apply exactly a saved plan: refuses a changed input or config, or a stale plan",
		Long: `Apply the plan in PLAN_DIR (made by userbatch plan) and write the report to
REPORT_DIR as run does. Refuses (exit 2, nothing sent) when the input file or
the config's targets changed since the plan, or the plan is older than
--max-age. Rows the plan found in state end already, unsent; a readable user is
read again right before its write, and one whose state moved since the plan
ends skipped (drifted), unsent. Guards, journal, --resume and the lock work as
for run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return applyRun(cmd.Context(), o, args[0], maxAge)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "targets config (YAML); required")
	f.StringVarP(&o.reportDir, "output", "o", "", "report directory (created 0700 if missing); required")
	f.DurationVar(&maxAge, "max-age", 24*time.Hour, "refuse a plan older than this")
	f.BoolVar(&o.resume, "resume", false, "continue the interrupted apply recorded in REPORT_DIR's journal")
	f.BoolVar(&o.excel, "excel", false, "write the CSV reports for Excel: a UTF-8 byte order mark, and the input's delimiter (; or tab)")
	f.DurationVar(&o.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long requests in flight may take to finish")
	o.guardFlags(cmd)
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func applyRun(ctx context.Context, o *runOptions, planDir string, maxAge time.Duration) error {
	if maxAge <= 0 {
		return job.BadInput("--max-age %v: must be above 0, such as 24h", maxAge)
	}
	jo, ls, err := o.load("-")
	if err != nil {
		return err
	}
	sp, err := job.LoadPlan(planDir, jo.Args, jo.Now(), maxAge)
	if err != nil {
		return err
	}
	jo.Plan, jo.Input = sp, sp.InputPath()
	jo.Prompt = o.prompt(jo.Input, jo.Stderr) // the input is a file: a person may be asked
	if jo.Shard, err = sp.Shard(); err != nil {
		return err
	}
	jo.Observers = o.observers(ls, jo)
	return job.Run(ctx, jo)
}

// load reads the config and turns the flags into the run's options.
func (o *runOptions) load(input string) (job.Options, logSetup, error) {
	ls, err := o.logger()
	if err != nil {
		return job.Options{}, ls, err
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return job.Options{}, ls, &job.Error{Code: reports.ExitBadInput, Err: err}
	}
	jo, err := o.jobOptions(cfg, ls, input)
	return jo, ls, err
}
