package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// lossFixture is a run of kii disables and ClearSquare toggles against a
// ledger that goes away when the nth write reaches the vendors: the fake
// calls lose, then answers that write.
type lossFixture struct {
	*e2e
	users []string
	rows  []string

	mu     sync.Mutex
	writes int
	after  int // writes that arrived after the ledger went away
	nth    int
	lose   func()
}

func newLossFixture(t *testing.T, n int) *lossFixture {
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken})
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	f := &lossFixture{e2e: e}
	prefix := randomHex()[:6] // a PostgreSQL ledger outlives the test
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			u := fmt.Sprintf("%s-k%02d", prefix, i)
			e.fakes.kii.AddUser(u, kiitest.User{})
			f.users, f.rows = append(f.users, u), append(f.rows, "apps,"+u+",disable")
		} else {
			u := fmt.Sprintf("%s-c%02d", prefix, i)
			f.users, f.rows = append(f.users, u), append(f.rows, "admin,"+u+",toggle-status")
		}
	}
	fakes := e.fakes.handler()
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			f.mu.Lock()
			f.writes++
			if f.lose != nil && f.writes > f.nth {
				f.after++
			}
			if f.lose != nil && f.writes == f.nth {
				f.lose() // before this write is answered: it is in flight
			}
			f.mu.Unlock()
		}
		fakes.ServeHTTP(w, r)
	}))
	return f
}

// sent is how many writes each user received.
func (f *lossFixture) sent() map[string]int {
	m := map[string]int{}
	for _, u := range f.users {
		m[u] = f.fakes.kii.Writes(u) + f.fakes.clearsquare.Writes(u)
	}
	return m
}

// checkLost checks the report of a run whose ledger went away: every row
// the vendors received is applied, the others skipped for the ledger, and
// the summary says the run stopped.
func (f *lossFixture) checkLost(t *testing.T, out string) (applied int) {
	t.Helper()
	sent := f.sent()
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != len(f.rows) {
		t.Fatalf("report.csv: %d rows, want %d", len(rows), len(f.rows))
	}
	for _, r := range rows {
		switch {
		case sent[r["user"]] == 1 && r["outcome"] == "applied":
			applied++
		case sent[r["user"]] == 0 && r["outcome"] == "skipped" && strings.HasPrefix(r["detail"], "ledger unavailable: "):
		default:
			t.Errorf("%s: %s %q after %d writes; want applied when written, skipped (ledger unavailable) when not", r["user"], r["outcome"], r["detail"], sent[r["user"]])
		}
	}
	if applied < f.nth || applied == len(f.rows) {
		t.Errorf("%d rows applied, want at least the %d written before the ledger went away, and not all", applied, f.nth)
	}
	if s := readSummary(t, out); s["exit_code"] != float64(exitStopped) {
		t.Errorf("summary.json exit_code %v, want %d", s["exit_code"], exitStopped)
	}
	return applied
}

// checkResumed checks that the resume finished the run, each user written once.
func (f *lossFixture) checkResumed(t *testing.T, out string) {
	t.Helper()
	for u, n := range f.sent() {
		if n != 1 {
			t.Errorf("%s received %d writes over the run and its resume, want 1", u, n)
		}
	}
	for _, r := range readCSV(t, filepath.Join(out, "report.csv")) {
		if r["outcome"] != "applied" {
			t.Errorf("after the resume, %s: %s %q", r["user"], r["outcome"], r["detail"])
		}
	}
}

// sqliteReadOnly makes the SQLite ledger at path refuse every write, and
// gives a func that lifts it. The test runs as root, whom file modes do not
// stop, and the run holds the file open: triggers refuse the writes as a
// read-only file would, at once and deterministically.
func sqliteReadOnly(t *testing.T, path string) (lose, back func()) {
	exec := func(stmts ...string) {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	}
	var make, drop []string
	for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
		name := "test_readonly_" + strings.ToLower(op)
		make = append(make, "CREATE TRIGGER "+name+" BEFORE "+op+" ON userbatch_ledger BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database (the test made it so)'); END")
		drop = append(drop, "DROP TRIGGER "+name)
	}
	return func() { exec(make...) }, func() { exec(drop...) }
}

// TestLedgerLostMidRunSQLite is issue 15 point 8 on SQLite: the ledger
// refuses writes while writes are in flight. No further change is claimed
// or sent, the write in flight is answered and journalled (applied), the
// rest end skipped, the report is written, exit 3; --resume once the
// ledger is back sends each change once.
func TestLedgerLostMidRunSQLite(t *testing.T) {
	t.Parallel()
	f := newLossFixture(t, 40)
	path := filepath.Join(f.dir, "state", "ledger.db")
	cfg := f.write("ledger.yaml", f.fakes.targetsYAML(f.srv.URL, 1000)+"ledger: sqlite:"+path+"\n")
	lose, back := sqliteReadOnly(t, path)
	f.nth, f.lose = 10, lose
	in := f.write("ops.csv", opsCSV(f.rows...))
	out := filepath.Join(f.dir, "out")

	res := f.run("run", "-c", cfg, "-o", out, in)
	if res.code != exitStopped || !strings.Contains(res.stderr, "ledger unavailable") || !strings.Contains(res.stderr, "--resume") {
		t.Fatalf("exit %d, want %d naming the ledger and the resume\n%s", res.code, exitStopped, res.stderr)
	}
	f.checkLost(t, out)

	back()
	f.mu.Lock()
	f.lose = nil
	f.mu.Unlock()
	if res := f.run("run", "-c", cfg, "-o", out, in, "--resume"); res.code != exitOK {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	f.checkResumed(t, out)
	// A later run over the same file finds every change in the ledger.
	later := filepath.Join(f.dir, "later")
	if res := f.run("run", "-c", cfg, "-o", later, in); res.code != exitOK {
		t.Fatalf("a later run: exit %d\n%s", res.code, res.stderr)
	}
	for _, r := range readCSV(t, filepath.Join(later, "report.csv")) {
		if r["outcome"] != "already" {
			t.Errorf("a later run, %s: %s %q, want already (done by the run)", r["user"], r["outcome"], r["detail"])
		}
	}
	f.checkResumed(t, out)
}

// TestResumeSettledByLedger: a process killed after the ledger recorded a
// toggle applied but before its journal did leaves an open intent. The
// resume takes the ledger's word: applied, and in undo.csv, not unknown;
// nothing is sent again. A toggle whose answer neither holds stays unknown.
func TestResumeSettledByLedger(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: e.fakes.creds.clearsquareToken, AutoCreate: true})
	second := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	writes := 0
	var mu sync.Mutex
	fakes := e.fakes.handler()
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		writes++
		n := writes
		mu.Unlock()
		if n == 2 { // the second toggle: the process is killed while it waits
			rec := httptest.NewRecorder()
			fakes.ServeHTTP(rec, r)
			close(second)
			<-release
			return
		}
		fakes.ServeHTTP(w, r)
	}))
	cfg := e.write("ledger.yaml", e.fakes.targetsYAML(e.srv.URL, 1000)+"ledger: sqlite:"+filepath.Join(e.dir, "ledger.db")+"\n")
	// Two toggles of one user, due on two days: they run in order, so the
	// second is sent only once the first was recorded in the ledger.
	in := e.write("ops.csv", "target,user,action,effective_at\nadmin,c-pat,toggle-status,2026-11-01\nadmin,c-pat,toggle-status,2026-11-02\n")
	out := filepath.Join(e.dir, "out")
	p := e.start("run", "-c", cfg, "-o", out, in)
	select {
	case <-second:
	case <-time.After(20 * time.Second): // a guard against a hang
		t.Fatal("the second toggle never reached the vendor")
	}
	_ = p.cmd.Process.Kill()
	p.wait()
	// The kill came after the ledger's record of the first toggle; take
	// its result out of the journal, as a kill just before the journal's
	// write would have left it.
	journal := filepath.Join(out, "journal.jsonl")
	var kept []string
	for _, line := range strings.SplitAfter(readFile(t, journal), "\n") {
		if !strings.HasPrefix(line, `{"t":"r","i":0,`) {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(journal, []byte(strings.Join(kept, "")), 0o600); err != nil {
		t.Fatal(err)
	}

	res := e.run("run", "-c", cfg, "-o", out, in, "--resume")
	if res.code != exitIncomplete {
		t.Fatalf("resume: exit %d, want 1 (the second toggle is unknown)\n%s", res.code, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if rows[0]["outcome"] != "applied" || !strings.Contains(rows[0]["detail"], "the ledger recorded it") {
		t.Errorf("the first toggle: %s %q, want applied, settled by the ledger", rows[0]["outcome"], rows[0]["detail"])
	}
	if rows[1]["outcome"] != "unknown" {
		t.Errorf("the second toggle: %s %q, want unknown", rows[1]["outcome"], rows[1]["detail"])
	}
	undo := readCSV(t, filepath.Join(out, "undo.csv"))
	if len(undo) != 1 || undo[0]["user"] != "c-pat" {
		t.Errorf("undo.csv: %v, want the first toggle", undo)
	}
	if n := e.fakes.clearsquare.Writes("c-pat"); n != 2 {
		t.Errorf("c-pat received %d toggles, want 2 (none sent again)", n)
	}
}
