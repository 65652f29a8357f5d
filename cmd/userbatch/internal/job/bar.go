package job

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/userbatch/userbatch/batch"
)

// barRefresh is how often the bar is drawn: often enough to look alive,
// seldom enough to cost nothing beside the requests.
const barRefresh = 150 * time.Millisecond

// Terminal is stderr when a person watches it and the log is for people
// (console format): a run draws its live progress there. Everything written
// through it (log records, messages) goes above the bar while one is drawn,
// so the two never garble each other; with no bar it goes straight out.
// Build one only for a terminal: a pipe or a file must never get bar bytes.
type Terminal struct {
	out  io.Writer
	mu   sync.Mutex
	live *mpb.Progress // the bar being drawn, or nil

	// Tests draw on a buffer: a fixed width, and frames on demand.
	width   int
	refresh <-chan any
}

// NewTerminal wraps out, which must be a terminal.
func NewTerminal(out io.Writer) *Terminal { return &Terminal{out: out} }

// Write sends b above the bar while one is drawn (it shows with the next
// frame), else straight out. b should end with a newline.
func (t *Terminal) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live != nil {
		if n, err := t.live.Write(b); err == nil {
			return n, nil
		}
		// The bar gave up drawing (the terminal went away): the log must not.
	}
	return t.out.Write(b)
}

// BarView draws a run's live progress on a Terminal: a bar per pass, left
// on screen when the pass ends.
type BarView struct {
	Unobserved
	term *Terminal
	t    tally
	bar  *liveBar // the pass's, while it runs
}

// NewBarView draws on term, which must be a terminal.
func NewBarView(term *Terminal) *BarView { return &BarView{term: term} }

func (v *BarView) PassStarted(p Pass) {
	v.t.start(p)
	v.bar = v.term.startBar(p.Total, func() barStats { return v.t.stats(time.Now()) })
	v.bar.set(p.Settled)
}

func (v *BarView) Sending(op batch.Op, attempt int) { v.t.sending(op, attempt) }

func (v *BarView) RowDone(res batch.Result) { v.bar.set(v.t.done(res)) }

func (v *BarView) Paused(until map[string]time.Time) { v.t.setPaused(until) }

// PassEnded leaves the bar's last frame on screen.
func (v *BarView) PassEnded() {
	v.t.end()
	v.bar.stop()
}

// liveBar is a run's bar on a Terminal.
type liveBar struct {
	term *Terminal
	p    *mpb.Progress
	bar  *mpb.Bar
}

// startBar draws the bar of a run of total rows; stats is read at each frame.
func (t *Terminal) startBar(total int, stats func() barStats) *liveBar {
	cw := frameWriter{Writer: cupwriter.New(t.out, false), out: t.out}
	opts := []mpb.ContainerOption{mpb.WithConsoleWriter(cw), mpb.WithRefreshRate(barRefresh)}
	if t.refresh != nil {
		opts = append(opts, mpb.WithManualRefresh(t.refresh), mpb.WithWidth(t.width))
	}
	p := mpb.New(opts...)
	status := mpb.BarFillerFunc(func(w io.Writer, st decor.Statistics) error {
		_, err := io.WriteString(w, truncate(stats().status(), st.AvailableWidth)+"\n")
		return err
	})
	bar := p.New(int64(total), mpb.BarStyle(), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return stats().label() })),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return stats().tail() })),
		mpb.BarExtender(status, false))
	t.mu.Lock()
	t.live = p
	t.mu.Unlock()
	return &liveBar{term: t, p: p, bar: bar}
}

// frameWriter is mpb's terminal writer, but each frame starts at the first
// column: a key typed (^C echoes two characters) moves the cursor right,
// and going back up without a carriage return would leave those columns
// of the last frame on screen, glued to the next line.
type frameWriter struct {
	*cupwriter.Writer
	out io.Writer
}

// Flush writes the frame, and starts the next one by going back to the
// first column of the frame's first line and erasing down.
func (w frameWriter) Flush(lines int) error {
	if _, err := w.WriteTo(w.out); err != nil {
		return err
	}
	if lines > 0 {
		fmt.Fprintf(w.Writer, "\r\x1b[%dA\x1b[J", lines)
	}
	return nil
}

// set moves the bar to rows done.
func (b *liveBar) set(rows int) { b.bar.SetCurrent(int64(rows)) }

// stop draws the last frame, with whatever was written above it, and
// leaves it on screen; from then on writes go straight out. Writers wait
// meanwhile, so nothing lands between the last frame and what follows.
func (b *liveBar) stop() {
	b.term.mu.Lock()
	defer b.term.mu.Unlock()
	b.bar.Abort(false) // a bar not complete (a stopped run) stays as it was
	b.p.Wait()
	b.term.live = nil
}

// barStats is what the bar shows at one moment.
type barStats struct {
	rows, total int // done (an earlier process's rows too) of all
	ran         int // rows this process finished: the rate's
	counts      map[batch.Outcome]int
	retrying    int // rows whose write is being sent again
	elapsed     time.Duration
	ended       bool // no more rows will finish: the clock stopped
	paused      []pause

	// phase is what the rows go through ("": the run itself).
	phase string
}

// pause is a target waiting out a vendor's Retry-After.
type pause struct {
	target string
	left   time.Duration
}

func (s barStats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ran) / s.elapsed.Seconds()
}

// head goes before the bar: rows done of total.
func (s barStats) head() string { return fmt.Sprintf("%d/%s", s.rows, batch.CountRows(s.total)) }

// label is head after the phase, when there is one.
func (s barStats) label() string {
	if s.phase != "" {
		return s.phase + " " + s.head()
	}
	return s.head()
}

// tail goes after the bar: share done, rate, and time left.
func (s barStats) tail() string {
	pct := 100
	if s.total > 0 {
		pct = min(100, s.rows*100/s.total)
	}
	eta := "ETA -"
	switch left, r := s.total-s.rows, s.rate(); {
	case left <= 0:
		eta = "done in " + s.elapsed.Round(time.Second).String()
	case s.ended:
		eta = "ended after " + s.elapsed.Round(time.Second).String()
	case r > 0:
		eta = "ETA " + time.Duration(float64(left)/r*float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%3d%%  %s rows/s  %s", pct, formatRate(s.rate()), eta)
}

// status is the line under the bar: outcomes so far, retries, pauses.
func (s barStats) status() string {
	var parts []string
	for _, o := range outcomeOrder(s.counts) {
		if n := s.counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no row finished yet")
	}
	line := strings.Join(parts, "  ")
	if s.retrying > 0 {
		line += fmt.Sprintf("  | retrying %d", s.retrying)
	}
	for _, p := range s.paused {
		// Rounded up: a countdown never says 0s while the pause lasts.
		left := time.Duration(math.Ceil(p.left.Seconds())) * time.Second
		line += fmt.Sprintf("  | %s PAUSED by the vendor, resumes in %s", p.target, left)
	}
	return line
}

// outcomeOrder is report order, then any outcome it does not list.
func outcomeOrder(counts map[batch.Outcome]int) []batch.Outcome {
	order := append([]batch.Outcome(nil), batch.Outcomes...)
	known := map[batch.Outcome]bool{}
	for _, o := range order {
		known[o] = true
	}
	extra := map[string]int{}
	for o := range counts {
		if !known[o] {
			extra[string(o)] = 0
		}
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		order = append(order, batch.Outcome(name))
	}
	return order
}

// truncate cuts s to width columns (runes: names are mostly ASCII), so a
// narrow terminal never wraps the line and breaks the redraw.
func truncate(s string, width int) string {
	r := []rune(s)
	if width <= 0 {
		return ""
	}
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}
