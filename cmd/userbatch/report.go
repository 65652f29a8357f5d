package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

func newReportCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Work with report directories",
		Args:  cobra.NoArgs,
	}
	var out string
	merge := &cobra.Command{
		Use:   "merge -o OUT DIR...",
		Short: "Join the report directories of the shards of one file into one report, in input order",
		Long: `Join the report directories that 'run --shard K/N' wrote for the shards of one
file: report.csv, failed.csv and check.csv in input order, undo.csv in reverse
input order, summary.json added up (latency percentiles are the highest
shard's: they cannot be added), and report.html. Refuses (exit 2) a missing or
repeated shard, reports of different inputs or configs, and an OUT that is
not empty.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return mergeRun(g, out, args)
		},
	}
	merge.Flags().StringVarP(&out, "output", "o", "", "directory for the merged report (new or empty); required")
	_ = merge.MarkFlagRequired("output")
	cmd.AddCommand(merge)
	return cmd
}

// mergeRun holds every directory's lock while it merges: a shard still
// running, or a second merge into the same OUT, is refused.
func mergeRun(g *globalOptions, out string, dirs []string) error {
	ls, err := g.logger()
	if err != nil {
		return err
	}
	locked := map[string]bool{}
	for i, d := range append([]string{out}, dirs...) {
		// A directory given twice is locked once; the merge refuses the
		// repeat itself, with the right reason.
		if abs, err := filepath.Abs(d); err == nil {
			if locked[abs] {
				continue
			}
			locked[abs] = true
		}
		lock := job.LockExistingDir
		if i == 0 {
			lock = job.LockDir
		}
		l, err := lock(d)
		if err != nil {
			return &job.Error{Code: reports.ExitBadInput, Err: err}
		}
		defer l.Unlock()
		if i == 0 {
			l.CleanUp(ls.log) // what a merge killed here left
		}
	}
	sum, err := reports.Merge(out, dirs)
	if errors.Is(err, reports.ErrMergeRefused) {
		return &job.Error{Code: reports.ExitBadInput, Err: err}
	}
	if err != nil {
		return &job.Error{Code: reports.ExitStopped, Err: err}
	}
	sum.WriteTable(g.stderr)
	fmt.Fprintf(g.stdout, "report: %s\n", out)
	return nil
}
