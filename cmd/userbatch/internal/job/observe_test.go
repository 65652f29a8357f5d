package job

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// recorder keeps the events a run reports, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
	rows   map[string]batch.Outcome
	start  Start
	end    End
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.events); n == 0 || r.events[n-1] != e { // a pass's rows once
		r.events = append(r.events, e)
	}
}

func (r *recorder) Started(s Start)             { r.start = s; r.add("started") }
func (r *recorder) PassStarted(p Pass)          { r.add("pass " + p.Phase) }
func (r *recorder) Sending(batch.Op, int)       { r.add("sending") }
func (r *recorder) Paused(map[string]time.Time) {}
func (r *recorder) PassEnded()                  { r.add("pass ended") }
func (r *recorder) Held(string, int)            { r.add("held") }
func (r *recorder) Finished(e End)              { r.end = e; r.add("finished") }

func (r *recorder) RowDone(res batch.Result) {
	r.mu.Lock()
	r.rows[res.User] = res.Outcome
	r.mu.Unlock()
	r.add("row")
}

// TestRunReportsToItsObservers: the run tells its observers what it is
// over, each pass and row, and how it ended; nothing else draws or logs.
func TestRunReportsToItsObservers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := &recorder{rows: map[string]batch.Outcome{}}
	o := f.options(filepath.Join(f.dir, "report"))
	o.MaxChanges = 10 // guarded: the state is read first
	o.Observers = Observers{rec}
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	first := []string{"started", "pass " + StateReading, "row", "pass ended", "pass "}
	last := []string{"row", "pass ended", "finished"}
	n := len(rec.events)
	if n < len(first)+len(last) || !slices.Equal(rec.events[:len(first)], first) || !slices.Equal(rec.events[n-len(last):], last) ||
		!slices.Contains(rec.events[len(first):], "sending") {
		t.Errorf("events %q, want the state read, then the run, then finished", rec.events)
	}
	if rec.start.Valid != 4 || rec.start.Input != f.input || len(rec.start.Rates) != 2 {
		t.Errorf("started with %+v, want the input's 4 valid rows and each target's rate", rec.start)
	}
	for _, u := range []string{"k1", "k2", "c1", "c2"} {
		if rec.rows[u] != batch.Applied {
			t.Errorf("row %s: observed %q, want applied", u, rec.rows[u])
		}
	}
	if rec.end.Summary == nil || rec.end.Summary.Rows != 4 || rec.end.ExitCode != reports.ExitOK || rec.end.Held {
		t.Errorf("finished with %+v, want the summary of 4 rows and exit 0", rec.end)
	}
}

// TestHeldRunTellsItsObservers: a guard's hold is an event, and the end
// says held.
func TestHeldRunTellsItsObservers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := &recorder{rows: map[string]batch.Outcome{}}
	o := f.options(filepath.Join(f.dir, "report"))
	o.MaxChanges = 1
	o.Observers = Observers{rec}
	if err := Run(context.Background(), o); Exit(err) != reports.ExitHeld {
		t.Fatalf("exit %d (%v), want 4", Exit(err), err)
	}
	if !slices.Contains(rec.events, "held") || slices.Contains(rec.events, "sending") {
		t.Errorf("events %q: want held, and no write sent", rec.events)
	}
	if !rec.end.Held || rec.end.ExitCode != reports.ExitHeld || rec.end.Summary == nil {
		t.Errorf("finished with %+v, want held with its summary", rec.end)
	}
	if n := f.cs.Writes("c1") + f.kii.Writes("k1"); n != 0 {
		t.Errorf("a held run sent %d writes", n)
	}
}
