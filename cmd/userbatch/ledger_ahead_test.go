package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch/ledger"
)

// aheadFixture is a run of epixel disables at one worker with a SQLite
// ledger; the fake applies its write number held, then holds the answer
// until the test lets it go.
type aheadFixture struct {
	*e2e
	n        int
	cfg, in  string
	ledger   string
	inFlight chan struct{} // closed when the held write was applied, unanswered
	release  func()        // lets its answer go
}

func newAheadFixture(t *testing.T, n, held int) *aheadFixture {
	e := newE2E(t)
	e.fakes.epixel = epixeltest.New(epixeltest.Options{APIKey: e.fakes.creds.epixelKey, Token: e.fakes.creds.epixelToken, AutoCreate: true})
	f := &aheadFixture{e2e: e, n: n, ledger: filepath.Join(e.dir, "state", "ledger.db"), inFlight: make(chan struct{})}
	yaml := strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 1000), "concurrency: 4", "concurrency: 1")
	f.cfg = e.write("ledger.yaml", yaml+"ledger: sqlite:"+f.ledger+"\n")
	f.in = e.write("ops.csv", opsCSV(many(n, "shop,user-%03d,disable")...))
	release := make(chan struct{})
	var once sync.Once
	f.release = func() { once.Do(func() { close(release) }) }
	t.Cleanup(f.release)
	var writes atomic.Int32
	fakes := e.fakes.handler()
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || writes.Add(1) != int32(held) {
			fakes.ServeHTTP(w, r)
			return
		}
		// The vendor makes the change; its answer waits.
		rec := httptest.NewRecorder()
		fakes.ServeHTTP(rec, r)
		close(f.inFlight)
		<-release
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	return f
}

// waitInFlight waits for the held write; p is killed if it never comes.
func (f *aheadFixture) waitInFlight(p *process) {
	f.t.Helper()
	select {
	case <-f.inFlight:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		f.t.Fatalf("the held write never arrived\n%s", p.stderr.String())
	}
}

// states counts the ledger's entries by state.
func (f *aheadFixture) states() map[ledger.State]int {
	f.t.Helper()
	l, err := ledger.Open(context.Background(), "sqlite:"+f.ledger)
	if err != nil {
		f.t.Fatal(err)
	}
	defer l.Close()
	m := map[ledger.State]int{}
	if err := l.History(context.Background(), ledger.Filter{}, func(e ledger.Entry) error { m[e.State]++; return nil }); err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *aheadFixture) written() (users []string) {
	for i := range f.n {
		if u := fmt.Sprintf("user-%03d", i); f.fakes.epixel.Writes(u) > 0 {
			users = append(users, u)
		}
	}
	return users
}

// checkOnce checks that every user was written exactly once, over all
// runs, but for the row index inFlight (-1: none), whose write was in
// flight when a process died: a disable may be sent again (harmless).
func (f *aheadFixture) checkOnce(inFlight int) {
	f.t.Helper()
	for i := range f.n {
		u := fmt.Sprintf("user-%03d", i)
		if n := f.fakes.epixel.Writes(u); n != 1 && (i != inFlight || n < 1) {
			f.t.Errorf("%s written %d times, want once", u, n)
		}
	}
}

// TestLedgerClaimsAheadReleasedOnStop: at one worker the run claims rows
// ahead of the one it sends, many in one transaction (issue 19 point 6);
// stopped by a signal, it releases those it never sent before it exits,
// so a later run (another run id) sends them, each once, rather than
// reporting them claimed by a run that did not finish.
func TestLedgerClaimsAheadReleasedOnStop(t *testing.T) {
	t.Parallel()
	f := newAheadFixture(t, 200, 5)
	out := filepath.Join(f.dir, "out")
	p := f.start("run", "-c", f.cfg, "-o", out, f.in, "--log-format", "json")
	f.waitInFlight(p)
	if got := f.states()[ledger.Pending]; got <= 1 {
		t.Errorf("with the 5th row's write in flight the ledger holds %d pending entries; want the rows claimed ahead of it too", got)
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	hostileWaitFor(t, p.stderr.String, "stopping", 30*time.Second)
	f.release()
	if code := p.wait(); code != exitStopped {
		t.Fatalf("exit %d, want %d\n%s", code, exitStopped, p.stderr.String())
	}
	written := f.written()
	st := f.states()
	if st[ledger.Pending] != 0 || st[ledger.Done] != len(written) {
		t.Errorf("after the stop the ledger holds %v; want %d done (the rows written) and nothing pending", st, len(written))
	}
	if len(written) == 0 || len(written) == f.n {
		t.Fatalf("%d rows written before the stop, want some and not all", len(written))
	}

	later := filepath.Join(f.dir, "later")
	if res := f.run("run", "-c", f.cfg, "-o", later, f.in); res.code != exitOK {
		t.Fatalf("a later run: exit %d\n%s", res.code, res.stderr)
	}
	before := map[string]bool{}
	for _, u := range written {
		before[u] = true
	}
	for _, r := range readCSV(t, filepath.Join(later, "report.csv")) {
		want := "applied"
		if before[r["user"]] {
			want = "already"
		}
		if r["outcome"] != want {
			t.Errorf("a later run, %s: %s %q, want %s", r["user"], r["outcome"], r["detail"], want)
		}
	}
	f.checkOnce(-1)
	if st := f.states(); st[ledger.Pending] != 0 || st[ledger.Done] != f.n {
		t.Errorf("after the later run the ledger holds %v, want %d done", st, f.n)
	}
}

// TestLedgerClaimsAheadResumedAfterKill: a process killed with rows
// claimed ahead leaves them pending under its run id; --resume (the same
// run id) sends each of them once, settles the write in flight as before,
// and leaves nothing pending.
func TestLedgerClaimsAheadResumedAfterKill(t *testing.T) {
	t.Parallel()
	const held = 5
	f := newAheadFixture(t, 200, held)
	out := filepath.Join(f.dir, "out")
	p := f.start("run", "-c", f.cfg, "-o", out, f.in)
	f.waitInFlight(p)
	if got := f.states()[ledger.Pending]; got <= 1 {
		t.Errorf("with the 5th row's write in flight the ledger holds %d pending entries; want the rows claimed ahead of it too", got)
	}
	_ = p.cmd.Process.Kill()
	p.wait()
	res := f.run("run", "-c", f.cfg, "-o", out, f.in, "--resume")
	if res.code != exitOK {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	f.checkOnce(held - 1)
	outcomes := map[string]int{}
	for _, r := range readCSV(t, filepath.Join(out, "report.csv")) {
		outcomes[r["outcome"]]++
	}
	if outcomes["applied"] != f.n {
		t.Errorf("after the resume: %v, want all %d applied", outcomes, f.n)
	}
	if st := f.states(); st[ledger.Pending] != 0 || st[ledger.Done] != f.n {
		t.Errorf("after the resume the ledger holds %v, want %d done", st, f.n)
	}
}
