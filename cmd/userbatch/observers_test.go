package main

import (
	"io"
	"testing"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
)

// TestRunObserversAsComposed: the command composes what watches a run
// from the flags and the terminal: the progress log always, the bar only
// on a terminal, the metrics file and the webhook only when asked for.
func TestRunObserversAsComposed(t *testing.T) {
	t.Parallel()
	kinds := func(obs job.Observers) map[string]bool {
		m := map[string]bool{}
		for _, o := range obs {
			switch o.(type) {
			case *job.ProgressLog:
				m["log"] = true
			case *job.BarView:
				m["bar"] = true
			case *job.MetricsFile:
				m["metrics"] = true
			case *job.Webhook:
				m["webhook"] = true
			}
		}
		return m
	}
	plain := job.Options{Args: job.Args{Config: &config.Config{}, ReportDir: t.TempDir()}}
	got := kinds((&runOptions{}).observers(logSetup{log: zerolog.Nop()}, plain))
	if !got["log"] || got["bar"] || got["metrics"] || got["webhook"] {
		t.Errorf("a run on a pipe without --metrics-file or notify: observed by %v, want the progress log alone", got)
	}
	asked := job.Options{Args: job.Args{Config: &config.Config{Webhook: "https://hooks.example/x"}, ReportDir: t.TempDir()}}
	term := logSetup{log: zerolog.Nop(), bar: job.NewTerminal(io.Discard)}
	got = kinds((&runOptions{metricsFile: "userbatch.prom"}).observers(term, asked))
	if !got["log"] || !got["bar"] || !got["metrics"] || !got["webhook"] {
		t.Errorf("a run on a terminal with --metrics-file and notify: observed by %v, want all four", got)
	}
}
