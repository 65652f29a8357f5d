package job

import (
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// Observer watches a run: the terminal's live bar, the progress log, the
// metrics file, the webhook (README "Layout"). The run tells it what
// happens; it never changes what the run does. The command composes the
// observers; embed Unobserved to watch only some events.
//
// Row events come from one goroutine at a time, but not always the same
// one: an observer that reads its state from another (a timer, a bar's
// frame) locks it.
type Observer interface {
	// Started: the input is validated; nothing was sent yet.
	Started(Start)
	// PassStarted: rows start going through the pipeline: reading their
	// state before the first write, or the run itself.
	PassStarted(Pass)
	// Sending: a write goes out; attempt > 1 sends it again.
	Sending(op batch.Op, attempt int)
	// RowDone: a row of the pass finished, recorded in the journal.
	RowDone(res batch.Result)
	// Paused: the targets a vendor paused, and until when, each time that
	// changes (empty: none is paused any more).
	Paused(until map[string]time.Time)
	// PassEnded: the pass's last row finished, or the run stopped.
	PassEnded()
	// Held: a guard held the run; its report says so, nothing was sent.
	Held(reason string, wouldChange int)
	// Finished: the run ended, whatever its exit code.
	Finished(End)
}

// Start is what a run is over, once its input is validated.
type Start struct {
	Input, InputSHA256, ConfigPath, ReportDir string
	Targets                                   []string
	Valid, Invalid                            int
	// Rates are each target's requests per second as this process paces them.
	Rates          map[string]float64
	DryRun, Resume bool
	Shard          string
}

// Pass is a pass of rows through the pipeline.
type Pass struct {
	// Phase is what the rows go through: "" for the run, StateReading
	// before the first write.
	Phase string
	// Total counts the rows of the pass, Settled those an earlier process
	// of the run finished (a resume).
	Total, Settled int
}

// StateReading is the phase of a pass that reads the users' state before
// the first write, as the bar and the log name it.
const StateReading = "reading state"

// End is how a run ended.
type End struct {
	// Summary is the report's; nil when the run ended before a report.
	Summary *reports.Summary
	// Held says a guard held the run.
	Held     bool
	ExitCode reports.ExitCode
	// Duration is how long this process ran; At is when it ended.
	Duration time.Duration
	At       time.Time
}

// Unobserved ignores every event: embed it to watch only some.
type Unobserved struct{}

func (Unobserved) Started(Start)               {}
func (Unobserved) PassStarted(Pass)            {}
func (Unobserved) Sending(batch.Op, int)       {}
func (Unobserved) RowDone(batch.Result)        {}
func (Unobserved) Paused(map[string]time.Time) {}
func (Unobserved) PassEnded()                  {}
func (Unobserved) Held(string, int)            {}
func (Unobserved) Finished(End)                {}

var _ Observer = Unobserved{}

// Observers tells each of its observers every event, in order.
type Observers []Observer

func (os Observers) Started(s Start) {
	for _, o := range os {
		o.Started(s)
	}
}

func (os Observers) PassStarted(p Pass) {
	for _, o := range os {
		o.PassStarted(p)
	}
}

func (os Observers) Sending(op batch.Op, attempt int) {
	for _, o := range os {
		o.Sending(op, attempt)
	}
}

func (os Observers) RowDone(res batch.Result) {
	for _, o := range os {
		o.RowDone(res)
	}
}

func (os Observers) Paused(until map[string]time.Time) {
	for _, o := range os {
		o.Paused(until)
	}
}

func (os Observers) PassEnded() {
	for _, o := range os {
		o.PassEnded()
	}
}

func (os Observers) Held(reason string, wouldChange int) {
	for _, o := range os {
		o.Held(reason, wouldChange)
	}
}

func (os Observers) Finished(e End) {
	for _, o := range os {
		o.Finished(e)
	}
}
