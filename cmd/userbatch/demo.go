package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

// demoCSV is testdata/demo.csv, built in so the demo needs no files.
//
//go:embed testdata/demo.csv
var demoCSV []byte

type demoOptions struct {
	*globalOptions
	reportDir string
	actor     string
}

func newDemoCmd(g *globalOptions) *cobra.Command {
	o := &demoOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "demo [-o DIR]",
		Short: "Run the built-in demo: every fake vendor in-process on loopback, testdata/demo.csv through the real pipeline",
		Long: `Start every fake vendor in-process on loopback, a SCIM 2.0 provider among them
(target saas), with a few scripted faults: a 503, a 429 with Retry-After, an
unknown user, users already in the state asked for, and a row whose
effective_at has not come (not_due). Run testdata/demo.csv through the real
pipeline with a ledger (ledger.db in the report directory), print the summary
and where the report is. No config, no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demoRun(cmd, o)
		},
	}
	cmd.Flags().StringVarP(&o.reportDir, "output", "o", "", "report directory (default: a new temporary directory)")
	actorFlag(cmd, &o.actor)
	return cmd
}

func demoRun(cmd *cobra.Command, o *demoOptions) error {
	ls, err := o.logger()
	if err != nil {
		return err
	}
	actor, err := resolveActor(o.actor)
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
	for _, name := range cfg.Names() {
		if t := cfg.Targets[name]; t.Spec != nil {
			fmt.Fprintf(o.stderr, "demo: target %s is %s described by a spec (%s): README, Add a vendor without Go\n", name, t.Spec.Vendor(), t.SpecRef())
		}
	}
	// Set here, not in the YAML: the directory is the user's, any characters.
	cfg.Ledger = "sqlite:" + filepath.Join(o.reportDir, demoLedger)
	fmt.Fprintf(o.stderr, "demo: fake vendors on %s; running %s of testdata/demo.csv\n", srv.URL, batch.CountRows(bytes.Count(demoCSV, []byte("\n"))-1))
	jo := job.Options{Args: job.Args{Config: cfg, ConfigPath: "(built-in demo config)", Input: "-", ReportDir: o.reportDir,
		Grace: 5 * time.Second, Command: o.commandLine(), Actor: actor},
		Stdin: bytes.NewReader(demoCSV), Log: ls.log, Mute: ls.mute, Console: ls.console, Stdout: o.stdout, Stderr: o.stderr,
		Signals: o.catcher.signals()}
	jo.Observers = job.Observers{job.NewProgressLog(ls.log, ls.bar == nil)}
	if ls.bar != nil { // on a terminal: the live display, messages above it
		jo.Observers, jo.Stderr = append(jo.Observers, job.NewBarView(ls.bar)), ls.bar
	}
	err = job.Run(cmd.Context(), jo)
	if job.Exit(err) == reports.ExitIncomplete {
		// The demo fails some rows on purpose; that is its success.
		err = nil
	}
	if err == nil {
		fmt.Fprintf(o.stderr, "ledger: %s (what was changed, remembered across runs)\n", filepath.Join(o.reportDir, demoLedger))
	}
	return err
}

// demoLedger is the demo's ledger file, in its report directory.
const demoLedger = "ledger.db"

func noEnv(string) (string, bool) { return "", false }
