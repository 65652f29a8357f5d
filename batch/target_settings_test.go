package batch

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestRunRefusesTargetWithoutSettings: batch guesses no defaults (the
// config owns them): a target with a zero concurrency, timeout or max_wait
// ends the run before anything is sent.
func TestRunRefusesTargetWithoutSettings(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Target)
	}{
		{"concurrency", func(t *Target) { t.Concurrency = 0 }},
		{"timeout", func(t *Target) { t.Timeout = 0 }},
		{"max_wait", func(t *Target) { t.MaxWait = 0 }},
	} {
		m := &mockAdapter{}
		r := newRunner(1, map[string]Adapter{"t": m})
		c.set(r.Targets["t"])
		src := func() (Op, error) { return Op{}, io.EOF }
		err := r.Run(context.Background(), src, &memSink{})
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s zero: err %v, want one naming %s", c.name, err, c.name)
		}
	}
	r := newRunner(1, map[string]Adapter{"t": &mockAdapter{}})
	r.Targets["t"].Timeout = time.Second
	if err := r.Run(context.Background(), func() (Op, error) { return Op{}, io.EOF }, &memSink{}); err != nil {
		t.Errorf("explicit settings: %v", err)
	}
}
