package main

import "github.com/userbatch/userbatch/cmd/userbatch/internal/job"

// The exit codes as ints, as runMain returns them.
const (
	exitOK         = int(job.ExitOK)
	exitIncomplete = int(job.ExitIncomplete)
	exitBadInput   = int(job.ExitBadInput)
	exitStopped    = int(job.ExitStopped)
	exitHeld       = int(job.ExitHeld)
)
