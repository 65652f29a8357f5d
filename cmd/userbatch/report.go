package main

import (
	"fmt"

	"github.com/spf13/cobra"

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
file: report.csv, failed.csv and undo.csv in input order, summary.json added up
(latency percentiles are the highest shard's: they cannot be added).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sum, err := reports.Merge(out, args)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			sum.WriteTable(g.stderr)
			fmt.Fprintf(g.stdout, "report: %s\n", out)
			return nil
		},
	}
	merge.Flags().StringVarP(&out, "output", "o", "", "directory for the merged report; required")
	_ = merge.MarkFlagRequired("output")
	cmd.AddCommand(merge)
	return cmd
}
