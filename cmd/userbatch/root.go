package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// globalOptions are the flags every command shares.
type globalOptions struct {
	logFormat string
	logLevel  string
	// workers caps requests in flight across all targets (0: no cap).
	workers int
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	// args is the command line, for the exact resume command.
	args []string
	// catcher catches SIGINT and SIGTERM for the commands that handle them.
	catcher signalCatcher
	// now is the wall clock (history's --since 24h counts back from it);
	// tests fix it.
	now func() time.Time
}

func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr, args: args, now: time.Now}
	return g.main()
}

// main runs the command g.args names and returns its exit code.
func (g *globalOptions) main() int {
	args, stdout, stderr := g.args, g.stdout, g.stderr
	defer g.catcher.stop()
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--version" { // on every command, not only the root
			fmt.Fprintln(stdout, "userbatch version", version)
			return int(reports.ExitOK)
		}
	}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(g.stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var je *job.Error
	switch {
	case err == nil:
	case errors.As(err, &je):
		if je.Err != nil {
			fmt.Fprintln(stderr, "userbatch:", je.Err)
		}
	default: // cobra's own: unknown flags, wrong argument counts
		fmt.Fprintln(stderr, "userbatch:", err)
	}
	return int(job.Exit(err))
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
	root.AddCommand(newRunCmd(g), newPlanCmd(g), newApplyCmd(g), newValidateCmd(g), newDemoCmd(g), newSandboxCmd(g), newVendorsCmd(g), newReportCmd(g), newHistoryCmd(g), newVerifyCmd(g))
	return root
}

// logSetup is the logger the flags ask for, and what the run needs to know
// of it.
type logSetup struct {
	log zerolog.Logger
	// console is true when a person reads the log: summaries go as tables.
	console bool
	// mute silences the log for good (after a second Ctrl-C).
	mute func()
	// bar is stderr when a run may draw its live progress there (a
	// terminal, console logs); the log goes through it. Nil otherwise.
	bar *job.Terminal
}

// logger builds the logger the flags ask for. Logs go to stderr; stdout is
// for what the operator asked to see.
func (g *globalOptions) logger() (logSetup, error) {
	level, err := zerolog.ParseLevel(strings.ToLower(g.logLevel))
	if err != nil || g.logLevel == "" {
		return logSetup{}, job.BadInput("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	format := g.logFormat
	if format == "" {
		format = "json"
		if f, ok := g.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	// Workers log concurrently: one locked writer keeps lines whole.
	out := &gate{w: g.stderr}
	var bar *job.Terminal
	if f, ok := g.stderr.(*os.File); ok && format == "console" && isatty.IsTerminal(f.Fd()) {
		bar = job.NewTerminal(g.stderr)
		out.w = bar
	}
	var w io.Writer
	switch format {
	case "json":
		w = out
	case "console":
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05"}
	default:
		return logSetup{}, job.BadInput("--log-format %q: use console or json", g.logFormat)
	}
	log := zerolog.New(w).Level(level).With().Timestamp().Logger()
	return logSetup{log: log, console: format == "console", mute: out.close, bar: bar}, nil
}

// gate is a locked writer that can be shut for good.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// commandLine is the command as typed, quoted for a shell where needed.
func (g *globalOptions) commandLine() string {
	parts := []string{"userbatch"}
	for _, a := range g.args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
