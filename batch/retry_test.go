package batch

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRetryDefaults(t *testing.T) {
	r := Retry{}.withDefaults()
	if r.Attempts != 5 || r.Base != 200*time.Millisecond || r.Max != 30*time.Second || r.Jitter == nil {
		t.Errorf("defaults %+v, want 5 attempts, 200ms base, 30s max and a jitter source", r)
	}
	kept := Retry{Attempts: 2, Base: time.Second, Max: time.Minute}.withDefaults()
	if kept.Attempts != 2 || kept.Base != time.Second || kept.Max != time.Minute {
		t.Errorf("set values were replaced: %+v", kept)
	}
}

func TestRetryBackoff(t *testing.T) {
	policy := Retry{Attempts: 5, Base: 100 * time.Millisecond, Max: time.Second}
	ceilings := map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 6: time.Second, 64: time.Second, 1000: time.Second,
	}
	for n, ceiling := range ceilings {
		t.Run(fmt.Sprintf("after %d", n), func(t *testing.T) {
			low, high := policy, policy
			low.Jitter = func() float64 { return 0 }
			high.Jitter = func() float64 { return 0.999999 }
			if got := low.backoff(n); got != ceiling/2 {
				t.Errorf("least backoff %v, want half the ceiling %v", got, ceiling/2)
			}
			if got := high.backoff(n); got < ceiling*99/100 || got > ceiling {
				t.Errorf("most backoff %v, want about the ceiling %v", got, ceiling)
			}
			random := policy.withDefaults()
			for i := 0; i < 200; i++ {
				if got := random.backoff(n); got < ceiling/2 || got > ceiling {
					t.Fatalf("backoff %v outside [%v, %v]", got, ceiling/2, ceiling)
				}
			}
		})
	}

	t.Run("grows until the cap", func(t *testing.T) {
		r := policy
		r.Jitter = func() float64 { return 0.5 }
		prev := time.Duration(0)
		for n := 1; n <= 10; n++ {
			got := r.backoff(n)
			if got < prev {
				t.Errorf("backoff after %d attempts %v is shorter than after %d (%v)", n, got, n-1, prev)
			}
			prev = got
		}
	})

	t.Run("base above max", func(t *testing.T) {
		r := Retry{Base: time.Minute, Max: time.Second, Jitter: func() float64 { return 0 }}
		if got := r.backoff(1); got != time.Second/2 {
			t.Errorf("backoff %v, want it capped by Max (%v)", got, time.Second/2)
		}
	})
}

func TestRetryDecide(t *testing.T) {
	r := Retry{Attempts: 3}
	perm := permanent(CodeNotFound, 404, "no such user")
	cases := []struct {
		name       string
		err        error
		n          int
		idempotent bool
		want       decision
	}{
		{"permanent", perm, 1, true, giveUp},
		{"permanent, not idempotent", perm, 1, false, giveUp},
		{"permanent, wrapped", fmt.Errorf("apply: %w", perm), 1, true, giveUp},
		{"retryable", retryable(0), 1, true, retry},
		{"retryable, before the last", retryable(0), 2, true, retry},
		{"retryable, last attempt", retryable(0), 3, true, giveUp},
		{"retryable, past the last", retryable(0), 4, true, giveUp},
		{"retryable, not idempotent", retryable(time.Second), 1, false, retry},
		{"retryable, not idempotent, last attempt", retryable(0), 3, false, giveUp},
		{"ambiguous, idempotent", ambiguous(), 1, true, retry},
		{"ambiguous, idempotent, last attempt", ambiguous(), 3, true, unsure},
		{"ambiguous, not idempotent", ambiguous(), 1, false, unsure},
		{"unclassified, idempotent", errors.New("boom"), 1, true, retry},
		{"unclassified, idempotent, last attempt", errors.New("boom"), 3, true, unsure},
		{"unclassified, not idempotent", errors.New("boom"), 1, false, unsure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.decide(c.err, c.n, c.idempotent); got != c.want {
				t.Errorf("decide(%v, %d, idempotent=%v) = %d, want %d", c.err, c.n, c.idempotent, got, c.want)
			}
		})
	}
}

// TestRetryDecideErrorWithoutKind: an *Error whose adapter forgot to set
// Kind is as unclassified as a plain error, and must be treated as the worst
// case, never resent when the op is not idempotent.
func TestRetryDecideErrorWithoutKind(t *testing.T) {
	r := Retry{Attempts: 3}
	err := &Error{Code: CodeServer, HTTPStatus: 500}
	if got := r.decide(err, 1, false); got != unsure {
		t.Errorf("decide = %d, want unsure (as for any unclassified error)", got)
	}
}
