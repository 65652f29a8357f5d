package batch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRetryDo: Do follows the pipeline's policy: retryable errors are
// retried up to Attempts, a permanent one stops at once, an ambiguous one
// is sent again only when it may be, and a wait cut off by ctx ends it.
func TestRetryDo(t *testing.T) {
	policy := Retry{Attempts: 3, Base: time.Millisecond, Jitter: func() float64 { return 0 }}
	cases := []struct {
		name      string
		err       error
		mayResend bool
		want      int
	}{
		{"retryable", &Error{Kind: Retryable}, false, 3},
		{"permanent", &Error{Kind: Permanent}, true, 1},
		{"ambiguous, may not resend", &Error{Kind: Ambiguous}, false, 1},
		{"ambiguous, may resend", &Error{Kind: Ambiguous}, true, 3},
	}
	for _, c := range cases {
		calls := 0
		n, err := policy.Do(context.Background(), nil, c.mayResend, func(context.Context) error {
			calls++
			return c.err
		})
		if n != c.want || calls != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s: %d attempts (%d calls), err %v; want %d", c.name, n, calls, err, c.want)
		}
	}
	calls := 0
	n, err := policy.Do(context.Background(), nil, false, func(context.Context) error {
		calls++
		if calls < 2 {
			return &Error{Kind: Retryable}
		}
		return nil
	})
	if n != 2 || err != nil {
		t.Errorf("a success on the second attempt: %d attempts, err %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err = policy.Do(ctx, nil, false, func(context.Context) error {
		cancel()
		return &Error{Kind: Retryable}
	})
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled wait: %d attempts, err %v; want 1 and context.Canceled", n, err)
	}
}
