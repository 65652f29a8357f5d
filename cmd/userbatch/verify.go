package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

type verifyOptions struct {
	*globalOptions
	configPath string
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	o := &verifyOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "verify -c targets.yaml REPORT_DIR",
		Short: "Read back every user of a finished run and say which are no longer as the report says",
		Long: `Read the current state of every row's user in REPORT_DIR's report.csv where
the vendor allows (kii, msgkart, scim, and http targets whose spec reads
state: 'userbatch vendors -c' says which), paced like a run, and write
REPORT_DIR/verify.csv: ` + strings.Join(job.VerifyColumns, ",") + `.
The verdict is ok (the user is as the row asked, or the row claimed no change),
drift (the report says applied or already, and the user is not so now) or
unreadable (the vendor cannot read state, or the read failed). verify sends no
change. Exit 1 when any row drifted, 2 when REPORT_DIR holds no finished report
or the config's targets are not the ones the run used.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), o, args[0])
		},
	}
	cmd.Flags().StringVarP(&o.configPath, "config", "c", "", "targets config (YAML) the run used; required")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runVerify(ctx context.Context, o *verifyOptions, dir string) error {
	ls, err := o.logger()
	if err != nil {
		return err
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return &job.Error{Code: reports.ExitBadInput, Err: err}
	}
	ctx, stop := o.catcher.untilSignal(ctx)
	defer stop()
	return job.Verify(ctx, job.VerifyOptions{Config: cfg, ReportDir: dir, Workers: o.workers,
		Log: ls.log, Stdout: o.stdout})
}
