package main

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
)

// progressEvery is how often a long run says how far it is.
const progressEvery = 10 * time.Second

// progress wraps the journal and logs, every progressEvery, how many rows
// have ended and how: at 2 a.m. a run of 200,000 rows at the vendor's pace
// takes hours, and silence looks like a hang.
type progress struct {
	batch.Sink
	log     zerolog.Logger
	total   int // valid rows in the file, for this shard
	done    int
	counts  map[batch.Outcome]int
	started time.Time
	last    time.Time
}

func newProgress(sink batch.Sink, log zerolog.Logger, total int) *progress {
	now := time.Now()
	return &progress{Sink: sink, log: log, total: total, counts: map[batch.Outcome]int{}, started: now, last: now}
}

// Result records the row, then reports progress when it is time.
func (p *progress) Result(res batch.Result) error {
	if err := p.Sink.Result(res); err != nil {
		return err
	}
	p.done++
	p.counts[res.Outcome]++
	if now := time.Now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		p.report(now)
	}
	return nil
}

func (p *progress) report(now time.Time) {
	rate := float64(p.done) / now.Sub(p.started).Seconds()
	ev := p.log.Info().Int("done", p.done).Int("of", p.total).Float64("rows_per_s", rate)
	for o, n := range p.counts {
		ev = ev.Int(string(o), n)
	}
	if left := p.total - p.done; rate > 0 && left > 0 {
		ev = ev.Dur("eta", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
	}
	ev.Msg("progress")
}
