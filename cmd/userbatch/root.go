package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/reports"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes, as SPEC.md defines them.
const (
	exitOK         = reports.ExitOK
	exitIncomplete = reports.ExitIncomplete
	exitBadInput   = reports.ExitBadInput
	exitStopped    = reports.ExitStopped
)

// exitError carries an exit code up through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return &exitError{code: exitBadInput, err: fmt.Errorf(format, args...)}
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	logFormat string
	logLevel  string
	// workers caps requests in flight across all targets (0: no cap).
	workers int
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--version" { // on every command, not only the root
			fmt.Fprintln(stdout, "userbatch version", version)
			return exitOK
		}
	}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "userbatch:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown flags, wrong argument counts.
	fmt.Fprintln(stderr, "userbatch:", err)
	return exitBadInput
}

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "userbatch",
		Short:         "Apply bulk user status and role changes from a CSV across vendors' admin APIs",
		Long:          "userbatch validates every row of an operations CSV, applies the changes through each\nvendor's admin API at a paced rate, and writes a report that accounts for every row.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.logFormat, "log-format", "", "log format: console or json (default: console on a terminal, json otherwise)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.IntVar(&g.workers, "workers", 0, "most requests in flight across all targets (0: each target's concurrency alone)")
	root.AddCommand(newRunCmd(g), newValidateCmd(g), newDemoCmd(g), newSandboxCmd(g), newVendorsCmd(g), newReportCmd(g))
	return root
}

// logger builds the logger the flags ask for. Logs go to stderr; stdout is
// for what the operator asked to see.
func (g *globalOptions) logger() (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(strings.ToLower(g.logLevel))
	if err != nil || g.logLevel == "" {
		return zerolog.Nop(), badInput("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	format := g.logFormat
	if format == "" {
		format = "json"
		if f, ok := g.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	// Workers log concurrently: one locked writer keeps lines whole.
	out := zerolog.SyncWriter(g.stderr)
	var w io.Writer
	switch format {
	case "json":
		w = out
	case "console":
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05"}
	default:
		return zerolog.Nop(), badInput("--log-format %q: use console or json", g.logFormat)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}
