package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/http/httptest"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
)

// demoCSV is testdata/demo.csv, built in so the demo needs no files.
//
//go:embed testdata/demo.csv
var demoCSV []byte

type demoOptions struct {
	*globalOptions
	reportDir string
}

func newDemoCmd(g *globalOptions) *cobra.Command {
	o := &demoOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "demo [-o DIR]",
		Short: "Run the built-in demo: every fake vendor in-process on loopback, testdata/demo.csv through the real pipeline",
		Long: `Start every fake vendor in-process on loopback (with a few scripted faults: a 503,
a 429 with Retry-After, an unknown user, a user who already has the role), run
testdata/demo.csv through the real pipeline, print the summary and where the
report is. No config, no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demoRun(cmd, o)
		},
	}
	cmd.Flags().StringVarP(&o.reportDir, "output", "o", "", "report directory (default: a new temporary directory)")
	return cmd
}

func demoRun(cmd *cobra.Command, o *demoOptions) error {
	ls, err := o.logger()
	if err != nil {
		return err
	}
	if o.reportDir == "" {
		if o.reportDir, err = os.MkdirTemp("", "userbatch-demo-"); err != nil {
			return err
		}
	}
	fakes := newFakeVendors(false)
	fakes.seedDemo()
	srv := httptest.NewServer(fakes.handler()) // loopback only
	defer srv.Close()

	cfg, err := config.Parse([]byte(fakes.targetsYAML(srv.URL, 20)), noEnv)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	fmt.Fprintf(o.stderr, "demo: fake vendors on %s; running %d rows of testdata/demo.csv\n", srv.URL, bytes.Count(demoCSV, []byte("\n"))-1)
	err = job.Run(cmd.Context(), job.Options{Config: cfg, ConfigPath: "(built-in demo config)", Input: "-",
		Stdin: bytes.NewReader(demoCSV), ReportDir: o.reportDir, Grace: 5 * time.Second, Log: ls.log, Mute: ls.mute,
		Console: ls.console, Stdout: o.stdout, Stderr: o.stderr, Command: o.commandLine()})
	if job.Exit(err) == job.ExitIncomplete {
		// The demo fails some rows on purpose; that is its success.
		return nil
	}
	return err
}

func noEnv(string) (string, bool) { return "", false }
