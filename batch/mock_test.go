package batch

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// This file holds the test doubles the Runner and journal tests share: a
// function-field Adapter, a Reader built on it, an in-memory Sink, a fake
// Clock, and small helpers to build ops and run a Runner safely.

// safetyNet bounds how long a test waits for something that should happen.
// It only turns a hang into a failure; no test asserts a duration.
const safetyNet = 20 * time.Second

// fastRetry is the policy tests use so that retries take milliseconds.
var fastRetry = Retry{Base: time.Millisecond, Max: 5 * time.Millisecond}

// gauge counts calls in flight and remembers the most seen at once.
type gauge struct {
	mu       sync.Mutex
	cur, max int
}

func (g *gauge) enter() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cur++
	if g.cur > g.max {
		g.max = g.cur
	}
}

func (g *gauge) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cur--
}

func (g *gauge) peak() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// trace is an ordered log of what the sink and the adapters saw, shared by
// both so a test can check that an intent came before its request.
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (t *trace) add(format string, args ...any) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
}

func (t *trace) all() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// call is one request a mock adapter received.
type call struct {
	Kind string // "apply" or "read"
	Op   Op
	// Attempt counts this op's calls of this kind, from 1.
	Attempt int
	// At is the clock's time when the call started (zero without a clock).
	At time.Time
}

// mockAdapter is a function-field Adapter. Nil functions mean: every action
// supported, every action idempotent, every Apply accepted. It records every
// call and the concurrency it saw, per target (one mock per target), per
// (target, user) key, and across every mock sharing Global.
type mockAdapter struct {
	SupportsFunc   func(Action) bool
	IdempotentFunc func(Action) bool
	// ApplyFunc answers Apply; attempt counts this op's Apply calls from 1.
	ApplyFunc func(ctx context.Context, op Op, attempt int) (Reply, error)
	// Clock, when set, stamps each call with its time.
	Clock Clock
	// Global, when set, also counts this mock's calls in flight.
	Global *gauge
	// Trace, when set, gets "apply <index> <attempt>" at each Apply.
	Trace *trace

	mu       sync.Mutex
	calls    []call
	attempts map[string]int // kind+index -> calls so far
	keys     map[Key]int    // key -> calls in flight
	keyPeak  int
	order    map[Key][]int // key -> indexes in the order calls started
	inFlight gauge
}

func (m *mockAdapter) Supports(a Action) bool {
	if m.SupportsFunc == nil {
		return true
	}
	return m.SupportsFunc(a)
}

func (m *mockAdapter) Idempotent(a Action) bool {
	if m.IdempotentFunc == nil {
		return true
	}
	return m.IdempotentFunc(a)
}

func (m *mockAdapter) Apply(ctx context.Context, op Op) (Reply, error) {
	attempt := m.enter("apply", op)
	defer m.exit(op)
	m.Trace.add("apply %d %d", op.Index, attempt)
	if m.ApplyFunc == nil {
		return Reply{HTTPStatus: 200}, nil
	}
	return m.ApplyFunc(ctx, op, attempt)
}

// enter records a call starting and returns its attempt number.
func (m *mockAdapter) enter(kind string, op Op) int {
	var at time.Time
	if m.Clock != nil {
		at = m.Clock.Now()
	}
	m.inFlight.enter()
	if m.Global != nil {
		m.Global.enter()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attempts == nil {
		m.attempts, m.keys, m.order = map[string]int{}, map[Key]int{}, map[Key][]int{}
	}
	id := fmt.Sprintf("%s/%d", kind, op.Index)
	m.attempts[id]++
	k := op.Key()
	m.keys[k]++
	m.keyPeak = max(m.keyPeak, m.keys[k])
	m.order[k] = append(m.order[k], op.Index)
	m.calls = append(m.calls, call{Kind: kind, Op: op, Attempt: m.attempts[id], At: at})
	return m.attempts[id]
}

func (m *mockAdapter) exit(op Op) {
	m.mu.Lock()
	m.keys[op.Key()]--
	m.mu.Unlock()
	if m.Global != nil {
		m.Global.exit()
	}
	m.inFlight.exit()
}

// Calls returns a copy of the calls received so far.
func (m *mockAdapter) Calls() []call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]call(nil), m.calls...)
}

// count returns how many calls of kind were received.
func (m *mockAdapter) count(kind string) int {
	n := 0
	for _, c := range m.Calls() {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

// readerAdapter is a mockAdapter that can also read state.
type readerAdapter struct {
	*mockAdapter
	// ReadFunc answers Read; nil: the user is not in the requested state.
	ReadFunc func(ctx context.Context, op Op, attempt int) (State, error)
}

func (r *readerAdapter) Read(ctx context.Context, op Op) (State, error) {
	attempt := r.enter("read", op)
	defer r.exit(op)
	r.Trace.add("read %d %d", op.Index, attempt)
	if r.ReadFunc == nil {
		return State{HTTPStatus: 200, Current: "enabled"}, nil
	}
	return r.ReadFunc(ctx, op, attempt)
}

// memSink keeps a run's record in memory. Its hooks, when set, may fail a
// call (to test how the run ends) or observe it.
type memSink struct {
	IntentErr func(op Op, attempt int) error
	ResultErr func(Result) error
	OnResult  func(Result)
	Trace     *trace
	// TraceCommits adds the group commits to Trace.
	TraceCommits bool

	mu      sync.Mutex
	results []Result
	intents []intentRec
	commits int
}

type intentRec struct {
	Op      Op
	Attempt int
}

func (s *memSink) Intent(op Op, attempt int) error {
	s.Trace.add("intent %d %d", op.Index, attempt)
	s.mu.Lock()
	s.intents = append(s.intents, intentRec{op, attempt})
	s.mu.Unlock()
	if s.IntentErr != nil {
		return s.IntentErr(op, attempt)
	}
	return nil
}

func (s *memSink) Result(res Result) error {
	s.mu.Lock()
	s.results = append(s.results, res)
	s.mu.Unlock()
	if s.OnResult != nil {
		s.OnResult(res)
	}
	if s.ResultErr != nil {
		return s.ResultErr(res)
	}
	return nil
}

// Commit counts the group commits.
func (s *memSink) Commit() error {
	if s.TraceCommits {
		s.Trace.add("commit")
	}
	s.mu.Lock()
	s.commits++
	s.mu.Unlock()
	return nil
}

// Results returns the results recorded so far, in the order received.
func (s *memSink) Results() []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Result(nil), s.results...)
}

func (s *memSink) Intents() []intentRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]intentRec(nil), s.intents...)
}

// byIndex maps the results to their row index, failing on a duplicate.
func (s *memSink) byIndex(t *testing.T) map[int]Result {
	t.Helper()
	m := map[int]Result{}
	for _, r := range s.Results() {
		if _, dup := m[r.Index]; dup {
			t.Errorf("row %d got more than one Result", r.Index)
		}
		m[r.Index] = r
	}
	return m
}

// fakeClock is a Clock under the test's control. In auto mode Sleep moves
// time forward by d and returns at once; in manual mode Sleep blocks until
// Advance moves time past its deadline (or ctx ends). Every Sleep duration is
// recorded and also sent, without blocking, on Slept.
type fakeClock struct {
	// Slept receives every Sleep duration, when it has room.
	Slept chan time.Duration
	// OnNow, when set, is called at each Now call with the name of the
	// function that called Now, so a test can tell which step of the
	// pipeline reached the clock.
	OnNow func(caller string)

	mu      sync.Mutex
	now     time.Time
	manual  bool
	sleeps  []time.Duration
	waiters []clockWaiter
}

type clockWaiter struct {
	until time.Time
	wake  chan struct{}
}

var clockEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newAutoClock() *fakeClock {
	return &fakeClock{now: clockEpoch, Slept: make(chan time.Duration, 4096)}
}

func newManualClock() *fakeClock {
	c := newAutoClock()
	c.manual = true
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	now, hook := c.now, c.OnNow
	c.mu.Unlock()
	if hook != nil {
		caller := ""
		if pc, _, _, ok := runtime.Caller(1); ok {
			caller = runtime.FuncForPC(pc).Name()
		}
		hook(caller)
	}
	return now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	select {
	case c.Slept <- d:
	default:
	}
	if !c.manual {
		c.now = c.now.Add(d)
		c.mu.Unlock()
		return nil
	}
	w := clockWaiter{until: c.now.Add(d), wake: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Advance moves time forward and wakes the sleepers whose time has come.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.until.After(c.now) {
			kept = append(kept, w)
			continue
		}
		close(w.wake)
	}
	c.waiters = kept
}

// Release moves time past every wait and turns the clock automatic: each
// later Sleep returns at once. Tests call it once the moment they held time
// for has been checked, so that waits begun in any order still end.
func (c *fakeClock) Release(d time.Duration) {
	c.mu.Lock()
	c.manual = false
	c.mu.Unlock()
	c.Advance(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		close(w.wake)
	}
	c.waiters = nil
}

// Sleeps returns every duration Sleep was called with.
func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// sliceSource yields ops in order, then io.EOF.
func sliceSource(ops []Op) Source {
	var mu sync.Mutex
	i := 0
	return func() (Op, error) {
		mu.Lock()
		defer mu.Unlock()
		if i == len(ops) {
			return Op{}, io.EOF
		}
		i++
		return ops[i-1], nil
	}
}

// newOp returns row i (line i+2: the header is line 1).
func newOp(i int, target, user string, a Action) Op {
	return Op{Index: i, Line: i + 2, Target: target, User: user, Action: a}
}

// spreadOps builds n ops that cycle through targets and, per target, users
// users, alternating disable and enable.
func spreadOps(n int, targets []string, users int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		tgt := targets[i%len(targets)]
		user := fmt.Sprintf("user-%d", (i/len(targets))%users)
		a := Disable
		if i%2 == 1 {
			a = Enable
		}
		ops[i] = newOp(i, tgt, user, a)
	}
	return ops
}

// newRunner returns a Runner over the given adapters (target name ->
// adapter), each target with the given concurrency, retrying fast.
func newRunner(concurrency int, adapters map[string]Adapter) *Runner {
	r := &Runner{Targets: map[string]*Target{}, Retry: fastRetry, Log: zerolog.Nop()}
	for name, a := range adapters {
		r.Targets[name] = &Target{Name: name, Adapter: a, Concurrency: concurrency,
			Timeout: 30 * time.Second, MaxWait: 5 * time.Minute}
	}
	return r
}

// runAsync starts r.Run and returns the channel its error arrives on.
func runAsync(ctx context.Context, r *Runner, src Source, sink Sink) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src, sink) }()
	return done
}

// runSafely runs r to the end, failing the test if it hangs.
func runSafely(t *testing.T, r *Runner, src Source, sink Sink) error {
	t.Helper()
	return wait(t, runAsync(context.Background(), r, src, sink), "Run to return")
}

// wait receives from ch, failing the test if nothing arrives within the
// safety net (a hang, never a timing assertion).
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(safetyNet):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// permanent, retryable and ambiguous build classified errors.
func permanent(code string, status int, msg string) error {
	return &Error{Kind: Permanent, Code: code, HTTPStatus: status, Message: msg}
}

func retryable(retryAfter time.Duration) error {
	return &Error{Kind: Retryable, Code: CodeRateLimited, HTTPStatus: 429, Message: "slow down", RetryAfter: retryAfter}
}

func ambiguous() error {
	return &Error{Kind: Ambiguous, Code: CodeServer, HTTPStatus: 502, Message: "bad gateway"}
}

// toggleOnly is an IdempotentFunc for a vendor whose toggle is not idempotent.
func toggleOnly(a Action) bool { return a != ToggleStatus }
