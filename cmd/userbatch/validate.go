package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

type validateOptions struct {
	*globalOptions
	configPath string
	delimiter  string
	tz         string
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	o := &validateOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "validate [-c targets.yaml] ops.csv",
		Short: "Parse and validate an operations CSV; print every problem with its line",
		Long: `Parse and validate every row and print every problem with its line, column,
what was wrong and what is accepted. With -c, targets and the actions their
vendors support are checked too, and users are compared as their vendor
compares them. Rows of one user and effective_at that contradict each other
are invalid ("conflicts with line N"); an exact repeat of an earlier row is
listed ("duplicate of line N": a run skips it). Exit 0 when every row is
valid, 2 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateRun(o, args[0])
		},
	}
	cmd.Flags().StringVarP(&o.configPath, "config", "c", "", "targets config (YAML), to check targets and actions")
	cmd.Flags().StringVar(&o.delimiter, "delimiter", "", "the input's delimiter: , ; or tab (default: told from the header line)")
	cmd.Flags().StringVar(&o.tz, "tz", "UTC", "the IANA zone of effective_at dates without a time")
	return cmd
}

func validateRun(o *validateOptions, input string) error {
	var infos batch.Targets
	if o.configPath != "" {
		cfg, err := config.Load(o.configPath)
		if err != nil {
			return &job.Error{Code: reports.ExitBadInput, Err: err}
		}
		// Build the adapters too: a missing credential is a config error
		// that validate should catch before a run does.
		if _, err := cfg.Runtime(nil, 1); err != nil {
			return &job.Error{Code: reports.ExitBadInput, Err: err}
		}
		infos = cfg.Infos()
	}
	po, err := parseOptions(o.delimiter, o.tz)
	if err != nil {
		return err
	}
	v, err := job.ValidateFile(input, o.stdin, infos, po, o.stdout)
	if err != nil {
		return &job.Error{Code: reports.ExitBadInput, Err: err}
	}
	fmt.Fprintf(o.stdout, "%s: %d valid, %d invalid", batch.CountRows(v.Valid+v.Invalid), v.Valid, v.Invalid)
	if v.Duplicates > 0 {
		fmt.Fprintf(o.stdout, "; %d of the valid rows repeat an earlier row and end skipped", v.Duplicates)
	}
	fmt.Fprintln(o.stdout)
	if v.Invalid > 0 {
		return job.BadInput("%s", batch.Count(v.Invalid, "invalid row"))
	}
	return nil
}
