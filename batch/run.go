package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Source yields the ops to run, in input order, and io.EOF after the last.
type Source func() (Op, error)

// Sink keeps the record of a run. Intent and Result are called one at a
// time, from a single goroutine; Commit is called one at a time, mostly
// from other goroutines, and may run while Intent and Result are called
// (the last Commit, after both, is the writer's own). An error from any
// ends the run: it means the record of outcomes can no longer be kept.
type Sink interface {
	// Intent records that a write is about to be sent. The request is sent
	// only after a Commit called after Intent returned nil: after a crash,
	// the intents without a result are the writes that may have arrived.
	Intent(op Op, attempt int) error
	// Result records a finished row.
	Result(Result) error
	// Commit makes durable every intent recorded before it was called (one
	// sync for all of them: group commit), and the results of rows that
	// had one. What is recorded while it runs waits for the next Commit.
	Commit() error
}

// Runner applies ops to their targets.
type Runner struct {
	Targets map[string]*Target
	Retry   Retry
	// DryRun reads where the vendor can and sends no change.
	DryRun bool
	// Workers caps requests in flight across all targets; 0: no global cap.
	Workers int
	// Window caps the rows read ahead of the ones finished (default 4096),
	// which bounds memory whatever the file's size.
	Window int
	// Stop, when closed, stops dispatching: rows not yet started are left
	// without a Result (they are reported skipped) while rows in flight finish.
	Stop  <-chan struct{}
	Clock Clock
	Log   zerolog.Logger
	// Interrupted marks the rows (by Index) whose write an earlier process
	// may have sent before it died. Where the vendor reads state, a resumed
	// run that finds such a user in the requested state reports the change
	// as applied (the read before the write showed it was this run's, and
	// undo.csv must list it); where it cannot, a vendor's "already" ends
	// Already with detail AlreadyAfterInterruption, for check.csv.
	Interrupted map[int]bool
	// CatchUp, when set, is how late a due row may still run: a row whose
	// effective_at passed longer ago ends skipped.
	CatchUp time.Duration
	// Gate, when set, admits each row before it is sent and hears how it
	// ended (the ledger).
	Gate Gate
	// Plan, when set, is a saved plan's word on each row by Index (apply):
	// rows it found in state end already unsent; rows it said would change
	// but are found in state end skipped as drifted.
	Plan func(index int) Plan
}

// Run reads src until io.EOF, runs every op, and passes each Result to sink.
// Rows for the same (target, user) run in input order, one at a time. It
// returns nil when every op was run or the run was stopped; an error only for
// what ends the whole run (src or sink failing, ctx ending, a target
// without its settings).
func (r *Runner) Run(ctx context.Context, src Source, sink Sink) error {
	if err := r.defaults(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &run{
		Runner: r,
		cancel: cancel,
		window: semaphore.NewWeighted(int64(r.Window)),
		seq:    sequencer{waiting: map[Key][]Op{}},
		queues: map[string]chan Op{},
		events: make(chan event, 256),
		halt:   make(chan struct{}),
	}
	if r.Workers > 0 {
		run.global = semaphore.NewWeighted(int64(r.Workers))
	}
	g, gctx := errgroup.WithContext(ctx)
	// Waits (pacing, backoff) end on Stop; requests in flight do not.
	waitCtx, stopWaiting := context.WithCancel(gctx)
	defer stopWaiting()
	go func() {
		select {
		case <-r.Stop:
			stopWaiting()
		case <-run.halt:
			stopWaiting()
		case <-waitCtx.Done():
		}
	}()
	for name, t := range r.Targets {
		q := make(chan Op, r.Window)
		run.queues[name] = q
		for i := 0; i < t.Concurrency; i++ {
			g.Go(func() error { return run.work(gctx, waitCtx, t, q) })
		}
	}
	g.Go(func() error { return run.produce(gctx, src) })

	writeErr := make(chan error, 1)
	go func() {
		writeErr <- run.write(sink, cancel)
	}()
	err := g.Wait()
	close(run.events)
	if werr := <-writeErr; werr != nil {
		return werr
	}
	if ferr := run.fatalErr(); ferr != nil {
		return ferr
	}
	return err
}

// haltRun stops the run for a reason no row can carry (the gate failed)
// as Stop does: no row starts, rows in flight finish and are recorded, and
// Run returns err.
func (r *run) haltRun(err error) {
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	if r.fatal == nil {
		r.fatal = err
		close(r.halt)
	}
}

// halted reports whether haltRun was called.
func (r *run) halted() bool {
	select {
	case <-r.halt:
		return true
	default:
		return false
	}
}

func (r *run) fatalErr() error {
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	return r.fatal
}

// event is a message to the single writer: a finished row, or an intent to
// send whose recording the sender waits for.
type event struct {
	res     *Result
	intent  *Op
	attempt int
	ack     chan error
}

func (r *Runner) defaults() error {
	r.Retry = r.Retry.withDefaults()
	if r.Window <= 0 {
		r.Window = 4096
	}
	if r.Clock == nil {
		r.Clock = RealClock{}
	}
	for _, t := range r.Targets {
		if err := t.init(); err != nil {
			return err
		}
	}
	return nil
}

type run struct {
	*Runner
	cancel  context.CancelFunc
	fatalMu sync.Mutex
	fatal   error
	window  *semaphore.Weighted
	global  *semaphore.Weighted
	seq     sequencer
	queues  map[string]chan Op
	events  chan event
	halt    chan struct{} // closed by haltRun
}

func (r *run) stopped() bool {
	select {
	case <-r.Stop:
		return true
	case <-r.halt:
		return true
	default:
		return false
	}
}

// produce feeds ops to the targets' queues, then, once every op has
// finished, closes the queues so the workers end.
func (r *run) produce(ctx context.Context, src Source) error {
	for !r.stopped() {
		op, err := src()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if _, ok := r.queues[op.Target]; !ok {
			return fmt.Errorf("line %d: target %q is not configured", op.Line, op.Target)
		}
		if err := r.window.Acquire(ctx, 1); err != nil {
			return err
		}
		if r.seq.admit(op) {
			r.queues[op.Target] <- op // never blocks: a queue holds Window ops
		}
	}
	// Wait for the rows in flight: they may still release parked rows. Only
	// then may the queues close; on an error they stay open and the workers
	// end through ctx instead.
	if err := r.window.Acquire(ctx, int64(r.Window)); err != nil {
		return err
	}
	for _, q := range r.queues {
		close(q)
	}
	return nil
}

func (r *run) work(ctx, waitCtx context.Context, t *Target, q chan Op) error {
	for {
		var op Op
		select {
		case <-ctx.Done():
			return ctx.Err()
		case next, ok := <-q:
			if !ok {
				return nil
			}
			op = next
		}
		if r.stopped() {
			r.finish(op, nil)
			continue
		}
		res, done := r.process(ctx, waitCtx, t, op)
		if !done && ctx.Err() != nil {
			return ctx.Err()
		}
		if !done {
			r.finish(op, nil)
			continue
		}
		r.finish(op, &res)
	}
}

// finish hands a row's result to the writer, releases the row's window slot
// and dispatches the next row for the same (target, user), if any.
func (r *run) finish(op Op, res *Result) {
	if res != nil {
		r.events <- event{res: res}
	}
	if next, ok := r.seq.done(op.Key()); ok {
		r.queues[next.Target] <- next
	}
	r.window.Release(1)
}

// write is the single writer: every intent and result goes through it, in
// the order they happen. Syncs are pipelined group commits: one Commit runs
// at a time, on its own goroutine, while the writer goes on recording what
// arrives; when it returns, the intents it covered are acknowledged and the
// next Commit starts at once with everything recorded meanwhile. A write
// waits for at most two syncs however many workers wait with it, and the
// sync, the writer's largest cost, never leaves it idle. A sink error
// cancels the run.
func (r *run) write(sink Sink, cancel context.CancelFunc) error {
	w := &writer{run: r, sink: sink, done: make(chan error, 1)}
	events := r.events
	for events != nil || w.running {
		w.startCommit()
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.batch = r.take(append(w.batch[:0], ev))
			w.record()
		case err := <-w.done:
			w.committed(err)
		}
		if w.err != nil {
			cancel() // and keep draining so workers never block
			w.ackAll(&w.waiting)
		}
	}
	if w.err == nil && w.recorded {
		w.err = sink.Commit() // the last results of rows that had an intent
	}
	return w.err
}

// writer is the state of run.write.
type writer struct {
	*run
	sink  Sink
	done  chan error // the running Commit's answer
	err   error
	batch []event
	// waiting holds the acks of intents recorded since the running commit
	// started; covered, those it covers.
	waiting, covered []chan error
	recorded         bool // since the running commit started
	running          bool
}

// startCommit starts a Commit of what was recorded, unless one runs.
func (w *writer) startCommit() {
	if w.running || !w.recorded || w.err != nil {
		return
	}
	w.waiting, w.covered = w.covered[:0], w.waiting
	go func() { w.done <- w.sink.Commit() }()
	w.running, w.recorded = true, false
}

// record passes the batch to the sink and keeps its intents' acks.
func (w *writer) record() {
	for _, ev := range w.batch {
		if w.err == nil {
			w.err = w.run.record(w.sink, ev)
			w.recorded = true
		}
		if ev.ack == nil {
			continue
		}
		if w.err != nil {
			ev.ack <- w.err
			continue
		}
		w.waiting = append(w.waiting, ev.ack)
	}
}

// committed acknowledges the intents the commit that returned err covered.
func (w *writer) committed(err error) {
	w.running = false
	if w.err == nil {
		w.err = err
	}
	w.ackAll(&w.covered)
}

// ackAll sends each ack the writer's state: nil after a commit, or the
// error that prevents it.
func (w *writer) ackAll(acks *[]chan error) {
	for _, ack := range *acks {
		ack <- w.err
	}
	clear(*acks)
	*acks = (*acks)[:0]
}

// take appends the events that are ready now, up to a bound.
func (r *run) take(batch []event) []event {
	for len(batch) < 256 {
		select {
		case ev, ok := <-r.events:
			if !ok {
				return batch
			}
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

func (r *run) record(sink Sink, ev event) error {
	if ev.intent != nil {
		return sink.Intent(*ev.intent, ev.attempt)
	}
	return sink.Result(*ev.res)
}

// intent asks the writer to record an intent and waits until it has.
func (r *run) intent(op Op, attempt int) error {
	ack := make(chan error, 1)
	r.events <- event{intent: &op, attempt: attempt, ack: ack}
	return <-ack
}

// sequencer keeps rows for the same (target, user) in input order and never
// in flight together: a row whose key is busy waits until the one before it
// finishes.
type sequencer struct {
	mu      sync.Mutex
	waiting map[Key][]Op // a present key is queued or running
}

// admit reports whether op may be dispatched now; if not, it is parked.
func (s *sequencer) admit(op Op) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := op.Key()
	if q, busy := s.waiting[k]; busy {
		s.waiting[k] = append(q, op)
		return false
	}
	s.waiting[k] = nil
	return true
}

// done marks the key's running row finished and returns the next parked row.
func (s *sequencer) done(key Key) (Op, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.waiting[key]
	if len(q) == 0 {
		delete(s.waiting, key)
		return Op{}, false
	}
	next := q[0]
	q[0] = Op{}
	s.waiting[key] = q[1:]
	return next, true
}
