package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/batch"
)

type validateOptions struct {
	*globalOptions
	configPath string
	input      string
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	o := &validateOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "validate [-c targets.yaml] ops.csv",
		Short: "Parse and validate an operations CSV; print every problem with its line",
		Long: `Parse and validate every row and print every problem with its line, column,
what was wrong and what is accepted. With -c, targets and the actions their
vendors support are checked too. Exit 0 when every row is valid, 2 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.input = args[0]
			return validateRun(o)
		},
	}
	cmd.Flags().StringVarP(&o.configPath, "config", "c", "", "targets config (YAML), to check targets and actions")
	return cmd
}

func validateRun(o *validateOptions) error {
	var infos batch.Targets
	if o.configPath != "" {
		cfg, err := loadConfig(o.configPath)
		if err != nil {
			return &exitError{code: exitBadInput, err: err}
		}
		// Build the adapters too: a missing credential is a config error
		// that validate should catch before a run does.
		if _, err := buildTargets(cfg, nil, 1); err != nil {
			return &exitError{code: exitBadInput, err: err}
		}
		infos = cfg.targetInfos()
	}
	in, err := openInput(o.input, o.stdin)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer in.cleanup()
	v, err := validateInput(in.path, infos, o.stdout, 0)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	fmt.Fprintf(o.stdout, "%d rows: %d valid, %d invalid\n", v.valid+v.invalid, v.valid, v.invalid)
	if v.invalid > 0 {
		return &exitError{code: exitBadInput, err: fmt.Errorf("%d invalid rows", v.invalid)}
	}
	return nil
}
