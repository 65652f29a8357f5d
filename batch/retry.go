package batch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Retry is the retry policy for one row's requests.
type Retry struct {
	// Attempts is the most requests one row's call may take (default 5).
	Attempts int
	// Base is the first backoff; each retry doubles it (default 200ms).
	Base time.Duration
	// Max caps one backoff (default 30s).
	Max time.Duration
	// Jitter returns a random fraction in [0,1); nil uses math/rand.
	Jitter func() float64
}

// DefaultRetry is the policy README's "Outcomes and exit codes" documents.
var DefaultRetry = Retry{Attempts: 5, Base: 200 * time.Millisecond, Max: 30 * time.Second}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultRetry.Attempts
	}
	if r.Base <= 0 {
		r.Base = DefaultRetry.Base
	}
	if r.Max <= 0 {
		r.Max = DefaultRetry.Max
	}
	if r.Jitter == nil {
		r.Jitter = rand.Float64
	}
	return r
}

// backoff is the wait before attempt n+1 after n failed attempts: full
// jitter over an exponential ceiling, so a burst of failures does not come
// back in step.
func (r Retry) backoff(n int) time.Duration {
	ceiling := r.Base
	for i := 1; i < n && ceiling < r.Max; i++ {
		ceiling *= 2
	}
	if ceiling > r.Max {
		ceiling = r.Max
	}
	half := ceiling / 2
	return half + time.Duration(r.Jitter()*float64(ceiling-half))
}

// decision is what to do after a failed attempt.
type decision int

const (
	giveUp decision = iota // the row ends failed
	retry                  // send again
	unsure                 // the row ends unknown: it may have taken effect
)

// decide applies the policy to err after attempt n of a request that
// mayResend or not (Target.MayResend).
func (r Retry) decide(err error, n int, mayResend bool) decision {
	kind := kindOf(err)
	var berr *Error
	final := errors.As(err, &berr) && (berr.final || berr.skip)
	switch {
	case kind == Permanent:
		return giveUp
	case final && kind == Ambiguous:
		return unsure
	case final:
		return giveUp
	case kind == Ambiguous && !mayResend:
		return unsure
	case n >= r.Attempts && kind == Ambiguous:
		return unsure
	case n >= r.Attempts:
		return giveUp
	}
	return retry
}

func kindOf(err error) Kind {
	var berr *Error
	if errors.As(err, &berr) && berr.Kind != 0 {
		return berr.Kind
	}
	// An adapter that returned an unclassified error broke its contract;
	// assume the worst for safety.
	return Ambiguous
}

// Do sends with send until it succeeds or the policy stops it: a Permanent
// error, an Ambiguous one that may not be sent again (mayResend, see
// Target.MayResend), or Attempts spent. Between attempts it waits the
// policy's backoff on clock (nil: the wall clock). It returns the attempts
// made and the last error, or ctx's error when ctx ended during a wait.
// Rows to a vendor take the same decisions and waits inside the pipeline,
// between their pacing; Do is for requests that are not rows (the notify
// webhook).
func (r Retry) Do(ctx context.Context, clock Clock, mayResend bool, send func(context.Context) error) (int, error) {
	r = r.withDefaults()
	if clock == nil {
		clock = RealClock{}
	}
	for n := 1; ; n++ {
		err := send(ctx)
		if err == nil || r.decide(err, n, mayResend) != retry {
			return n, err
		}
		if werr := clock.Sleep(ctx, r.backoff(n)); werr != nil {
			return n, werr
		}
	}
}
