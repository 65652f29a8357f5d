package scim

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
	"github.com/userbatch/userbatch/batch"
)

// memSink keeps a run's results.
type memSink struct {
	mu      sync.Mutex
	results []batch.Result
}

func (s *memSink) Intent(batch.Op, int) error { return nil }

func (s *memSink) Commit() error { return nil }

func (s *memSink) Result(r batch.Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = append(s.results, r)
	return nil
}

// autoClock is a batch.Clock whose Sleep moves time forward at once: the
// run honours every Retry-After and backoff without waiting for them.
type autoClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (c *autoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *autoClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	return nil
}

// runOps runs ops against one target "app" served by a, the way cmd
// composes a run, and returns the results in row order.
func runOps(t *testing.T, a batch.Adapter, ops []batch.Op, dryRun bool, clock batch.Clock) []batch.Result {
	t.Helper()
	for i := range ops {
		ops[i].Index, ops[i].Line, ops[i].Target = i, i+2, "app"
	}
	next := 0
	src := func() (batch.Op, error) {
		if next == len(ops) {
			return batch.Op{}, io.EOF
		}
		next++
		return ops[next-1], nil
	}
	r := &batch.Runner{
		Targets: map[string]*batch.Target{"app": {Name: "app", Adapter: a, Concurrency: 8, Timeout: 10 * time.Second, MaxWait: 5 * time.Minute}},
		Retry:   batch.Retry{Attempts: 8, Base: time.Millisecond, Max: 10 * time.Millisecond},
		DryRun:  dryRun,
		Clock:   clock,
		Log:     zerolog.Nop(),
	}
	sink := &memSink{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Run(ctx, src, sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(sink.results) != len(ops) {
		t.Fatalf("%d results for %d rows", len(sink.results), len(ops))
	}
	sort.Slice(sink.results, func(i, j int) bool { return sink.results[i].Index < sink.results[j].Index })
	return sink.results
}

// flaky answers 10% of requests 429 with Retry-After: 1 and 5% 503. A 503
// to a write comes after the fake carried it out (the answer was lost, as
// behind a failing proxy); to a read, before. Which request gets a fault
// depends only on its key (the user's path or query) and how many requests
// that key had before, so a run is the same whatever the scheduling.
type flaky struct {
	next http.Handler

	mu       sync.Mutex
	seen     map[string]int
	limited  int
	failed   int
	requests int
}

func (f *flaky) roll(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.seen[key]
	f.seen[key]++
	f.requests++
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d", key, n)
	roll := int(h.Sum64() % 100)
	switch {
	case roll < 10:
		f.limited++
	case roll < 15:
		f.failed++
	}
	return roll
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	roll := f.roll(r.URL.EscapedPath() + "?" + r.URL.RawQuery)
	switch {
	case roll < 10:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case roll < 15 && r.Method != http.MethodGet:
		f.next.ServeHTTP(httptest.NewRecorder(), r) // carried out, answer lost
		w.WriteHeader(http.StatusServiceUnavailable)
	case roll < 15:
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		f.next.ServeHTTP(w, r)
	}
}

// TestPipelineThousandRows: 1,000 SCIM rows through batch.Runner with 10%
// 429 + Retry-After and 5% 503. Every user ends in the requested state, and
// none is written twice: a write whose answer was lost is resent under its
// old If-Match, refused (412), read again and found done.
func TestPipelineThousandRows(t *testing.T) {
	const rows = 1000
	fake := scimtest.New(scimtest.Options{Token: goodToken})
	flakyFake := &flaky{next: fake, seen: map[string]int{}}
	c := newClient(t, adaptertest.Serve(t, flakyFake), goodToken)

	ops := make([]batch.Op, rows)
	inState := map[string]bool{}
	for i := range ops {
		id := fmt.Sprintf("u%04d", i)
		action := batch.Disable
		if i%2 == 1 {
			action = batch.Enable
		}
		already := i%10 == 0 // these start in the requested state
		inState[id] = already
		fake.AddUser(scimtest.User{ID: id, UserName: id + "@example.com", Active: (action == batch.Disable) != already})
		user := id
		if i%4 == 1 {
			user = "userName:" + id + "@example.com"
		}
		ops[i] = batch.Op{User: user, Action: action}
	}
	clock := &autoClock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	results := runOps(t, c, ops, false, clock)

	outcomes := map[batch.Outcome]int{}
	for i, res := range results {
		id := fmt.Sprintf("u%04d", i)
		outcomes[res.Outcome]++
		want := "inactive"
		if ops[i].Action == batch.Enable {
			want = "active"
		}
		if got := state(fake, id); got != want {
			t.Errorf("%s (%s): %s, want %s (row %s: %s %s)", id, ops[i].Action, got, want, res.Outcome, res.Detail, res.Message)
		}
		wantWrites := 1
		if inState[id] {
			wantWrites = 0
			if res.Outcome != batch.Already {
				t.Errorf("%s started in state but ended %s", id, res.Outcome)
			}
		}
		if got := fake.Writes(id); got != wantWrites {
			t.Errorf("%s: %d writes, want %d (row %s after %d attempts)", id, got, wantWrites, res.Outcome, res.Attempts)
		}
	}
	t.Logf("%d requests: %d answered 429, %d answered 503; outcomes %v; virtual time slept %v",
		flakyFake.requests, flakyFake.limited, flakyFake.failed, outcomes, clock.slept)
	if flakyFake.limited < flakyFake.requests/20 || flakyFake.failed < flakyFake.requests/50 {
		t.Errorf("faults injected: %d 429s and %d 503s in %d requests; want about 10%% and 5%%",
			flakyFake.limited, flakyFake.failed, flakyFake.requests)
	}
	if outcomes[batch.Applied]+outcomes[batch.Already] != rows {
		t.Errorf("outcomes %v, want every row applied or already", outcomes)
	}
	if clock.slept < time.Second {
		t.Errorf("the run slept %v: the Retry-After pauses were not honoured", clock.slept)
	}
}

// TestPipelineDryRunWritesNothing: a dry run reads every user through the
// pipeline and writes none.
func TestPipelineDryRunWritesNothing(t *testing.T) {
	fake, c := setup(t, scimtest.Options{}, nil)
	fake.AddUser(scimtest.User{ID: "u1", UserName: "u1", Active: true})
	fake.AddUser(scimtest.User{ID: "u2", UserName: "u2", Active: false})
	res := runOps(t, c, []batch.Op{{User: "u1", Action: batch.Disable}, {User: "u2", Action: batch.Disable}}, true, nil)
	if res[0].Outcome != batch.Planned || !strings.Contains(res[0].Message, "active") ||
		res[1].Outcome != batch.Planned || res[1].Detail != "no change" {
		t.Errorf("dry run results %+v", res)
	}
	if fake.Writes("u1")+fake.Writes("u2") != 0 {
		t.Errorf("the dry run wrote")
	}
}
