package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// checkRow reports how res differs from what op should have produced.
func checkRow(t *testing.T, res Result, op Op, want Outcome) {
	t.Helper()
	if res.Index != op.Index || res.Line != op.Line || res.Target != op.Target || res.User != op.User || res.Action != op.Action {
		t.Errorf("row %d: result is for %d/line %d/%s/%s/%s, want line %d/%s/%s/%s",
			op.Index, res.Index, res.Line, res.Target, res.User, res.Action, op.Line, op.Target, op.User, op.Action)
	}
	if res.Outcome != want {
		t.Errorf("row %d: outcome %q (%s), want %q", op.Index, res.Outcome, res.Detail, want)
	}
}

func TestRunEveryOpReachesTheSinkOnce(t *testing.T) {
	for _, window := range []int{0, 8} {
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			names := []string{"alpha", "beta", "gamma"}
			ops := spreadOps(3000, names, 40)
			mocks := map[string]*mockAdapter{}
			adapters := map[string]Adapter{}
			for _, n := range names {
				mocks[n] = &mockAdapter{}
				adapters[n] = mocks[n]
			}
			r := newRunner(4, adapters)
			r.Window = window
			sink := &memSink{}

			if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
				t.Fatalf("Run: %v", err)
			}

			got := sink.byIndex(t)
			if len(got) != len(ops) {
				t.Errorf("%d results for %d ops", len(got), len(ops))
			}
			for _, op := range ops {
				res, ok := got[op.Index]
				if !ok {
					t.Errorf("row %d: no result", op.Index)
					continue
				}
				checkRow(t, res, op, Applied)
				wantDetail := map[Action]string{Disable: "disabled", Enable: "enabled"}[op.Action]
				if res.Detail != wantDetail || res.Attempts != 1 || res.Retries != 0 || res.HTTPStatus != 200 {
					t.Errorf("row %d: detail %q attempts %d retries %d status %d, want %q 1 0 200",
						op.Index, res.Detail, res.Attempts, res.Retries, res.HTTPStatus, wantDetail)
				}
				if res.FinishedAt.IsZero() || res.FinishedAt.Location() != time.UTC {
					t.Errorf("row %d: finished_at %v, want a UTC time", op.Index, res.FinishedAt)
				}
			}
			for n, m := range mocks {
				if got := m.count("apply"); got != len(ops)/len(names) {
					t.Errorf("target %s got %d requests, want %d", n, got, len(ops)/len(names))
				}
			}
		})
	}
}

func TestRunSameUserRowsRunInInputOrderOneAtATime(t *testing.T) {
	cases := []struct {
		name   string
		ops    []Op
		window int
	}{
		{"many users, two targets", spreadOps(2000, []string{"a", "b"}, 7), 16},
		{"one user, window 4", spreadOps(200, []string{"a"}, 1), 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Yielding inside the request gives rows of the same user every
			// chance to overlap or overtake each other if the runner let them.
			apply := func(context.Context, Op, int) (Reply, error) {
				runtime.Gosched()
				return Reply{HTTPStatus: 200}, nil
			}
			a, b := &mockAdapter{ApplyFunc: apply}, &mockAdapter{ApplyFunc: apply}
			r := newRunner(4, map[string]Adapter{"a": a, "b": b})
			r.Window = c.window
			sink := &memSink{}

			if err := runSafely(t, r, sliceSource(c.ops), sink); err != nil {
				t.Fatalf("Run: %v", err)
			}

			if n := len(sink.Results()); n != len(c.ops) {
				t.Fatalf("%d results for %d ops", n, len(c.ops))
			}
			want := map[Key][]int{}
			for _, op := range c.ops {
				want[op.Key()] = append(want[op.Key()], op.Index)
			}
			for _, m := range []*mockAdapter{a, b} {
				m.mu.Lock()
				if m.keyPeak > 1 {
					t.Errorf("%d requests for one (target, user) were in flight at once", m.keyPeak)
				}
				for k, got := range m.order {
					if !slices.Equal(got, want[k]) {
						t.Errorf("key %q ran rows %v, want input order %v", k, got, want[k])
					}
				}
				m.mu.Unlock()
			}
		})
	}
}

func TestRunDifferentUsersRunConcurrently(t *testing.T) {
	arrived := make(chan int, 8)
	release := make(chan struct{})
	m := &mockAdapter{ApplyFunc: func(ctx context.Context, op Op, _ int) (Reply, error) {
		arrived <- op.Index
		<-release
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(4, map[string]Adapter{"a": m})
	ops := spreadOps(8, []string{"a"}, 8)
	sink := &memSink{}
	done := runAsync(context.Background(), r, sliceSource(ops), sink)

	// Four requests held at once can only happen if four users run together.
	for i := 0; i < 4; i++ {
		wait(t, arrived, "four requests in flight together")
	}
	if got := m.inFlight.peak(); got != 4 {
		t.Errorf("%d requests in flight, want 4", got)
	}
	close(release)

	if err := wait(t, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(sink.Results()); n != len(ops) {
		t.Errorf("%d results for %d ops", n, len(ops))
	}
}

// barrier holds its callers until n of them have arrived, then lets every
// caller through.
type barrier struct {
	mu    sync.Mutex
	n     int
	count int
	open  chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) await(ctx context.Context) error {
	b.mu.Lock()
	b.count++
	if b.count == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestRunConcurrencyCaps(t *testing.T) {
	t.Run("per target", func(t *testing.T) {
		caps := map[string]int{"a": 2, "b": 5}
		mocks := map[string]*mockAdapter{}
		adapters := map[string]Adapter{}
		for name, n := range caps {
			bar := newBarrier(n)
			mocks[name] = &mockAdapter{ApplyFunc: func(ctx context.Context, _ Op, _ int) (Reply, error) {
				// The first n requests wait for each other, so the cap is
				// reached while more rows are waiting to start.
				if err := bar.await(ctx); err != nil {
					return Reply{}, err
				}
				runtime.Gosched()
				return Reply{HTTPStatus: 200}, nil
			}}
			adapters[name] = mocks[name]
		}
		r := newRunner(1, adapters)
		for name, n := range caps {
			r.Targets[name].Concurrency = n
		}
		ops := spreadOps(600, []string{"a", "b"}, 100)

		if err := runSafely(t, r, sliceSource(ops), &memSink{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for name, n := range caps {
			if got := mocks[name].inFlight.peak(); got != n {
				t.Errorf("target %s: at most %d requests in flight, want exactly its concurrency %d", name, got, n)
			}
		}
	})

	t.Run("global workers", func(t *testing.T) {
		const workers = 5
		global := &gauge{}
		bar := newBarrier(workers)
		apply := func(ctx context.Context, _ Op, _ int) (Reply, error) {
			if err := bar.await(ctx); err != nil {
				return Reply{}, err
			}
			runtime.Gosched()
			return Reply{HTTPStatus: 200}, nil
		}
		names := []string{"a", "b", "c"}
		mocks := map[string]*mockAdapter{}
		adapters := map[string]Adapter{}
		for _, n := range names {
			mocks[n] = &mockAdapter{ApplyFunc: apply, Global: global}
			adapters[n] = mocks[n]
		}
		r := newRunner(4, adapters)
		r.Workers = workers
		ops := spreadOps(900, names, 100)

		if err := runSafely(t, r, sliceSource(ops), &memSink{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := global.peak(); got != workers {
			t.Errorf("at most %d requests in flight across targets, want exactly Workers=%d", got, workers)
		}
		for n, m := range mocks {
			if got := m.inFlight.peak(); got > 4 {
				t.Errorf("target %s: %d requests in flight, more than its concurrency 4", n, got)
			}
		}
	})
}

func TestRunRetryPolicy(t *testing.T) {
	errPlain := errors.New("adapter forgot to classify this")
	always := func(err error) func(int) error { return func(int) error { return err } }
	until := func(n int, err error) func(int) error {
		return func(attempt int) error {
			if attempt <= n {
				return err
			}
			return nil
		}
	}
	cases := []struct {
		name         string
		action       Action
		attempts     int // the policy's; 0: default
		answer       func(attempt int) error
		want         Outcome
		wantAttempts int
		wantCode     string
		wantDetail   string
	}{
		{"retryable until attempts run out", Disable, 0, always(retryable(0)), Failed, 5, CodeRateLimited, "gave up after 5 attempts"},
		{"retryable then accepted", Disable, 0, until(2, retryable(0)), Applied, 3, "", "disabled"},
		{"a policy of 3 attempts", Enable, 3, always(retryable(0)), Failed, 3, CodeRateLimited, "gave up after 3 attempts"},
		{"permanent is not retried", Disable, 0, always(permanent(CodeNotFound, 404, "User not found.")), Failed, 1, CodeNotFound, "no such user"},
		{"ambiguous idempotent is retried, then unknown", Disable, 0, always(ambiguous()), Unknown, 5, CodeServer, "no clear answer after 5 attempts"},
		{"ambiguous idempotent then accepted", Disable, 0, until(1, ambiguous()), Applied, 2, "", "disabled"},
		{"ambiguous toggle is sent once", ToggleStatus, 0, always(ambiguous()), Unknown, 1, CodeServer, "may have taken effect"},
		{"retryable toggle is retried", ToggleStatus, 0, until(2, retryable(0)), Applied, 3, "", "status toggled"},
		{"retryable toggle until attempts run out", ToggleStatus, 0, always(retryable(0)), Failed, 5, CodeRateLimited, "gave up after 5 attempts"},
		{"unclassified error on idempotent op", Disable, 0, always(errPlain), Unknown, 5, "error", "no clear answer"},
		{"unclassified error on toggle", ToggleStatus, 0, always(errPlain), Unknown, 1, "error", "may have taken effect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newAutoClock()
			m := &mockAdapter{IdempotentFunc: toggleOnly, ApplyFunc: func(_ context.Context, _ Op, attempt int) (Reply, error) {
				if err := c.answer(attempt); err != nil {
					return Reply{}, err
				}
				return Reply{HTTPStatus: 200}, nil
			}}
			r := newRunner(1, map[string]Adapter{"t": m})
			r.Retry.Attempts = c.attempts
			r.Clock = clock
			op := newOp(0, "t", "u1", c.action)
			sink := &memSink{}

			if err := runSafely(t, r, sliceSource([]Op{op}), sink); err != nil {
				t.Fatalf("Run: %v", err)
			}

			res := sink.Results()
			if len(res) != 1 {
				t.Fatalf("%d results, want 1", len(res))
			}
			got := res[0]
			checkRow(t, got, op, c.want)
			if got.Attempts != c.wantAttempts || got.Retries != c.wantAttempts-1 {
				t.Errorf("attempts %d retries %d, want %d and %d", got.Attempts, got.Retries, c.wantAttempts, c.wantAttempts-1)
			}
			if n := m.count("apply"); n != c.wantAttempts {
				t.Errorf("the vendor got %d requests, want %d", n, c.wantAttempts)
			}
			if got.ErrorCode != c.wantCode || !strings.Contains(got.Detail, c.wantDetail) {
				t.Errorf("error_code %q detail %q, want %q and a detail containing %q", got.ErrorCode, got.Detail, c.wantCode, c.wantDetail)
			}
			if c.want == Failed && c.wantCode == CodeNotFound && got.Message != "User not found." {
				t.Errorf("message %q, want the vendor's own text", got.Message)
			}
			// One backoff before each retry, within the policy's bounds.
			sleeps := clock.Sleeps()
			if len(sleeps) != got.Retries {
				t.Errorf("%d backoffs for %d retries", len(sleeps), got.Retries)
			}
			for _, d := range sleeps {
				if d < fastRetry.Base/2 || d > fastRetry.Max {
					t.Errorf("backoff %v outside [%v, %v]", d, fastRetry.Base/2, fastRetry.Max)
				}
			}
			// A write is journalled before every attempt, numbered.
			var wantIntents []int
			for i := 1; i <= c.wantAttempts; i++ {
				wantIntents = append(wantIntents, i)
			}
			var gotIntents []int
			for _, in := range sink.Intents() {
				gotIntents = append(gotIntents, in.Attempt)
			}
			if !slices.Equal(gotIntents, wantIntents) {
				t.Errorf("intents for attempts %v, want %v", gotIntents, wantIntents)
			}
		})
	}
}

// TestRunRetryAfterPausesTheTarget checks that a Retry-After told to one
// request holds every request to that target, and only that target.
func TestRunRetryAfterPausesTheTarget(t *testing.T) {
	const pause = 10 * time.Second
	clock := newManualClock()
	pauseEnd := clockEpoch.Add(pause)
	bApplied := make(chan struct{}, 8)
	aSent := make(chan int, 16) // a's requests after the one told to wait
	a := &mockAdapter{Clock: clock, ApplyFunc: func(_ context.Context, op Op, attempt int) (Reply, error) {
		if op.Index == 0 && attempt == 1 {
			return Reply{}, retryable(pause)
		}
		aSent <- op.Index
		return Reply{HTTPStatus: 200}, nil
	}}
	b := &mockAdapter{Clock: clock, ApplyFunc: func(context.Context, Op, int) (Reply, error) {
		bApplied <- struct{}{}
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(4, map[string]Adapter{"a": a, "b": b})
	r.Clock = clock

	// The first row gets the 429; the others are read only once its worker
	// is in its backoff, that is once the target is paused, so that every
	// other request to a is one that must wait.
	ops := []Op{newOp(0, "a", "u0", Disable)}
	for i := 1; i <= 6; i++ {
		ops = append(ops, newOp(i, "a", fmt.Sprintf("u%d", i), Disable))
	}
	for i := 7; i <= 10; i++ {
		ops = append(ops, newOp(i, "b", fmt.Sprintf("v%d", i), Disable))
	}
	next := 0
	src := func() (Op, error) {
		if next == 1 {
			select {
			case <-clock.Slept: // row 0's backoff: the pause is set
			case <-time.After(safetyNet):
				return Op{}, errors.New("row 0 never backed off")
			}
		}
		if next == len(ops) {
			return Op{}, io.EOF
		}
		next++
		return ops[next-1], nil
	}
	sink := &memSink{}
	done := runAsync(context.Background(), r, src, sink)

	// b is not paused: its rows go through while a's time has not come.
	for i := 0; i < 4; i++ {
		wait(t, bApplied, "target b's requests")
	}
	// a's three idle workers each wait out the pause; none sends meanwhile.
	for waiting := 0; waiting < 3; {
		select {
		case i := <-aSent:
			t.Errorf("row %d went to a during its pause", i)
			waiting = 3
		case d := <-clock.Slept:
			if d == pause {
				waiting++
			}
		case <-time.After(safetyNet):
			t.Fatal("timed out waiting for a's workers to wait for the pause")
		}
	}
	clock.Release(pause)

	if err := wait(t, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, c := range a.Calls()[1:] {
		if c.At.Before(pauseEnd) {
			t.Errorf("row %d attempt %d went to a at %v, before the pause ended at %v", c.Op.Index, c.Attempt, c.At, pauseEnd)
		}
	}
	for _, c := range b.Calls() {
		if !c.At.Before(pauseEnd) {
			t.Errorf("row %d went to b at %v: b was held by a's pause", c.Op.Index, c.At)
		}
	}
	got := sink.byIndex(t)
	for _, op := range ops {
		checkRow(t, got[op.Index], op, Applied)
	}
	if res := got[0]; res.Attempts != 2 || res.Retries != 1 {
		t.Errorf("row 0: attempts %d retries %d, want 2 and 1", res.Attempts, res.Retries)
	}
}

// TestRunRetryAfterHoldsRequestsWaitingForAWorkerSlot: a request waiting for
// a global Workers slot must not be sent during a pause that began while it
// waited.
func TestRunRetryAfterHoldsRequestsWaitingForAWorkerSlot(t *testing.T) {
	const pause = 10 * time.Second
	clock := newManualClock()
	held, release := make(chan struct{}), make(chan struct{})
	otherSent := make(chan int, 4)
	var first sync.Once
	m := &mockAdapter{ApplyFunc: func(_ context.Context, op Op, attempt int) (Reply, error) {
		isFirst := false
		first.Do(func() { isFirst = true })
		if isFirst {
			close(held)
			<-release
			return Reply{}, retryable(pause)
		}
		otherSent <- op.Index
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(2, map[string]Adapter{"a": m})
	r.Workers = 1
	r.Clock = clock
	ops := spreadOps(2, []string{"a"}, 2)
	done := runAsync(context.Background(), r, sliceSource(ops), &memSink{})

	wait(t, held, "the first request")
	close(release) // the first request gets its 429 with Retry-After

	for waiting := false; !waiting; {
		select {
		case i := <-otherSent:
			t.Errorf("row %d was sent during the target's pause", i)
			waiting = true
		case d := <-clock.Slept:
			waiting = d == pause
		case <-time.After(safetyNet):
			t.Fatal("neither a request nor a wait for the pause")
		}
	}
	// Row 0's backoff may begin before or after this: Release ends both.
	clock.Release(time.Minute)
	if err := wait(t, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunReader(t *testing.T) {
	inState := func(context.Context, Op, int) (State, error) {
		return State{InState: true, HTTPStatus: 200, Current: "disabled"}, nil
	}
	notInState := func(context.Context, Op, int) (State, error) {
		return State{HTTPStatus: 200, Current: "enabled"}, nil
	}
	cases := []struct {
		name       string
		reader     bool
		read       func(context.Context, Op, int) (State, error)
		action     Action
		dryRun     bool
		want       Outcome
		wantDetail string
		wantTrace  []string
	}{
		{"in state: already, no change sent", true, inState, Disable, false, Already, "already disabled", []string{"read 0 1"}},
		{"not in state: read, then apply", true, notInState, Disable, false, Applied, "disabled", []string{"read 0 1", "apply 0 1"}},
		{"dry run, in state", true, inState, Disable, true, Planned, "no change", []string{"read 0 1"}},
		{"dry run, not in state", true, notInState, Enable, true, Planned, "would change", []string{"read 0 1"}},
		{"dry run, no reader", false, nil, Disable, true, Planned, "unknown state", nil},
		{"dry run, no reader, toggle", false, nil, ToggleStatus, true, Planned, "unknown state", nil},
		{"reader, action it cannot read", true, inState, UpgradeRole, false, Applied, "role set to", []string{"apply 0 1"}},
		{"reader, dry run, action it cannot read", true, inState, UpgradeRole, true, Planned, "unknown state", nil},
		{"read refused: failed, nothing sent", true, func(context.Context, Op, int) (State, error) {
			return State{}, permanent(CodeNotFound, 404, "no such user")
		}, Disable, false, Failed, "no such user", []string{"read 0 1"}},
		{"read retried", true, func(_ context.Context, _ Op, attempt int) (State, error) {
			if attempt == 1 {
				return State{}, retryable(0)
			}
			return State{InState: true, HTTPStatus: 200, Current: "disabled"}, nil
		}, Disable, false, Already, "already disabled", []string{"read 0 1", "read 0 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := &trace{}
			m := &mockAdapter{Trace: tr, IdempotentFunc: toggleOnly}
			var a Adapter = m
			if c.reader {
				a = &readerAdapter{mockAdapter: m, ReadFunc: c.read}
			}
			r := newRunner(1, map[string]Adapter{"t": a})
			r.DryRun = c.dryRun
			op := newOp(0, "t", "u1", c.action)
			op.Role = "Member"
			sink := &memSink{} // intents: TestRunIntentBeforeEveryWrite

			if err := runSafely(t, r, sliceSource([]Op{op}), sink); err != nil {
				t.Fatalf("Run: %v", err)
			}

			res := sink.Results()
			if len(res) != 1 {
				t.Fatalf("%d results, want 1", len(res))
			}
			checkRow(t, res[0], op, c.want)
			// A plan's detail is exactly one of the three phrases README's "Outcomes and exit codes" gives.
			if !strings.HasPrefix(res[0].Detail, c.wantDetail) || (c.want == Planned && res[0].Detail != c.wantDetail) {
				t.Errorf("detail %q, want %q", res[0].Detail, c.wantDetail)
			}
			if got := tr.all(); !slices.Equal(got, c.wantTrace) {
				t.Errorf("the vendor saw %q, want %q", got, c.wantTrace)
			}
			if res[0].Attempts != len(c.wantTrace) {
				t.Errorf("attempts %d, want %d (reads included)", res[0].Attempts, len(c.wantTrace))
			}
		})
	}
}

// TestRunAmbiguousReadIsNotUnknown: a read changes nothing, so a read that
// never got a clear answer leaves the user untouched and the row failed,
// not unknown ("may have taken effect").
func TestRunAmbiguousReadIsNotUnknown(t *testing.T) {
	m := &mockAdapter{}
	a := &readerAdapter{mockAdapter: m, ReadFunc: func(context.Context, Op, int) (State, error) {
		return State{}, ambiguous()
	}}
	r := newRunner(1, map[string]Adapter{"t": a})
	op := newOp(0, "t", "u1", Disable)
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource([]Op{op}), sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	res := sink.Results()
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	checkRow(t, res[0], op, Failed)
	if m.count("apply") != 0 {
		t.Errorf("a change was sent after the read failed")
	}
}

// TestRunIntentBeforeEveryWrite: every write, idempotent or not, is
// journalled and committed before it is sent, so that after a crash the
// writes that may have arrived are known (undo.csv lists them).
func TestRunIntentBeforeEveryWrite(t *testing.T) {
	t.Run("exact order", func(t *testing.T) {
		tr := &trace{}
		m := &mockAdapter{Trace: tr, IdempotentFunc: toggleOnly, ApplyFunc: func(_ context.Context, op Op, attempt int) (Reply, error) {
			if op.Index == 0 && attempt == 1 {
				return Reply{}, retryable(0)
			}
			return Reply{HTTPStatus: 200}, nil
		}}
		r := newRunner(1, map[string]Adapter{"t": m})
		ops := []Op{newOp(0, "t", "u0", ToggleStatus), newOp(1, "t", "u1", Disable), newOp(2, "t", "u2", ToggleStatus)}
		sink := &memSink{Trace: tr, TraceCommits: true}

		if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
			t.Fatalf("Run: %v", err)
		}

		want := []string{"intent 0 1", "apply 0 1", "intent 0 2", "apply 0 2", "intent 1 1", "apply 1 1", "intent 2 1", "apply 2 1"}
		var got []string
		pending, committed := map[string]bool{}, map[string]bool{}
		for _, line := range tr.all() {
			kind, id, _ := strings.Cut(line, " ")
			switch kind {
			case "commit":
				for id := range pending {
					committed[id] = true
				}
				clear(pending)
				continue
			case "intent":
				pending[id] = true
			case "apply":
				if !committed[id] {
					t.Errorf("apply %s was sent before its intent was committed: %q", id, tr.all())
				}
			}
			got = append(got, line)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %q\nwant %q", got, want)
		}
		for _, in := range sink.Intents() {
			op := ops[in.Op.Index]
			if !reflect.DeepEqual(in.Op, op) {
				t.Errorf("intent for %+v, want %+v", in.Op, op)
			}
		}
	})

	t.Run("many rows in parallel", func(t *testing.T) {
		tr := &trace{}
		m := &mockAdapter{Trace: tr, IdempotentFunc: toggleOnly}
		r := newRunner(4, map[string]Adapter{"t": m})
		ops := make([]Op, 300)
		for i := range ops {
			ops[i] = newOp(i, "t", fmt.Sprintf("u%d", i%50), ToggleStatus)
		}
		sink := &memSink{Trace: tr}

		if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
			t.Fatalf("Run: %v", err)
		}

		seen := map[string]bool{}
		for _, line := range tr.all() {
			if rest, ok := strings.CutPrefix(line, "apply "); ok && !seen["intent "+rest] {
				t.Errorf("%q came before its intent", line)
			}
			seen[line] = true
		}
		if n := len(sink.Intents()); n != len(ops) {
			t.Errorf("%d intents for %d toggles", n, len(ops))
		}
	})
}

func TestRunIntentErrorEndsTheRun(t *testing.T) {
	errDisk := errors.New("disk full")
	m := &mockAdapter{IdempotentFunc: toggleOnly}
	r := newRunner(2, map[string]Adapter{"t": m})
	ops := make([]Op, 20)
	for i := range ops {
		ops[i] = newOp(i, "t", fmt.Sprintf("u%d", i), ToggleStatus)
	}
	sink := &memSink{IntentErr: func(Op, int) error { return errDisk }}

	err := runSafely(t, r, sliceSource(ops), sink)

	if !errors.Is(err, errDisk) {
		t.Errorf("Run returned %v, want the sink's error", err)
	}
	if n := m.count("apply"); n != 0 {
		t.Errorf("%d toggles were sent although their intent was not recorded", n)
	}
	if n := len(sink.Results()); n != 0 {
		t.Errorf("%d results recorded for rows never sent", n)
	}
}

func TestRunResultErrorEndsTheRun(t *testing.T) {
	errDisk := errors.New("disk full")
	names := []string{"a", "b"}
	adapters := map[string]Adapter{}
	for _, n := range names {
		adapters[n] = &mockAdapter{IdempotentFunc: toggleOnly}
	}
	r := newRunner(4, adapters)
	r.Window = 32
	ops := spreadOps(5000, names, 200)
	for i := range ops {
		if i%3 == 0 {
			ops[i].Action = ToggleStatus // some rows go through the intent path too
		}
	}
	calls := 0
	sink := &memSink{ResultErr: func(Result) error {
		calls++
		if calls >= 10 {
			return errDisk
		}
		return nil
	}}

	err := runSafely(t, r, sliceSource(ops), sink)

	if !errors.Is(err, errDisk) {
		t.Errorf("Run returned %v, want the sink's error", err)
	}
}

func TestRunStop(t *testing.T) {
	t.Run("rows in flight finish, rows not started get no result", func(t *testing.T) {
		arrived := make(chan int, 16)
		release := make(chan struct{})
		m := &mockAdapter{ApplyFunc: func(_ context.Context, op Op, _ int) (Reply, error) {
			arrived <- op.Index
			<-release
			return Reply{HTTPStatus: 200}, nil
		}}
		r := newRunner(2, map[string]Adapter{"a": m})
		stop := make(chan struct{})
		r.Stop = stop
		ops := spreadOps(10, []string{"a"}, 10)
		ops = append(ops, newOp(10, "a", ops[0].User, Enable)) // parked behind row 0
		sink := &memSink{}
		done := runAsync(context.Background(), r, sliceSource(ops), sink)

		inFlight := []int{wait(t, arrived, "a request"), wait(t, arrived, "a second request")}
		close(stop)
		close(release)

		if err := wait(t, done, "Run to return after Stop"); err != nil {
			t.Fatalf("Run: %v", err)
		}
		got := sink.byIndex(t)
		if len(got) != len(inFlight) {
			t.Errorf("%d results, want only the %d rows in flight %v", len(got), len(inFlight), inFlight)
		}
		for _, i := range inFlight {
			checkRow(t, got[i], ops[i], Applied)
		}
		if n := m.count("apply"); n != 2 {
			t.Errorf("%d requests sent, want the 2 in flight at Stop", n)
		}
	})

	t.Run("ends an endless input", func(t *testing.T) {
		stop := make(chan struct{})
		var once sync.Once
		r := newRunner(4, map[string]Adapter{"a": &mockAdapter{}})
		r.Stop, r.Window = stop, 8
		i := 0
		src := func() (Op, error) {
			i++
			return newOp(i-1, "a", fmt.Sprintf("u%d", i%100), Disable), nil
		}
		sink := &memSink{OnResult: func(res Result) {
			if res.Index >= 50 {
				once.Do(func() { close(stop) })
			}
		}}

		if err := runSafely(t, r, src, sink); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, res := range sink.byIndex(t) {
			if res.Outcome != Applied {
				t.Errorf("row %d: %s", res.Index, res.Outcome)
			}
		}
	})

	t.Run("a row waiting to retry is abandoned", func(t *testing.T) {
		clock := newManualClock()
		m := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) {
			return Reply{}, retryable(time.Minute)
		}}
		r := newRunner(1, map[string]Adapter{"a": m})
		r.Clock = clock
		stop := make(chan struct{})
		r.Stop = stop
		sink := &memSink{}
		done := runAsync(context.Background(), r, sliceSource([]Op{newOp(0, "a", "u", Disable)}), sink)

		wait(t, clock.Slept, "the backoff") // the fake clock never moves: it waits until Stop
		close(stop)

		if err := wait(t, done, "Run to return after Stop"); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := len(sink.Results()); n != 0 {
			t.Errorf("%d results, want none: the row was left to a later run", n)
		}
		if n := m.count("apply"); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

func TestRunContextCancel(t *testing.T) {
	t.Run("requests in flight", func(t *testing.T) {
		arrived := make(chan int, 16)
		m := &mockAdapter{ApplyFunc: func(ctx context.Context, op Op, _ int) (Reply, error) {
			arrived <- op.Index
			<-ctx.Done()
			return Reply{}, &Error{Kind: Ambiguous, Code: CodeTimeout, Err: ctx.Err()}
		}}
		r := newRunner(2, map[string]Adapter{"a": m})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := runAsync(ctx, r, sliceSource(spreadOps(10, []string{"a"}, 10)), &memSink{})

		wait(t, arrived, "a request")
		wait(t, arrived, "a second request")
		cancel()

		if err := wait(t, done, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})

	t.Run("waiting out a pause", func(t *testing.T) {
		clock := newManualClock()
		m := &mockAdapter{ApplyFunc: func(context.Context, Op, int) (Reply, error) {
			return Reply{}, retryable(time.Minute)
		}}
		r := newRunner(2, map[string]Adapter{"a": m})
		r.Clock = clock
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := runAsync(ctx, r, sliceSource(spreadOps(10, []string{"a"}, 10)), &memSink{})

		wait(t, clock.Slept, "a wait")
		cancel()

		if err := wait(t, done, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})

	t.Run("window full", func(t *testing.T) {
		held := make(chan struct{}, 1)
		m := &mockAdapter{ApplyFunc: func(ctx context.Context, _ Op, _ int) (Reply, error) {
			select {
			case held <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return Reply{}, ctx.Err()
		}}
		r := newRunner(1, map[string]Adapter{"a": m})
		r.Window = 2 // the producer blocks on the window while the request hangs
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := runAsync(ctx, r, sliceSource(spreadOps(100, []string{"a"}, 100)), &memSink{})

		wait(t, held, "a request")
		cancel()

		if err := wait(t, done, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func TestRunInputErrors(t *testing.T) {
	t.Run("unknown target", func(t *testing.T) {
		r := newRunner(1, map[string]Adapter{"a": &mockAdapter{}})
		ops := []Op{newOp(0, "a", "u", Disable), newOp(1, "nope", "u", Disable)}
		err := runSafely(t, r, sliceSource(ops), &memSink{})
		if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("Run returned %v, want an error naming the target and its line", err)
		}
	})
	t.Run("source error", func(t *testing.T) {
		errRead := errors.New("read failed")
		r := newRunner(1, map[string]Adapter{"a": &mockAdapter{}})
		n := 0
		src := func() (Op, error) {
			n++
			if n > 3 {
				return Op{}, errRead
			}
			return newOp(n-1, "a", fmt.Sprintf("u%d", n), Disable), nil
		}
		if err := runSafely(t, r, src, &memSink{}); !errors.Is(err, errRead) {
			t.Errorf("Run returned %v, want the source's error", err)
		}
	})
}

func TestSequencer(t *testing.T) {
	s := sequencer{waiting: map[Key][]Op{}}
	a0, a1, a2 := newOp(0, "t", "alice", Disable), newOp(1, "t", "alice", Enable), newOp(3, "t", "alice", Disable)
	b := newOp(2, "t", "bob", Disable)
	other := newOp(4, "u", "alice", Disable) // same user, another target: another key

	for _, step := range []struct {
		op   Op
		want bool
	}{{a0, true}, {a1, false}, {b, true}, {a2, false}, {other, true}} {
		if got := s.admit(step.op); got != step.want {
			t.Errorf("admit(row %d) = %v, want %v", step.op.Index, got, step.want)
		}
	}
	for _, want := range []Op{a1, a2} {
		if got, ok := s.done(a0.Key()); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("done(alice) = row %d, %v; want row %d", got.Index, ok, want.Index)
		}
	}
	if _, ok := s.done(a0.Key()); ok {
		t.Error("done(alice) returned a row after the last one")
	}
	if !s.admit(newOp(5, "t", "alice", Enable)) {
		t.Error("a key with nothing running was not admitted")
	}
	if _, ok := s.done(b.Key()); ok {
		t.Error("done(bob) returned a row, none was parked")
	}
}

// TestSendWindow: however requests wake, no window of windowSpan holds more
// than rate + burst sends.
func TestSendWindow(t *testing.T) {
	w := newSendWindow(rate.NewLimiter(5, 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		if d := w.reserve(t0.Add(time.Duration(i) * time.Millisecond)); d != 0 {
			t.Fatalf("send %d waited %v within rate + burst", i, d)
		}
	}
	if d := w.reserve(t0.Add(500 * time.Millisecond)); d != windowSpan-500*time.Millisecond {
		t.Errorf("a 7th send in the window waits %v, want %v", d, windowSpan-500*time.Millisecond)
	}
	if d := w.reserve(t0.Add(windowSpan)); d != 0 {
		t.Errorf("once the oldest send left the window, a send waited %v", d)
	}
	if d := w.reserve(t0.Add(windowSpan)); d == 0 {
		t.Errorf("the second-oldest send is still in the window")
	}
	if newSendWindow(nil) != nil || newSendWindow(rate.NewLimiter(rate.Inf, 1)) != nil {
		t.Errorf("an unpaced target needs no window")
	}
}

// TestRunProtectedUsers: a protected user is never disabled, downgraded or
// toggled, and nothing is sent for such a row; giving access back is allowed.
func TestRunProtectedUsers(t *testing.T) {
	m := &mockAdapter{}
	r := newRunner(2, map[string]Adapter{"a": m})
	r.Targets["a"].Protected = NewProtected([]string{"admin-1"}, nil)
	ops := []Op{
		newOp(0, "a", "admin-1", Disable),
		newOp(1, "a", "admin-1", Enable),
		newOp(2, "a", "someone", Disable),
		newOp(3, "a", "admin-1", ToggleStatus),
	}
	sink := &memSink{}
	if err := r.Run(context.Background(), sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	for i, want := range []Outcome{Skipped, Applied, Applied, Skipped} {
		if got[i].Outcome != want {
			t.Errorf("row %d: %s, want %s", i, got[i].Outcome, want)
		}
	}
	if got[0].Attempts != 0 || !strings.Contains(got[0].Detail, "protected") {
		t.Errorf("protected row: %+v", got[0])
	}
	for _, c := range m.Calls() {
		if c.Op.User == "admin-1" && c.Op.Action != Enable {
			t.Errorf("a request was sent for protected row %d", c.Op.Index)
		}
	}
}

// TestInflight: the cap blocks at its limit, a release or a larger limit
// lets a waiter through, and a cancelled waiter leaves no trace.
func TestInflight(t *testing.T) {
	f := newInflight(2)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := f.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() { got <- f.acquire(ctx) }()
	f.release()
	if err := wait(t, got, "a waiter after a release"); err != nil {
		t.Fatal(err)
	}
	go func() { got <- f.acquire(ctx) }()
	f.setLimit(3)
	if err := wait(t, got, "a waiter after the limit grew"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- f.acquire(cctx) }()
	cancel()
	if err := wait(t, got, "a cancelled waiter"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used != 3 || f.waiting != 0 {
		t.Errorf("used %d waiting %d, want 3 and 0", f.used, f.waiting)
	}
}

// TestAutoLimit is Little's law with a 25% margin, within [1, ceiling].
func TestAutoLimit(t *testing.T) {
	for _, c := range []struct {
		rate    rate.Limit
		latency time.Duration
		want    int
	}{{400, 50 * time.Millisecond, 26}, {10, 50 * time.Millisecond, 2}, {1000, 10 * time.Second, 256}, {rate.Inf, time.Second, 256}} {
		if got := autoLimit(rate.NewLimiter(c.rate, 1), c.latency, 256); got != c.want {
			t.Errorf("autoLimit(%v/s, %v) = %d, want %d", c.rate, c.latency, got, c.want)
		}
	}
}
