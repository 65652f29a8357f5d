// Package job is one userbatch run composed from its parts: validate the
// input, take the report directory's lock, check the journal and the rules
// of resuming, apply the rows through the pipeline, and write the report.
// The cobra commands in package main only fill Options; tests drive Run
// in-process.
package job

import (
	"errors"
	"fmt"

	"github.com/userbatch/userbatch/reports"
)

// Error ends a command with an exit code. Err, when set, is printed; a nil
// Err means everything worth saying was said already (the summary table).
type Error struct {
	Code reports.ExitCode
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Exit is the exit code err stands for: 0 for nil, the code of an *Error,
// and reports.ExitBadInput for any other error (flags, arguments).
func Exit(err error) reports.ExitCode {
	if err == nil {
		return reports.ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return reports.ExitBadInput
}

// BadInput is an exit-2 error: nothing was sent.
func BadInput(format string, args ...any) error {
	return &Error{Code: reports.ExitBadInput, Err: fmt.Errorf(format, args...)}
}

func badInputErr(err error) error { return &Error{Code: reports.ExitBadInput, Err: err} }

func stoppedErr(err error) error { return &Error{Code: reports.ExitStopped, Err: err} }
