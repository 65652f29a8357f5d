package batch

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Target is one configured vendor endpoint at run time: its adapter and the
// pacing every request to it goes through, retries included.
type Target struct {
	Name    string
	Adapter Adapter
	// Limiter paces requests, reads and writes together. Nil: unpaced.
	Limiter *rate.Limiter
	// Concurrency caps the requests in flight to this target (default 4).
	Concurrency int
	// Timeout bounds one request (default 30s).
	Timeout time.Duration

	mu          sync.Mutex
	pausedUntil time.Time
}

// pause holds every request to the target until t: a Retry-After from the
// vendor applies to all callers, not only to the one that was told.
func (t *Target) pause(until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
}

func (t *Target) resumeAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pausedUntil
}

// ready waits out any pause, then for the limiter's token. It fails only when
// ctx ends.
func (t *Target) ready(ctx context.Context, clock Clock) error {
	for {
		d := t.resumeAt().Sub(clock.Now())
		if d <= 0 {
			break
		}
		if err := clock.Sleep(ctx, d); err != nil {
			return err
		}
	}
	if t.Limiter == nil {
		return ctx.Err()
	}
	if err := t.Limiter.Wait(ctx); err != nil {
		// "would exceed context deadline" is not context.DeadlineExceeded
		// (golang/go#54541): it is a cancellation all the same.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errors.Join(context.Canceled, err)
	}
	return nil
}

// Clock is the time source the pipeline waits on, injectable for tests.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, and returns ctx's error if it did.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits on a timer and the context.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
