package batch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Target is one configured vendor endpoint at run time: its adapter and the
// pacing every request to it goes through, retries included.
type Target struct {
	Name    string
	Adapter Adapter
	// Limiter paces requests, reads and writes together. Nil: unpaced.
	Limiter *rate.Limiter
	// Concurrency caps the requests in flight to this target; at least 1
	// (the config's default is auto, up to 256). With AutoConcurrency it is
	// the most the cap may grow to.
	Concurrency int
	// AutoConcurrency sizes the cap from the rate and the latency observed
	// (Little's law: in flight = rate × latency), so a slow vendor still
	// gets its full rate and a fast one is not flooded.
	AutoConcurrency bool
	// Timeout bounds one request; more than 0 (the config's default is 30s).
	Timeout time.Duration
	// Protected users are never disabled, downgraded or toggled here: such
	// rows end skipped without a request.
	Protected Protected
	// MaxWait is the longest Retry-After honoured, more than 0 (the config's
	// default is 5m): a vendor asking for longer fails the row instead of
	// pausing the target for it.
	MaxWait time.Duration
	// MaxChanges holds the run (a guard) when more rows would change here;
	// 0: no limit.
	MaxChanges int

	mu          sync.Mutex
	pausedUntil time.Time
	slots       *inflight
	window      *sendWindow   // nil when unpaced
	latency     time.Duration // moving average of request durations

	streak   streak // answers in a row that condemn the target
	stop     *stop  // set once the target is stopped for them
	accepted bool   // a request succeeded: the credentials work
}

// protects returns the protected pattern that one of names (the row's cell,
// or what a read resolved the user to) matches, when op would take the
// user's access away: enable and upgrade-role are never held.
func (t *Target) protects(op Op, names ...string) (string, bool) {
	switch op.Action {
	case Disable, DowngradeRole, ToggleStatus:
	default:
		return "", false
	}
	for _, n := range names {
		if pat, ok := t.Protected.Match(n); ok {
			return pat, true
		}
	}
	return "", false
}

// autoStart is the cap before any latency is known.
const autoStart = 4

// init readies the target's pacing. Its settings have no defaults here:
// the config owns them (README "targets.yaml"), and a zero is refused
// rather than guessed.
func (t *Target) init() error {
	switch {
	case t.Concurrency < 1:
		return fmt.Errorf("target %s: concurrency %d: must be at least 1", t.Name, t.Concurrency)
	case t.Timeout <= 0:
		return fmt.Errorf("target %s: timeout %v: must be more than 0", t.Name, t.Timeout)
	case t.MaxWait <= 0:
		return fmt.Errorf("target %s: max_wait %v: must be more than 0", t.Name, t.MaxWait)
	}
	limit := t.Concurrency
	if t.AutoConcurrency {
		limit = min(autoStart, t.Concurrency)
	}
	t.slots = newInflight(limit)
	t.window = newSendWindow(t.Limiter)
	return nil
}

// observe feeds one request's duration to the auto cap.
func (t *Target) observe(d time.Duration) {
	if !t.AutoConcurrency {
		return
	}
	t.mu.Lock()
	if t.latency == 0 {
		t.latency = d
	} else {
		t.latency = (t.latency*7 + d) / 8
	}
	lat := t.latency
	t.mu.Unlock()
	t.slots.setLimit(autoLimit(t.Limiter, lat, t.Concurrency))
}

// autoLimit is Little's law with a margin: enough requests in flight to keep
// the rate up at this latency, within [1, max].
func autoLimit(l *rate.Limiter, latency time.Duration, ceiling int) int {
	if l == nil || l.Limit() == rate.Inf {
		return ceiling
	}
	n := int(math.Ceil(float64(l.Limit())*latency.Seconds()*1.25)) + 1
	return min(max(n, 1), ceiling)
}

// inflight is a cap on requests in flight whose limit may change in use.
type inflight struct {
	mu      sync.Mutex
	limit   int
	used    int
	waiting int           // acquirers blocked on wake
	wake    chan struct{} // closed when a slot frees or the limit grows
}

func newInflight(limit int) *inflight {
	return &inflight{limit: limit, wake: make(chan struct{})}
}

func (f *inflight) acquire(ctx context.Context) error {
	for {
		f.mu.Lock()
		if f.used < f.limit {
			f.used++
			f.mu.Unlock()
			return nil
		}
		wake := f.wake
		f.waiting++
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			f.mu.Lock()
			f.waiting--
			f.mu.Unlock()
			return ctx.Err()
		}
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
	}
}

func (f *inflight) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used--
	f.wakeLocked()
}

func (f *inflight) setLimit(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > f.limit {
		f.wakeLocked()
	}
	f.limit = n
}

// wakeLocked wakes every blocked acquirer; with none (a fixed cap, where
// each worker has its slot) it costs nothing on the hot path.
func (f *inflight) wakeLocked() {
	if f.waiting == 0 {
		return
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

// pause holds every request to the target until t: a Retry-After from the
// vendor applies to all callers, not only to the one that was told.
func (t *Target) pause(until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
}

// PausedUntil is when the target's current pause (a vendor's Retry-After)
// ends; a time in the past means it is not paused.
func (t *Target) PausedUntil() time.Time { return t.resumeAt() }

func (t *Target) resumeAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pausedUntil
}

// ready waits out any pause, then for the limiter's token. A pause that
// starts while it waits for the token is waited out too. It fails only when
// ctx ends.
func (t *Target) ready(ctx context.Context, clock Clock) error {
	for {
		if err := t.waitPause(ctx, clock); err != nil {
			return err
		}
		if err := t.waitToken(ctx, clock); err != nil {
			return err
		}
		if !t.resumeAt().After(clock.Now()) {
			return nil
		}
	}
}

func (t *Target) waitPause(ctx context.Context, clock Clock) error {
	for {
		d := t.resumeAt().Sub(clock.Now())
		if d <= 0 {
			return nil
		}
		if err := clock.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

func (t *Target) waitToken(ctx context.Context, clock Clock) error {
	if t.Limiter == nil {
		return ctx.Err()
	}
	if err := t.Limiter.Wait(ctx); err != nil {
		// "would exceed context deadline" is not context.DeadlineExceeded
		// (golang/go#54541): it is a cancellation all the same.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errors.Join(context.Canceled, err)
	}
	return nil
}

// awaitWindow waits until the send window lets one more request go, and
// records it. It is called right before the request goes, after the
// intent's sync: a token taken earlier would let requests whose sync took
// long bunch up at the vendor. It returns early only when ctx ends (the
// request then fails at once).
func (t *Target) awaitWindow(ctx context.Context, clock Clock) {
	for t.window != nil {
		d := t.window.reserve(clock.Now())
		if d <= 0 || clock.Sleep(ctx, d) != nil {
			return
		}
	}
}

// windowSpan is the window sendWindow keeps: a second, and a little more to
// absorb the jitter between sending a request and the vendor seeing it.
const windowSpan = time.Second + 10*time.Millisecond

// sendWindow makes "at most rate + burst requests in any one second" hold
// at the vendor, not only on average: the token bucket alone lets requests
// that woke late (GC, a busy scheduler) bunch up with the ones on time. It
// remembers the last rate+burst send times.
type sendWindow struct {
	mu   sync.Mutex
	at   []time.Time // ring of the latest send times
	head int         // oldest entry once the ring is full
}

// maxWindow bounds the ring; faster rates rely on the token bucket alone.
const maxWindow = 100_000

func newSendWindow(l *rate.Limiter) *sendWindow {
	if l == nil || l.Limit() == rate.Inf {
		return nil
	}
	n := int(float64(l.Limit())) + l.Burst()
	if n < 1 || n > maxWindow {
		return nil
	}
	return &sendWindow{at: make([]time.Time, 0, n)}
}

// reserve records a send at now and returns 0, or returns how long to wait
// before one may be sent.
func (w *sendWindow) reserve(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.at) < cap(w.at) {
		w.at = append(w.at, now)
		return 0
	}
	if wait := w.at[w.head].Add(windowSpan).Sub(now); wait > 0 {
		return wait
	}
	w.at[w.head] = now
	w.head = (w.head + 1) % len(w.at)
	return 0
}

// Clock is the time source the pipeline waits on, injectable for tests.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, and returns ctx's error if it did.
	Sleep(ctx context.Context, d time.Duration) error
}

// ShiftedClock is the wall clock moved by Offset: a run that must act as
// if it were another day (tests of effective dates, a rehearsal) waits in
// real time all the same.
type ShiftedClock struct{ Offset time.Duration }

// Now returns time.Now moved by the offset.
func (c ShiftedClock) Now() time.Time { return time.Now().Add(c.Offset) }

// Sleep waits on a timer and the context.
func (ShiftedClock) Sleep(ctx context.Context, d time.Duration) error {
	return RealClock{}.Sleep(ctx, d)
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits on a timer and the context.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopLimit is how many answers in a row that condemn a target rather than
// a row stop it: nothing more is sent with credentials the vendor has
// refused, nor to a base_url that cannot be reached or is not the vendor's
// (README "Targets that stop").
const stopLimit = 3

// condemns is what an answer says of its whole target.
type condemns int

const (
	condemnsNothing condemns = iota
	condemnsCredentials
	condemnsAddress // batch.FaultUnreachable
	condemnsBaseURL // batch.FaultForeign
)

// condemnation classifies one attempt's error for the breaker.
func condemnation(err error) (condemns, *Error) {
	var berr *Error
	if !errors.As(err, &berr) {
		return condemnsNothing, nil
	}
	switch {
	case berr.Code == CodeUnauthorized:
		return condemnsCredentials, berr
	case berr.Fault == FaultUnreachable:
		return condemnsAddress, berr
	case berr.Fault == FaultForeign:
		return condemnsBaseURL, berr
	}
	return condemnsNothing, berr
}

// streak is the answers in a row of one kind that condemn the target.
type streak struct {
	kind   condemns
	n      int
	unsure bool  // every refusal may be about the user (CredentialsUnsure)
	lines  []int // the input lines of the rows that got them, each once
	last   *Error
}

// stop is why a target was stopped: the code and detail of its skipped rows.
type stop struct{ code, reason string }

// count feeds one attempt's outcome to the target's breaker, which stops
// the target at stopLimit answers in a row of one condemning kind, and
// logs it once. Any other answer ends the streak.
func (t *Target) count(err error, line int, log zerolog.Logger) {
	kind, berr := condemnation(err)
	if berr != nil && berr.skip {
		return // not sent: says nothing
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.accepted = true
	}
	if kind == condemnsCredentials && berr.CredentialsUnsure && t.accepted {
		return // about the user, most likely: the credentials were accepted
	}
	if t.stop != nil {
		return
	}
	if kind == condemnsNothing {
		t.streak = streak{}
		return
	}
	if t.streak.kind != kind {
		t.streak = streak{kind: kind, unsure: true}
	}
	s := &t.streak
	s.n++
	s.unsure = s.unsure && berr.CredentialsUnsure
	s.last = berr
	if !slices.Contains(s.lines, line) {
		s.lines = append(s.lines, line)
	}
	if s.n < stopLimit {
		return
	}
	t.stop = &stop{code: berr.Code, reason: s.reason()}
	log.Error().Str("target", t.Name).Int("in_a_row", s.n).Ints("lines", s.lines).Str("last", lastAnswer(berr)).
		Msg(s.headline() + ": target stopped; its remaining rows end skipped, other targets go on")
}

// reason is the detail of the stopped target's skipped rows.
func (s *streak) reason() string {
	seen := fmt.Sprintf("%s; last: %s", lineList(s.lines), lastAnswer(s.last))
	switch {
	case s.kind == condemnsCredentials && s.unsure:
		return fmt.Sprintf("credentials refused, or no such users: the vendor answered %d times in a row with the refusal it gives both for bad credentials and for an unknown user, and does not say which (%s); nothing more was sent to it. Check the target's token, and that the users on those lines exist, then re-run failed.csv", s.n, seen)
	case s.kind == condemnsCredentials:
		return fmt.Sprintf("credentials refused: the vendor refused this target's credentials %d times in a row (%s); nothing more was sent to it. Fix the apikey/token, then re-run failed.csv", s.n, seen)
	case s.kind == condemnsAddress:
		return fmt.Sprintf("target unreachable: check base_url: %d connection failures in a row (%s); nothing more was sent to it. Fix base_url or the network, then re-run failed.csv", s.n, seen)
	}
	return fmt.Sprintf("not the vendor's API at base_url: check base_url: %d answers in a row were not the vendor's own (%s); nothing more was sent to it. Fix base_url, then re-run failed.csv", s.n, seen)
}

// headline opens the log record of a stop, in capitals for a cron log.
func (s *streak) headline() string {
	switch {
	case s.kind == condemnsCredentials && s.unsure:
		return "CREDENTIALS REFUSED OR NO SUCH USERS"
	case s.kind == condemnsCredentials:
		return "CREDENTIALS REFUSED"
	case s.kind == condemnsAddress:
		return "TARGET UNREACHABLE"
	}
	return "NOT THE VENDOR'S API"
}

// lastAnswer is an error as a stop's detail quotes it: the status and the
// adapter's message, which never holds a secret.
func lastAnswer(e *Error) string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("HTTP %d, %s", e.HTTPStatus, e.Message)
	}
	return e.Message
}

// lineList is "line 4" or "lines 2, 3, 7".
func lineList(lines []int) string {
	if len(lines) == 1 {
		return fmt.Sprintf("line %d", lines[0])
	}
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = strconv.Itoa(l)
	}
	return "lines " + strings.Join(s, ", ")
}

// stopped is why the target was stopped, or nil.
func (t *Target) stopped() *stop {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stop
}
