package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// signalCatcher is the one place the process catches SIGINT and SIGTERM.
// Catching starts when a command first asks (run, plan, apply, demo,
// verify, sandbox): a command that never asks keeps Go's default, where a
// signal ends the process.
type signalCatcher struct {
	once sync.Once
	ch   chan os.Signal
}

// signals delivers SIGINT and SIGTERM from the first call on. A run takes
// the first as "stop gracefully" and a second as "stop at once" (README
// "When a run is interrupted"), so it gets the signals themselves.
func (s *signalCatcher) signals() <-chan os.Signal {
	s.once.Do(func() {
		s.ch = make(chan os.Signal, 2)
		signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM)
	})
	return s.ch
}

// untilSignal is ctx, ended by the first signal: for commands that stop
// whole at once (verify, sandbox).
func (s *signalCatcher) untilSignal(ctx context.Context) (context.Context, context.CancelFunc) {
	sigs := s.signals()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// stop ends the catching, when it started.
func (s *signalCatcher) stop() {
	if s.ch != nil {
		signal.Stop(s.ch)
	}
}
