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
	// pauseCheck is how often a pass looks for targets a vendor paused:
	// within a frame or two of the bar.
	pauseCheck = 250 * time.Millisecond
)

// pass wraps the journal for one pass of rows: it tells the run's
// observers of every write sent and every row recorded, and, on a timer
// whether or not rows finish, which targets a vendor paused.
type pass struct {
	batch.Sink
	obs     Observer
	targets map[string]*batch.Target
	done    chan struct{}
	wg      sync.WaitGroup
}

// startPass tells obs the pass starts and watches the targets' pauses
// until stop.
func startPass(sink batch.Sink, obs Observer, targets map[string]*batch.Target, p Pass) *pass {
	obs.PassStarted(p)
	ps := &pass{Sink: sink, obs: obs, targets: targets, done: make(chan struct{})}
	ps.wg.Add(1)
	go ps.watchPauses()
	return ps
}

// Intent tells the observers a write goes out, then records it.
func (p *pass) Intent(op batch.Op, attempt int) error {
	p.obs.Sending(op, attempt)
	return p.Sink.Intent(op, attempt)
}

// Result records the row, then tells the observers.
func (p *pass) Result(res batch.Result) error {
	if err := p.Sink.Result(res); err != nil {
		return err
	}
	p.obs.RowDone(res)
	return nil
}

func (p *pass) watchPauses() {
	defer p.wg.Done()
	tick := time.NewTicker(pauseCheck)
	defer tick.Stop()
	paused := map[string]time.Time{}
	for {
		select {
		case <-p.done:
			return
		case now := <-tick.C:
			if checkPauses(p.targets, paused, now) {
				p.obs.Paused(maps.Clone(paused))
			}
		}
	}
}

// checkPauses brings paused up to date and reports whether a target paused
// or resumed since last time.
func checkPauses(targets map[string]*batch.Target, paused map[string]time.Time, now time.Time) bool {
	changed := false
	for name, t := range targets {
		until := t.PausedUntil()
		was, ok := paused[name]
		switch {
		case until.After(now) && (!ok || !until.Equal(was)):
			paused[name] = until
			changed = true
		case !until.After(now) && ok:
			delete(paused, name)
			changed = true
		}
	}
	return changed
}

// stop ends the watch and tells the observers the pass ended.
func (p *pass) stop() {
	close(p.done)
	p.wg.Wait()
	p.obs.PassEnded()
}

// rowScope is what the progress counts: the rows this process runs (its
// shard's valid rows), of which an earlier process settled some (a resume).
type rowScope struct{ total, settled int }

// tally counts a pass's rows as its events come: what the bar and the
// progress log say.
type tally struct {
	mu       sync.Mutex
	pass     Pass
	started  time.Time
	rows     int // rows this process finished
	reads    int // requests of those rows that read a user's state
	writes   int // requests of those rows that asked for a change
	counts   map[batch.Outcome]int
	retrying map[int]bool // rows (by Index) whose write is being sent again
	paused   map[string]time.Time
	ended    time.Time // when the last row finished or the pass stopped
}

func (t *tally) start(p Pass) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pass, t.started, t.ended = p, time.Now(), time.Time{}
	t.rows, t.reads, t.writes = 0, 0, 0
	t.counts, t.retrying, t.paused = map[batch.Outcome]int{}, map[int]bool{}, map[string]time.Time{}
}

// countAs is how a row counts: reading state, by what the read found
// (would change, no change, unknown state).
func (t *tally) countAs(res batch.Result) batch.Outcome {
	if t.pass.Phase != "" && res.Outcome == batch.Planned && res.Detail != "" {
		return batch.Outcome(res.Detail)
	}
	return res.Outcome
}

// sending marks a row sent again as retrying.
func (t *tally) sending(op batch.Op, attempt int) {
	if attempt > 1 {
		t.mu.Lock()
		t.retrying[op.Index] = true
		t.mu.Unlock()
	}
}

// done counts a finished row and returns the rows done so far.
func (t *tally) done(res batch.Result) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows++
	t.reads += res.Attempts - res.Writes
	t.writes += res.Writes
	t.counts[t.countAs(res)]++
	delete(t.retrying, res.Index)
	done := t.pass.Settled + t.rows
	if done == t.pass.Total {
		t.ended = time.Now()
	}
	return done
}

func (t *tally) phase() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pass.Phase
}

func (t *tally) setPaused(until map[string]time.Time) {
	t.mu.Lock()
	t.paused = until
	t.mu.Unlock()
}

func (t *tally) end() {
	t.mu.Lock()
	if t.ended.IsZero() {
		t.ended = time.Now()
	}
	t.mu.Unlock()
}

// stats is what the bar shows now.
func (t *tally) stats(now time.Time) barStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ended.IsZero() {
		now = t.ended
	}
	s := barStats{rows: t.pass.Settled + t.rows, ran: t.rows, total: t.pass.Total, retrying: len(t.retrying), elapsed: now.Sub(t.started),
		ended: !t.ended.IsZero(), counts: maps.Clone(t.counts), phase: t.pass.Phase}
	if s.ended {
		return s // a pause no longer holds anything up
	}
	for _, name := range slices.Sorted(maps.Keys(t.paused)) {
		if until := t.paused[name]; until.After(now) {
			s.paused = append(s.paused, pause{target: name, left: until.Sub(now)})
		}
	}
	return s
}

// ProgressLog is the run's log of its progress: the record that starts
// it, every row that ends failed or unknown (the vendor's words), a pause
// when it starts or ends, a hold, and, when no bar shows it, how far the
// run is every 10 seconds.
type ProgressLog struct {
	Unobserved
	log zerolog.Logger
	// periodic logs the progress on a timer: no bar says it.
	periodic bool
	t        tally
	quit     chan struct{}
	wg       sync.WaitGroup
}

// NewProgressLog logs to log; periodic when no bar shows the progress.
func NewProgressLog(log zerolog.Logger, periodic bool) *ProgressLog {
	return &ProgressLog{log: log, periodic: periodic}
}

// Started is the first record a cron log holds: what this run is over.
func (l *ProgressLog) Started(s Start) {
	rates := zerolog.Dict()
	for name, r := range s.Rates {
		rates.Float64(name, r)
	}
	l.log.Info().Str("input", s.Input).Str("input_sha256", s.InputSHA256).Str("config", s.ConfigPath).
		Str("report_dir", s.ReportDir).Strs("targets", s.Targets).Int("rows", s.Valid+s.Invalid).
		Int("valid", s.Valid).Int("invalid", s.Invalid).Dict("rate_per_s", rates).Bool("dry_run", s.DryRun).
		Bool("resume", s.Resume).Str("shard", s.Shard).Msg("run starting")
}

func (l *ProgressLog) PassStarted(p Pass) {
	l.t.start(p)
	if p.Phase == StateReading {
		// 10,000 rows at 10 reads a second is 17 minutes before the
		// first write or the question.
		l.log.Info().Int("rows", p.Total).Msg("reading the users' state before the first write: the guards and the question count what would change")
	}
	if !l.periodic {
		return
	}
	l.quit = make(chan struct{})
	l.wg.Add(1)
	go l.every(progressEvery)
}

func (l *ProgressLog) every(d time.Duration) {
	defer l.wg.Done()
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-l.quit:
			return
		case now := <-tick.C:
			l.report(now)
		}
	}
}

func (l *ProgressLog) Sending(op batch.Op, attempt int) { l.t.sending(op, attempt) }

// RowDone logs the row when it needs a person.
func (l *ProgressLog) RowDone(res batch.Result) {
	l.t.done(res)
	if l.t.phase() == "" && (res.Outcome == batch.Failed || res.Outcome == batch.Unknown) {
		l.log.Warn().Int("line", res.Line).Str("target", res.Target).Str("user", res.User).
			Str("action", string(res.Action)).Str("outcome", string(res.Outcome)).Int("http_status", res.HTTPStatus).
			Str("error_code", res.ErrorCode).Str("detail", res.Detail).Msg(res.Message) // the vendor's words, as in report.csv
	}
}

// Paused logs the progress when a pause starts or ends.
func (l *ProgressLog) Paused(until map[string]time.Time) {
	l.t.setPaused(until)
	l.report(time.Now())
}

func (l *ProgressLog) PassEnded() {
	if l.quit != nil {
		close(l.quit)
		l.wg.Wait()
		l.quit = nil
	}
	l.t.end()
}

func (l *ProgressLog) Held(reason string, wouldChange int) {
	l.log.Warn().Str("reason", reason).Int("would_change", wouldChange).Msg("held by a guard: nothing was sent")
}

func (l *ProgressLog) report(now time.Time) {
	t := &l.t
	t.mu.Lock()
	rows := t.rows
	ev := l.log.Info().Int("done", t.pass.Settled+rows).Int("of", t.pass.Total)
	if t.pass.Phase != "" {
		ev = ev.Str("phase", t.pass.Phase)
	}
	for o, n := range t.counts {
		ev = ev.Int(string(o), n)
	}
	ev = ev.Int("reads", t.reads).Int("writes", t.writes)
	rate := float64(rows) / now.Sub(t.started).Seconds()
	ev = ev.Str("rows_per_s", formatRate(rate))
	if left := t.pass.Total - t.pass.Settled - rows; rate > 0 && left > 0 {
		ev = ev.Str("eta", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String())
	}
	for _, name := range slices.Sorted(maps.Keys(t.paused)) {
		// Rounded up, as on the display: never "0s" while the pause lasts.
		left := time.Duration(math.Ceil(t.paused[name].Sub(now).Seconds())) * time.Second
		ev = ev.Str("paused_"+name, "resumes in "+left.String())
	}
	t.mu.Unlock()
	ev.Msg("progress")
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', 1, 64) }
