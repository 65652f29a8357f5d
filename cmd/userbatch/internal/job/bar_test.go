package job

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
)

// barSink is a journal that keeps nothing.
type barSink struct{}

func (barSink) Intent(batch.Op, int) error { return nil }
func (barSink) Result(batch.Result) error  { return nil }
func (barSink) Commit() error              { return nil }

// barScreen is a buffer the bar draws on while the test reads it.
type barScreen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *barScreen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *barScreen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// testTerminal draws 120 columns wide on a buffer, a frame per send on the
// returned channel.
func barTerminal() (*Terminal, *barScreen, chan any) {
	out := &barScreen{}
	frames := make(chan any)
	return &Terminal{out: out, width: 120, refresh: frames}, out, frames
}

// waitForFrame asks for frames until out holds want, for at most five seconds.
func waitForFrame(t *testing.T, out *barScreen, frames chan<- any, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the barScreen never showed %q; it holds:\n%q", want, out.String())
		}
		select {
		case frames <- struct{}{}:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func barResult(i int, o batch.Outcome) batch.Result {
	return batch.Result{Index: i, Line: i + 2, Target: "apps", User: "u", Action: batch.Disable, Outcome: o}
}

func TestBarMovesAndLogGoesAboveIt(t *testing.T) {
	term, out, frames := barTerminal()
	log := zerolog.New(term)
	p := startPass(barSink{}, Observers{NewProgressLog(log, false), NewBarView(term)}, nil, Pass{Total: 10})
	for i := range 3 {
		if err := p.Result(barResult(i, batch.Applied)); err != nil {
			t.Fatal(err)
		}
	}
	waitForFrame(t, out, frames, "3/10 rows")
	if err := p.Result(barResult(3, batch.Failed)); err != nil { // logged: a person must look
		t.Fatal(err)
	}
	waitForFrame(t, out, frames, "4/10 rows")
	p.stop()
	screenText := out.String()
	logAt := strings.Index(screenText, `"outcome":"failed"`)
	lastFrame := strings.LastIndex(screenText, "4/10 rows")
	if logAt < 0 || lastFrame < logAt {
		t.Fatalf("the failed row's log record should be drawn above the last frame; barScreen:\n%q", screenText)
	}
	// Drawn above the bar: the record comes in a frame, after the cursor
	// went back up over the last bar and erased it, and the bar follows it.
	// Written straight out, it would follow the bar's newline instead, and
	// the next frame would erase it.
	start := strings.LastIndex(screenText[:logAt], "{")
	end := start + strings.Index(screenText[start:], "\n") + 1
	if !strings.HasSuffix(screenText[:start], "A\x1b[J") || !strings.HasPrefix(screenText[end:], "4/10 rows") {
		t.Errorf("the log record was not drawn in a frame above the bar:\n%q", screenText)
	}
	for _, want := range []string{"applied 3  failed 1", "ended after"} {
		if !strings.Contains(screenText[lastFrame:], want) {
			t.Errorf("the last frame of a run stopped at 4 of 10 rows lacks %q:\n%q", want, screenText[lastFrame:])
		}
	}
	if _, err := term.Write([]byte("after the bar\n")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "after the bar\n") {
		t.Errorf("once the bar stopped, writes should go straight out; barScreen ends %q", barTail(out.String(), 80))
	}
}

func TestBarCompletesWithAllRows(t *testing.T) {
	term, out, frames := barTerminal()
	p := startPass(barSink{}, NewBarView(term), nil, Pass{Total: 2})
	_ = p.Result(barResult(0, batch.Applied))
	_ = p.Result(barResult(1, batch.Already))
	waitForFrame(t, out, frames, "2/2 rows")
	p.stop()
	last := out.String()[strings.LastIndex(out.String(), "2/2 rows"):]
	for _, want := range []string{"100%", "done in", "applied 1  already 1"} {
		if !strings.Contains(last, want) {
			t.Errorf("the last frame lacks %q:\n%q", want, last)
		}
	}
}

func TestBarResumedStartsAtSettledRows(t *testing.T) {
	term, out, frames := barTerminal()
	v := NewBarView(term)
	p := startPass(barSink{}, v, nil, Pass{Total: 10, Settled: 7})
	waitForFrame(t, out, frames, "7/10 rows")
	for i := range 3 {
		_ = p.Result(barResult(i, batch.Applied))
	}
	waitForFrame(t, out, frames, "10/10 rows")
	p.stop()
	s := v.t.stats(time.Now())
	if s.rows != 10 || s.ran != 3 || !s.ended {
		t.Errorf("stats of a resumed run that finished: %+v, want 10 rows done, 3 run here, ended", s)
	}
	if !strings.Contains(out.String()[strings.LastIndex(out.String(), "10/10 rows"):], "done in") {
		t.Errorf("the last frame does not say done:\n%q", out.String())
	}
}

func TestNoTerminalNoBar(t *testing.T) {
	var out bytes.Buffer
	term := NewTerminal(&out)
	if _, err := term.Write([]byte("a log record\n")); err != nil || out.String() != "a log record\n" {
		t.Fatalf("with no bar drawn, a terminal should pass writes straight on: %q, %v", out.String(), err)
	}
}

func TestRetryingRows(t *testing.T) {
	c := &tally{}
	p := startPass(barSink{}, tallyOnly{Unobserved{}, c}, nil, Pass{Total: 3})
	defer p.stop()
	op := batch.Op{Index: 1, Target: "apps", User: "u1", Action: batch.Disable}
	_ = p.Intent(op, 1)
	if n := c.stats(time.Now()).retrying; n != 0 {
		t.Fatalf("a first attempt counts as a retry: retrying %d", n)
	}
	_ = p.Intent(op, 2)
	_ = p.Intent(op, 3)
	_ = p.Intent(batch.Op{Index: 2}, 2)
	if n := c.stats(time.Now()).retrying; n != 2 {
		t.Fatalf("two rows sent again: retrying %d, want 2", n)
	}
	_ = p.Result(barResult(1, batch.Applied))
	if n := c.stats(time.Now()).retrying; n != 1 {
		t.Fatalf("a finished row still counts as retrying: %d, want 1", n)
	}
}

func TestBarText(t *testing.T) {
	s := barStats{rows: 50, ran: 50, total: 200, elapsed: 10 * time.Second, retrying: 2,
		counts: map[batch.Outcome]int{batch.Applied: 40, batch.Failed: 3, batch.Already: 7},
		paused: []pause{{target: "apps", left: 11200 * time.Millisecond}}}
	if got, want := s.head(), "50/200 rows"; got != want {
		t.Errorf("head %q, want %q", got, want)
	}
	if got, want := s.tail(), " 25%  5.0 rows/s  ETA 30s"; got != want {
		t.Errorf("tail %q, want %q", got, want)
	}
	want := "applied 40  already 7  failed 3  | retrying 2  | apps PAUSED by the vendor, resumes in 12s"
	if got := s.status(); got != want {
		t.Errorf("status\n%q, want\n%q", got, want)
	}
	stopped := barStats{rows: 3, total: 5, elapsed: 61 * time.Second, ended: true}
	if got, want := stopped.tail(), " 60%  0.0 rows/s  ended after 1m1s"; got != want {
		t.Errorf("tail of a stopped run %q, want %q", got, want)
	}
	empty := barStats{total: 5}
	if got := empty.status(); got != "no row finished yet" {
		t.Errorf("status before any row: %q", got)
	}
	if got := empty.tail(); got != "  0%  0.0 rows/s  ETA -" {
		t.Errorf("tail before any row: %q", got)
	}
	if got := truncate(want, 20); got != "applied 40  already…" || len([]rune(got)) != 20 {
		t.Errorf("truncate to 20 columns: %q", got)
	}
	if got := truncate("short", 20); got != "short" {
		t.Errorf("truncate left a short line as %q", got)
	}
}

func barTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// tallyOnly counts rows as the bar does, without drawing one.
type tallyOnly struct {
	Unobserved
	t *tally
}

func (o tallyOnly) PassStarted(p Pass)               { o.t.start(p) }
func (o tallyOnly) Sending(op batch.Op, attempt int) { o.t.sending(op, attempt) }
func (o tallyOnly) RowDone(res batch.Result)         { o.t.done(res) }
