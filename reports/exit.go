package reports

import "github.com/userbatch/userbatch/batch"

// ExitCode is the process's exit status (README, "Exit codes"). It is the
// one set of codes: the summary states it and the commands exit with it.
type ExitCode int

// The exit codes.
const (
	ExitOK         ExitCode = 0 // every row ended applied, already, planned or not_due
	ExitIncomplete ExitCode = 1 // the run finished, but some rows did not
	ExitBadInput   ExitCode = 2 // bad input, config or flags: nothing was sent
	ExitStopped    ExitCode = 3 // stopped before finishing: resumable with --resume
	ExitHeld       ExitCode = 4 // held by a guard before sending
)

// ExitFor returns the exit code of a run with these outcome counts:
// ExitStopped if it stopped early, else ExitIncomplete if any row ended other
// than applied, already, planned or not_due (failed, unknown, skipped,
// invalid), else ExitOK. ExitBadInput and ExitHeld are the caller's, for
// runs refused before any send.
func ExitFor(outcomes map[batch.Outcome]int, stopped bool) ExitCode {
	if stopped {
		return ExitStopped
	}
	for o, n := range outcomes {
		if n > 0 && !done(o) {
			return ExitIncomplete
		}
	}
	return ExitOK
}
