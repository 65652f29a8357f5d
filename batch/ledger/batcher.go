package ledger

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// Batcher claims a run's changes ahead, many in one transaction, and
// records how they ended many at a time, so that one commit (one fsync)
// serves many rows even where one worker sends them one after another
// (README "Scheduling").
//
// The run tells it of each row queued for sending (Expect), asks for a
// row's claim just before its first request (Claim), and tells it how the
// row ended (Done, Release, Leave). A Claim not answered ahead claims its
// row together with the next expected rows of the row's target, after the
// Done and Release records waiting, in one transaction. Those records are
// also written in the background as they come, one transaction at a time
// (group commit), and Close writes the rest and releases the rows claimed
// ahead that were never asked for.
//
// A row is claimed ahead only while it is the only unfinished row of its
// user the Batcher knows: what a claim finds may depend on the user's
// earlier rows (a later change supersedes an earlier one), so such a row is
// claimed when asked for, after the records of the rows before it.
//
// Once a write fails, every later call returns its error: the ledger is lost
// to this run, and no further change may be claimed or sent.
type Batcher struct {
	l Ledger
	// size is how many rows a claim takes ahead: it doubles, up to
	// maxSize, each time the run had to wait for a claim, so a run that
	// sends faster than the store commits claims further ahead.
	size, maxSize int
	now           func() time.Time
	kick          chan struct{} // wakes the background writer
	quit          chan struct{}
	done          chan struct{}
	stop          sync.Once

	// wmu is held while writing, so that the writes reach the store in
	// the order they were asked for. It is taken before mu.
	wmu sync.Mutex

	mu      sync.Mutex
	rows    map[int]*aheadRow // the expected rows, by id, until they end
	queues  map[string][]int  // per target, expected rows not yet claimed, in order
	users   map[userRef]int   // unfinished expected rows per user
	supply  map[string]int    // per target, rows claimed ahead not yet asked for
	records []Step            // Done and Release steps not yet written
	err     error             // the first write's failure, or errBatcherClosed
}

// How many rows a run claims ahead in one transaction: ClaimBatch at
// first, doubling up to MaxClaimBatch while the run sends faster than the
// store commits. A process killed leaves up to about 1.5 times that many
// claimed and unsent: its --resume sends them; another run reports them
// unknown (claimed by a run that did not finish), for a person to check.
const (
	ClaimBatch    = 64
	MaxClaimBatch = 512
)

// maxRecords bounds the records waiting: past it, Done and Release write
// them before returning, so a slow store slows the run rather than memory.
const maxRecords = 4096

// scanFactor bounds how far down a target's queue a claim looks for rows
// to claim ahead, in claims.
const scanFactor = 8

var errBatcherClosed = errors.New("ledger: the run's claims are closed")

type userRef struct{ target, user string }

func refOf(k Key) userRef { return userRef{k.Target, k.userKey()} }

type aheadState int

const (
	expected aheadState = iota // known, not claimed
	claiming                   // in a claim under way: wait for ready
	claimed                    // answered, not yet asked for
	asked                      // Claim returned its answer
)

type aheadRow struct {
	id    int
	e     Entry
	state aheadState
	ready chan struct{} // closed once the claim is answered
	prev  *Entry
	err   error
	left  bool // the row ended while its claim was under way
}

// tookKey reports whether the row's claim, answered, took its key: it
// is the run's to release if the row is never sent.
func (r *aheadRow) tookKey() bool { return r.err == nil && r.prev == nil }

// NewBatcher returns a Batcher over l that claims size rows ahead in one
// transaction, up to maxSize as the run outpaces the store; now stamps the
// claims.
func NewBatcher(l Ledger, size, maxSize int, now func() time.Time) *Batcher {
	size = max(size, 1)
	b := &Batcher{
		l: l, size: size, maxSize: max(size, maxSize), now: now,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		rows: map[int]*aheadRow{}, queues: map[string][]int{}, users: map[userRef]int{}, supply: map[string]int{},
	}
	go b.writeLoop()
	return b
}

// Expect tells of a row queued for sending, by an id unique in the run
// (the row's index): e is its claim. ahead=false keeps it from being
// claimed before it is asked for (a row that may never be: not due yet),
// while it still counts as its user's unfinished row. A row the run ends
// without asking for its claim must be told with Leave.
func (b *Batcher) Expect(id int, e Entry, ahead bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.rows[id]; ok || b.err != nil {
		return
	}
	b.rows[id] = &aheadRow{id: id, e: e}
	if ahead {
		b.queues[e.Target] = append(b.queues[e.Target], id)
	}
	b.users[refOf(e.Key)]++
}

// Claim answers as Ledger.Claim does for the row id, whose claim is e:
// from a claim made ahead, or by claiming it now with the next rows
// expected for its target.
func (b *Batcher) Claim(ctx context.Context, id int, e Entry) (*Entry, error) {
	if prev, err, ok := b.answered(id); ok {
		return prev, err
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	// A claim that took the row ahead may have ended while this one waited.
	if prev, err, ok := b.answered(id); ok {
		return prev, err
	}
	b.mu.Lock()
	if b.err != nil {
		defer b.mu.Unlock()
		return nil, b.err
	}
	self := b.rows[id]
	if self == nil {
		self = &aheadRow{id: id} // not expected: asked for alone
	} else {
		b.grow() // the run waits for a row it was told of
	}
	self.e, self.state, self.ready = e, claiming, make(chan struct{})
	claims := append([]*aheadRow{self}, b.pick(e.Target, b.size-1)...)
	records := b.takeRecords()
	b.mu.Unlock()

	b.write(ctx, records, claims)
	b.mu.Lock()
	defer b.mu.Unlock()
	self.state = asked
	return self.prev, self.err
}

// write makes records, then claims, in one transaction, and hands each
// claimed row its answer. Call it holding wmu.
func (b *Batcher) write(ctx context.Context, records []Step, claims []*aheadRow) error {
	at := b.now()
	// One order of keys for every run, so that two runs claiming
	// overlapping batches lock the keys in the same order; a user's rows
	// keep theirs.
	order := slices.Clone(claims)
	slices.SortStableFunc(order, func(x, y *aheadRow) int {
		return cmp.Or(cmp.Compare(x.e.Target, y.e.Target), cmp.Compare(x.e.userKey(), y.e.userKey()))
	})
	steps := records
	for _, c := range order {
		ce := c.e
		ce.At = at
		steps = append(steps, Step{Kind: StepClaim, Entry: ce})
	}
	answers, err := b.l.Apply(context.WithoutCancel(ctx), steps)

	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.err == nil {
		b.err = err
	}
	for i, c := range order {
		c.state, c.err = claimed, err
		if err == nil {
			c.prev = answers[len(records)+i]
		}
		close(c.ready)
		if c.left {
			b.leaveClaimed(c)
		}
	}
	return err
}

// answered returns the answer of a claim made ahead for the row id, once
// it is in, and marks the row asked for; ok is false if none was made.
func (b *Batcher) answered(id int) (prev *Entry, err error, ok bool) {
	b.mu.Lock()
	r := b.rows[id]
	if r == nil || (r.state != claiming && r.state != claimed) {
		defer b.mu.Unlock()
		return nil, b.err, b.err != nil
	}
	if r.state == claiming {
		b.grow()
	}
	b.mu.Unlock()
	<-r.ready
	b.mu.Lock()
	defer b.mu.Unlock()
	r.state = asked
	b.drawn(r.e.Target)
	if b.err != nil && r.err == nil {
		// Lost since it was claimed: nothing more is sent.
		return nil, b.err, true
	}
	return r.prev, r.err, true
}

// grow doubles the claims ahead, the run having waited for one.
func (b *Batcher) grow() {
	b.size = min(2*b.size, b.maxSize)
}

// drawn counts a row claimed ahead for target that the run asked for or
// ended, and has the background writer claim more once half are gone.
func (b *Batcher) drawn(target string) {
	b.supply[target]--
	if b.supply[target] <= b.size/2 && len(b.queues[target]) > 0 {
		b.wake()
	}
}

// pick takes, in queue order, up to n expected rows of target that may be
// claimed ahead: each the only unfinished row of its user. Rows gone or
// claimed leave the queue as it is read.
func (b *Batcher) pick(target string, n int) []*aheadRow {
	q := b.queues[target]
	var picked []*aheadRow
	kept := make([]int, 0, len(q))
	i := 0
	for ; i < len(q) && len(picked) < n && i < b.size*scanFactor; i++ {
		r := b.rows[q[i]]
		switch {
		case r == nil || r.state != expected:
			// ended, or asked for already: off the queue
		case b.users[refOf(r.e.Key)] == 1:
			r.state, r.ready = claiming, make(chan struct{})
			picked = append(picked, r)
			b.supply[target]++
		default:
			kept = append(kept, q[i])
		}
	}
	b.queues[target] = append(kept, q[i:]...)
	return picked
}

// Done records that the row id's change was made (e.Outcome applied or
// already), in the background: it is durable once a later Claim, a
// background write or Close returned without error.
func (b *Batcher) Done(id int, e Entry) error {
	return b.record(id, Step{Kind: StepDone, Entry: e})
}

// Release records that the row id's change provably did not happen, as
// Done does.
func (b *Batcher) Release(id int, e Entry) error {
	return b.record(id, Step{Kind: StepRelease, Entry: e})
}

// Leave tells that the row id ended with nothing to record: its claim, if
// it asked for one, stays (an unknown outcome), and a claim made ahead for
// a row never asked for is released.
func (b *Batcher) Leave(id int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rows[id]
	switch {
	case r == nil:
		return
	case r.state == claiming:
		r.left = true // its claim releases it once answered
		return
	case r.state == claimed:
		b.leaveClaimed(r)
		return
	}
	b.end(id)
}

// leaveClaimed ends a row claimed ahead and never asked for: the claim is
// released if it took the key.
func (b *Batcher) leaveClaimed(r *aheadRow) {
	if r.tookKey() && b.err == nil {
		b.records = append(b.records, Step{Kind: StepRelease, Entry: r.e})
		b.wake()
	}
	if b.rows[r.id] == r {
		b.drawn(r.e.Target)
		b.end(r.id)
	}
}

func (b *Batcher) record(id int, s Step) error {
	b.mu.Lock()
	if b.err != nil {
		defer b.mu.Unlock()
		return b.err
	}
	b.records = append(b.records, s)
	b.end(id)
	full := len(b.records) >= maxRecords
	b.wake()
	b.mu.Unlock()
	if full {
		return b.flush()
	}
	return nil
}

// end forgets the row id.
func (b *Batcher) end(id int) {
	r := b.rows[id]
	if r == nil {
		return
	}
	delete(b.rows, id)
	u := refOf(r.e.Key)
	if b.users[u]--; b.users[u] <= 0 {
		delete(b.users, u)
	}
}

func (b *Batcher) takeRecords() []Step {
	steps := b.records
	b.records = nil
	return steps
}

func (b *Batcher) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// writeLoop writes the waiting records as they come: those that come
// during a write share the next.
func (b *Batcher) writeLoop() {
	defer close(b.done)
	for {
		select {
		case <-b.kick:
			_ = b.flush() // a failure is kept in b.err for the next call
		case <-b.quit:
			return
		}
	}
}

// flush writes the waiting records in one transaction, and with them
// claims the next rows of each target whose rows claimed ahead run low, so
// that the run rarely waits for a claim.
func (b *Batcher) flush() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	if b.err != nil {
		defer b.mu.Unlock()
		return b.err
	}
	records := b.takeRecords()
	var claims []*aheadRow
	for _, target := range slices.Sorted(maps.Keys(b.queues)) {
		if b.supply[target] <= b.size/2 {
			claims = append(claims, b.pick(target, b.size)...)
		}
	}
	b.mu.Unlock()
	if len(records) == 0 && len(claims) == 0 {
		return nil
	}
	return b.write(context.Background(), records, claims)
}

// Close writes the records waiting and releases the rows claimed ahead and
// never asked for. Call it once the run's rows ended: its error means some
// of the run's records were not written (the ledger was lost), and the
// run's entries stay pending for its --resume to settle. Calls after it
// fail; closing again returns nil.
func (b *Batcher) Close(ctx context.Context) error {
	closing := false
	b.stop.Do(func() {
		closing = true
		close(b.quit)
	})
	if !closing {
		return nil
	}
	<-b.done
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	err := b.err
	steps := b.takeRecords()
	for _, id := range slices.Sorted(maps.Keys(b.rows)) {
		if r := b.rows[id]; r.state == claimed && r.tookKey() {
			steps = append(steps, Step{Kind: StepRelease, Entry: r.e})
		}
	}
	b.rows, b.queues, b.users, b.supply, b.err = nil, nil, nil, nil, errBatcherClosed
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if len(steps) == 0 {
		return nil
	}
	_, err = b.l.Apply(context.WithoutCancel(ctx), steps)
	return err
}
