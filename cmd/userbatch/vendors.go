package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/adapters"
	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
)

func newVendorsCmd(g *globalOptions) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "vendors [-c targets.yaml]",
		Short: "List the vendor adapters, their actions, what they read back and their config keys",
		Long: `List the vendor adapters, their actions, what they read back and their config
keys. With -c, list the config's targets instead: each http target with its spec
and what the spec can do. 'userbatch vendors check SPEC' checks a spec.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath != "" {
				return vendorsTargets(g, configPath)
			}
			return vendorsRun(g)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "targets config (YAML): list its targets")
	cmd.AddCommand(newVendorsCheckCmd(g))
	return cmd
}

func newVendorsCheckCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check SPEC",
		Short: "Check a vendor spec (a path, or builtin:NAME) and print what it can do",
		Long: `Load a vendor spec as a run would, refuse it with the line and column of what is
wrong, or print what it can do: its actions (idempotent or not, the requests each
sends, the columns each reads, its undo), what it reads back, its config keys
and its identity rules. README: Add a vendor without Go.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := declarative.Open(args[0])
			if err != nil {
				return job.BadInput("%v", err)
			}
			return describeSpec(g.stdout, spec)
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
		if v.Name == adapters.HTTP {
			actions = []string{"the ones its spec describes (built in: " + strings.Join(declarative.Builtins(), ", ") + ")"}
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

// vendorsTargets lists a config's targets; an http target with its spec.
func vendorsTargets(g *globalOptions, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return job.BadInput("%v", err)
	}
	for _, name := range cfg.Names() {
		t := cfg.Targets[name]
		if t.Spec == nil {
			v, _ := adapters.Lookup(t.Vendor)
			fmt.Fprintf(g.stdout, "%s\tvendor %s: %s\n\n", name, t.Vendor, v.Summary)
			continue
		}
		fmt.Fprintf(g.stdout, "%s\tvendor http, spec %s\n", name, t.SpecRef())
		if err := describeSpec(g.stdout, t.Spec); err != nil {
			return err
		}
		fmt.Fprintln(g.stdout)
	}
	return nil
}

// describeSpec prints what a spec can do.
func describeSpec(w io.Writer, s *declarative.Spec) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  vendor\t%s\t%s\n", s.Vendor(), s.Summary())
	var keys []string
	for _, k := range s.Keys() {
		required, secret := s.KeyInfo(k)
		var attrs []string
		if required {
			attrs = append(attrs, "required")
		}
		if secret {
			attrs = append(attrs, "secret")
		}
		if len(attrs) > 0 {
			k += " (" + strings.Join(attrs, ", ") + ")"
		}
		keys = append(keys, k)
	}
	fmt.Fprintf(tw, "  config keys\t%s\n", strings.Join(keys, ", "))
	fmt.Fprintf(tw, "  identity\t%s\n", describeIdentity(s))
	fmt.Fprintf(tw, "  reads\t%s\n", s.Reads())
	fmt.Fprintf(tw, "  own answers\t%s\n", s.OwnAnswers())
	for _, a := range s.Describe() {
		idem := "idempotent"
		if !a.Idempotent {
			idem = "NOT idempotent: never resent once it may have arrived"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", a.Action, idem)
		for _, r := range a.Requests {
			fmt.Fprintf(tw, "  \t  sends %s\n", r)
		}
		if len(a.Columns) > 0 {
			fmt.Fprintf(tw, "  \t  columns %s\n", strings.Join(a.Columns, ", "))
		}
		if len(a.Undo) > 0 {
			fmt.Fprintf(tw, "  \t  undo %s\n", strings.Join(a.Undo, "; "))
		}
	}
	return tw.Flush()
}

func describeIdentity(s *declarative.Spec) string {
	prefixes, fold := s.IdentityRules()
	var parts []string
	if len(prefixes) > 0 {
		parts = append(parts, "id-form prefixes "+strings.Join(prefixes, " "))
	}
	if fold {
		parts = append(parts, "ids ignore case")
	}
	if len(parts) == 0 {
		return "user cells compared as written"
	}
	return strings.Join(parts, "; ")
}
