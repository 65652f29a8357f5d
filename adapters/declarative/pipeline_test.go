package declarative_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/batch"
)

// collect is a batch.Sink that keeps the results.
type collect struct {
	mu      sync.Mutex
	results map[int]batch.Result
}

func (c *collect) Intent(batch.Op, int) error { return nil }
func (c *collect) Commit() error              { return nil }
func (c *collect) Result(r batch.Result) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results[r.Index] = r
	return nil
}

// pipelineFaults are what a row's user meets at the fake, once each.
// Refused credentials are compared per call (TestSideBySide): here three
// in a row would trip the target's breaker, as they should.
var pipelineFaults = []*fakehttp.Fault{
	nil, {Status: 429}, {Status: 503}, {Status: 500, Body: `{"message":"boom"}`}, {Reset: true}, {DropAfter: true},
	{Status: 200, Body: "<html>portal</html>"}, {Status: 404, Body: "<html>nginx</html>"},
}

// runRows sends rows through the real pipeline (reads, retries, the
// never-resend rule for what is not idempotent) to a fresh fake, through
// the Go adapter or the spec, and returns the results by row.
func runRows(t *testing.T, v vendor, spec bool) map[int]batch.Result {
	w := v.newWorld()
	base := adaptertest.Serve(t, w.h)
	mk := v.goAdapter
	if spec {
		mk = v.specAdapter
	}
	var ops []batch.Op
	for _, op := range v.ops {
		for _, f := range pipelineFaults {
			for _, state := range append([]string{"", "missing"}, v.states...) {
				op := op
				op.Index, op.Line, op.Target = len(ops), len(ops)+2, "t"
				op.User = fmt.Sprintf("u%d", op.Index)
				switch state {
				case "":
					w.add(op.User, op)
				case "missing":
				default:
					w.set(op.User, state)
				}
				if f != nil {
					w.faults.Add(fakehttp.Rule{User: op.User, Times: 1, Fault: *f})
				}
				ops = append(ops, op)
			}
		}
	}
	r := &batch.Runner{
		Targets: map[string]*batch.Target{"t": {Name: "t", Adapter: mk(t, base, nil, goodKey, goodToken), Concurrency: 1, Timeout: 5 * time.Second, MaxWait: time.Minute}},
		Retry:   batch.Retry{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond, Jitter: func() float64 { return 0 }},
	}
	sink := &collect{results: map[int]batch.Result{}}
	next := 0
	src := func() (batch.Op, error) {
		if next == len(ops) {
			return batch.Op{}, io.EOF
		}
		next++
		return ops[next-1], nil
	}
	if err := r.Run(context.Background(), src, sink); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		res := sink.results[op.Index]
		res.Detail = fmt.Sprintf("%s | state after: %s, writes %d", res.Detail, w.state(op.User), w.writes(op.User))
		sink.results[op.Index] = res
	}
	return sink.results
}

// TestSideBySidePipeline runs the same rows through the pipeline with the
// Go adapter and with the spec, each against a fresh fake, and compares
// every row's outcome, error code, HTTP status, attempts and retries, and
// the user's state at the fake after.
func TestSideBySidePipeline(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			want, got := runRows(t, v, false), runRows(t, v, true)
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("%d results from the Go adapter, %d from the spec", len(want), len(got))
			}
			for i := range want {
				w, g := want[i], got[i]
				if w.Outcome != g.Outcome || w.ErrorCode != g.ErrorCode || w.HTTPStatus != g.HTTPStatus ||
					w.Attempts != g.Attempts || w.Retries != g.Retries || stateOf(w) != stateOf(g) {
					t.Errorf("row %d (%s %s):\n  Go:   %s %s %d attempts=%d retries=%d %s\n  spec: %s %s %d attempts=%d retries=%d %s",
						i, w.Action, w.User, w.Outcome, w.ErrorCode, w.HTTPStatus, w.Attempts, w.Retries, w.Detail,
						g.Outcome, g.ErrorCode, g.HTTPStatus, g.Attempts, g.Retries, g.Detail)
				}
			}
			t.Logf("%s: %d rows through the pipeline compared", v.name, len(want))
		})
	}
}

// stateOf is the fake's state after the row, as runRows noted it.
func stateOf(r batch.Result) string {
	for i := len(r.Detail) - 1; i >= 0; i-- {
		if r.Detail[i] == '|' {
			return r.Detail[i:]
		}
	}
	return ""
}
