package main

import (
	"fmt"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/adapters"
)

func newVendorsCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "vendors",
		Short: "List the vendor adapters, their actions, what they read back and their config keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return vendorsRun(g)
		},
	}
}

func vendorsRun(g *globalOptions) error {
	for _, v := range adapters.Vendors {
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\t%s\n", v.Name, v.Summary)
		actions := make([]string, len(v.Actions))
		for i, a := range v.Actions {
			actions[i] = string(a)
		}
		fmt.Fprintf(tw, "  actions\t%s\n", strings.Join(actions, ", "))
		fmt.Fprintf(tw, "  reads\t%s\n", v.Reads)
		fmt.Fprintf(tw, "  credentials\t%s\n", strings.Join(v.Credentials, ", "))
		keys := "none"
		if len(v.Keys) > 0 {
			keys = strings.Join(v.Keys, ", ")
		}
		fmt.Fprintf(tw, "  vendor keys\t%s\n", keys)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(g.stdout)
	}
	fmt.Fprintf(g.stdout, "Every target also takes: %s\n", strings.Join(config.CommonKeys(), ", "))
	return nil
}
