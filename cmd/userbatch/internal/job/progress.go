package job

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
)

// Progress timing: at 2 a.m. a run of 200,000 rows at the vendor's pace
// takes hours, and silence looks like a hang; a pause is said at once.
const (
	progressEvery = 10 * time.Second
	pauseCheck    = time.Second
)

// progress wraps the journal: it logs every row that ends failed or
// unknown, and, on a timer whether or not rows finish, how far the run is
// and which targets are paused. On a terminal it also draws the live bar,
// and then logs only when a pause starts or ends: the bar says the rest.
type progress struct {
	batch.Sink
	log     zerolog.Logger
	targets map[string]*batch.Target
	scope   rowScope
	started time.Time
	done    chan struct{}
	wg      sync.WaitGroup
	bar     *liveBar // nil: no terminal
	phase   string   // what the rows go through ("": the run); set before any row

	mu       sync.Mutex
	rows     int // rows this process finished
	reads    int // requests of those rows that read a user's state
	writes   int // requests of those rows that asked for a change
	counts   map[batch.Outcome]int
	retrying map[int]bool // rows (by Index) whose write is being sent again
	paused   map[string]time.Time
	ended    time.Time // when the last row finished or the run stopped
}

// rowScope is what the progress counts: the rows this process runs (its
// shard's valid rows), of which an earlier process settled some (a resume).
type rowScope struct{ total, settled int }

// scope counts the rows this process runs, and those skip says an earlier
// process settled. If the file cannot be read, total is the fallback: the
// run reads the file next and reports why.
func (r *runState) scope(total int, skip func(int) bool) rowScope {
	var s rowScope
	err := eachRow(r.in.path, r.infos, r.Parse, func(row batch.Row) error {
		if row.Valid() && r.includes(row.Op) {
			s.total++
			if skip(row.Index) {
				s.settled++
			}
		}
		return nil
	})
	if err != nil {
		return rowScope{total: total}
	}
	return s
}

// newProgress starts the timer, and the bar when term is not nil.
func newProgress(sink batch.Sink, log zerolog.Logger, scope rowScope, targets map[string]*batch.Target, term *Terminal) *progress {
	p := &progress{Sink: sink, log: log, targets: targets, scope: scope, started: time.Now(),
		done: make(chan struct{}), counts: map[batch.Outcome]int{}, retrying: map[int]bool{}, paused: map[string]time.Time{}}
	if term != nil {
		p.bar = term.startBar(scope.total, func() barStats { return p.stats(time.Now()) })
		p.bar.set(scope.settled)
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

// during names what the rows go through, as the bar and the log say it
// (a pass before the run: "reading state"); its rows' failures are the
// run's to log.
func (p *progress) during(phase string) *progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = phase
	return p
}

// countAs is how a row counts on the bar: reading state, by what the read
// found (would change, no change, unknown state).
func (p *progress) countAs(res batch.Result) batch.Outcome {
	if p.phase != "" && res.Outcome == batch.Planned && res.Detail != "" {
		return batch.Outcome(res.Detail)
	}
	return res.Outcome
}

// Intent records the write; a second attempt marks the row as retrying.
func (p *progress) Intent(op batch.Op, attempt int) error {
	if attempt > 1 {
		p.mu.Lock()
		p.retrying[op.Index] = true
		p.mu.Unlock()
	}
	return p.Sink.Intent(op, attempt)
}

// Result records the row, and logs it when it needs a person.
func (p *progress) Result(res batch.Result) error {
	if err := p.Sink.Result(res); err != nil {
		return err
	}
	res.Outcome = p.countAs(res) // the bar's word for it; the journal has the row's
	p.mu.Lock()
	p.rows++
	p.reads += res.Attempts - res.Writes
	p.writes += res.Writes
	p.counts[res.Outcome]++
	delete(p.retrying, res.Index)
	done := p.scope.settled + p.rows
	if done == p.scope.total {
		p.ended = time.Now()
	}
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.set(done)
	}
	if p.phase == "" && (res.Outcome == batch.Failed || res.Outcome == batch.Unknown) {
		p.log.Warn().Int("line", res.Line).Str("target", res.Target).Str("user", res.User).
			Str("action", string(res.Action)).Str("outcome", string(res.Outcome)).Int("http_status", res.HTTPStatus).
			Str("error_code", res.ErrorCode).Str("detail", res.Detail).Msg(res.Message) // the vendor's words, as in report.csv
	}
	return nil
}

func (p *progress) loop() {
	defer p.wg.Done()
	tick := time.NewTicker(pauseCheck)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-p.done:
			return
		case now := <-tick.C:
			changed := p.checkPauses(now)
			if changed || p.bar == nil && now.Sub(last) >= progressEvery {
				last = now
				p.report(now)
			}
		}
	}
}

// checkPauses reports whether a target paused or resumed since last time.
func (p *progress) checkPauses(now time.Time) bool {
	changed := false
	for name, t := range p.targets {
		until := t.PausedUntil()
		was, paused := p.paused[name]
		switch {
		case until.After(now) && (!paused || !until.Equal(was)):
			p.paused[name] = until
			changed = true
		case !until.After(now) && paused:
			delete(p.paused, name)
			changed = true
		}
	}
	return changed
}

func (p *progress) report(now time.Time) {
	p.mu.Lock()
	rows := p.rows
	ev := p.log.Info().Int("done", p.scope.settled+rows).Int("of", p.scope.total)
	if p.phase != "" {
		ev = ev.Str("phase", p.phase)
	}
	for o, n := range p.counts {
		ev = ev.Int(string(o), n)
	}
	ev = ev.Int("reads", p.reads).Int("writes", p.writes)
	p.mu.Unlock()
	rate := float64(rows) / now.Sub(p.started).Seconds()
	ev = ev.Str("rows_per_s", formatRate(rate))
	if left := p.scope.total - p.scope.settled - rows; rate > 0 && left > 0 {
		ev = ev.Str("eta", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String())
	}
	for _, name := range slices.Sorted(maps.Keys(p.paused)) {
		// Rounded up, as on the display: never "0s" while the pause lasts.
		left := time.Duration(math.Ceil(p.paused[name].Sub(now).Seconds())) * time.Second
		ev = ev.Str("paused_"+name, "resumes in "+left.String())
	}
	ev.Msg("progress")
}

// stats is what the bar shows now.
func (p *progress) stats(now time.Time) barStats {
	p.mu.Lock()
	if !p.ended.IsZero() {
		now = p.ended
	}
	s := barStats{rows: p.scope.settled + p.rows, ran: p.rows, total: p.scope.total, retrying: len(p.retrying), elapsed: now.Sub(p.started),
		ended: !p.ended.IsZero(), counts: make(map[batch.Outcome]int, len(p.counts))}
	for o, n := range p.counts {
		s.counts[o] = n
	}
	s.phase = p.phase
	p.mu.Unlock()
	if s.ended {
		return s // a pause no longer holds anything up
	}
	for _, name := range slices.Sorted(maps.Keys(p.targets)) {
		if until := p.targets[name].PausedUntil(); until.After(now) {
			s.paused = append(s.paused, pause{target: name, left: until.Sub(now)})
		}
	}
	return s
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', 1, 64) }

// stop ends the timer, and leaves the bar's last frame on screen.
func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	if p.ended.IsZero() {
		p.ended = time.Now()
	}
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.stop()
	}
}
