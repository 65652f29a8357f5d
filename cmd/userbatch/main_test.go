package main

import "github.com/userbatch/userbatch/reports"

// The exit codes as ints, as runMain returns them.
const (
	exitOK         = int(reports.ExitOK)
	exitIncomplete = int(reports.ExitIncomplete)
	exitBadInput   = int(reports.ExitBadInput)
	exitStopped    = int(reports.ExitStopped)
	exitHeld       = int(reports.ExitHeld)
)
