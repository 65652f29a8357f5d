package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

var readingRows = regexp.MustCompile(`reading state (\d+)/(\d+) rows`)

// TestTerminalConfirmShowsStateReading: on a terminal, the reads before
// the question draw a bar of their own ("reading state n/N rows") that
// moves, then the question comes; the right number applies every row.
func TestTerminalConfirmShowsStateReading(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.cfg = e.write("slow.yaml", e.fakes.targetsYAML(e.srv.URL, 20)) // 30 reads: 1.5 s, ten of the bar's 150ms frames
	in, users := e.kiiUsers(30, 0)
	p := startPane(t, "", "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "out"), in)
	seen := map[int]bool{}
	s := p.waitScreen("the reading-state bar at two counts below 30, then the question", func(s string) bool {
		for _, m := range readingRows.FindAllStringSubmatch(s, -1) {
			if n, _ := strconv.Atoi(m[1]); n > 0 && n < 30 && m[2] == "30" {
				seen[n] = true
			}
		}
		return strings.Contains(s, "Type 30 to send these changes")
	})
	if len(seen) < 2 {
		t.Errorf("the state reading showed %d distinct counts below 30 (%v), want it seen moving; screen:\n%s", len(seen), seen, s)
	}
	if !strings.Contains(s, "reading state 30/30 rows") || strings.Index(s, "reading state 30/30 rows") > strings.Index(s, "About to change 30 users") {
		t.Errorf("want the bar's last frame at 30/30 above the question; screen:\n%s", s)
	}
	if n := e.kiiWrites(users); n != 0 {
		t.Fatalf("%d writes before the answer", n)
	}
	e.confirmApplies(p, users)
}

// TestTerminalCtrlCAtTheQuestion: Ctrl-C at the question stops at once
// (no Enter needed): exit 3, nothing sent, the report written as for any
// signal (every row not started) with the resume command, which then asks
// again and applies.
func TestTerminalCtrlCAtTheQuestion(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(5, 0)
	out := filepath.Join(e.dir, "out")
	p := startPane(t, "", "run", "-c", e.cfg, "-o", out, in)
	p.waitText("Type 5 to send these changes")
	p.tmux("send-keys", "-t", "ub", "C-c")
	code, s := p.exitCode()
	if code != exitStopped {
		t.Fatalf("Ctrl-C at the question: exit %d, want %d; screen:\n%s", code, exitStopped, s)
	}
	for _, want := range []string{"stopped at the question: nothing was sent", "stopped before finishing: to finish, run:", "--resume"} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q:\n%s", want, s)
		}
	}
	if n := e.kiiWrites(users); n != 0 {
		t.Fatalf("Ctrl-C at the question still sent %d writes", n)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 5 {
		t.Fatalf("report.csv has %d rows, want 5", len(rows))
	}
	for _, r := range rows {
		if r["outcome"] != "skipped" || !strings.Contains(r["detail"], "not started") || r["attempts"] != "0" {
			t.Errorf("line %s: %s (%s) after %s attempts, want skipped, not started, unsent", r["line"], r["outcome"], r["detail"], r["attempts"])
		}
	}
	if sum := readSummary(t, out); sum["exit_code"] != float64(exitStopped) || sum["stopped"] != true {
		t.Errorf("summary.json: exit_code %v stopped %v, want 3 and true", sum["exit_code"], sum["stopped"])
	}

	e.confirmApplies(startPane(t, "", "run", "-c", e.cfg, "-o", out, in, "--resume"), users)
}

// confirmApplies answers the pane's question with the number of users,
// and checks that the run then wrote each of them once.
func (e *e2e) confirmApplies(p *termPane, users []string) {
	e.t.Helper()
	n := strconv.Itoa(len(users))
	p.waitText("Type " + n + " to send these changes")
	p.typeLine(n)
	if code, s := p.exitCode(); code != 0 {
		e.t.Fatalf("after typing %s: exit %d, want 0; screen:\n%s", n, code, s)
	}
	if got := e.kiiWrites(users); got != len(users) {
		e.t.Errorf("after typing %s: %d writes, want %d", n, got, len(users))
	}
}

// TestTerminalStdinInputAsksOnTheTerminal: with the CSV on stdin (`-`) and
// a person at the terminal, the question is asked there (/dev/tty): a
// wrong number sends nothing and says how to go on (type the number, or
// --yes), with no word of --max-changes; the right one applies.
func TestTerminalStdinInputAsksOnTheTerminal(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(5, 0)
	p := startPane(t, "< "+shellQuote(in), "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "no"), "-")
	p.waitText("Type 5 to send these changes")
	if n := e.kiiWrites(users); n != 0 {
		t.Fatalf("%d writes before the answer", n)
	}
	p.typeLine("4")
	code, s := p.exitCode()
	if code != int(exitHeld) {
		t.Fatalf("a wrong number: exit %d, want %d; screen:\n%s", code, exitHeld, s)
	}
	for _, want := range []string{`not confirmed (typed "4", not 5): nothing was sent`, "run the same command again and type 5 at the question", "--yes"} {
		if !strings.Contains(s, want) {
			t.Errorf("a wrong number: the screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "--max-changes") || strings.Contains(s, "raise the limit") {
		t.Errorf("a wrong number: the screen points at the limits, which did not hold the run:\n%s", s)
	}
	if n := e.kiiWrites(users); n != 0 {
		t.Fatalf("a wrong number still sent %d writes", n)
	}

	e.confirmApplies(startPane(t, "< "+shellQuote(in), "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "yes"), "-"), users)
}

// TestStateReadingLogsProgress: with no terminal, a guarded run says in
// its log that it reads state before the first write, and its progress
// records while it does (here at once, for a pause) carry the phase.
func TestStateReadingLogsProgress(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(20, 0)
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: users[5], Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}})
	out := filepath.Join(e.dir, "out")
	p := e.start("run", "--max-changes", "100", "-c", e.cfg, "-o", out, in)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, p.stderr.String())
	}
	recs, _ := hostileRecords(p.stderr.String())
	start := hostileByMessage(recs, "reading the users' state before the first write")
	if len(start) != 1 || start[0]["rows"] != float64(20) {
		t.Errorf("want one record saying 20 rows' state is read before the first write; got %v", start)
	}
	reading := 0
	for _, r := range hostileByMessage(recs, "progress") {
		if r["phase"] == "reading state" {
			reading++
			if r["of"] != float64(20) {
				t.Errorf("a reading-state progress record counts of %v, want 20: %v", r["of"], r)
			}
		}
	}
	if reading == 0 {
		t.Errorf("no progress record while state was read (phase \"reading state\"); log:\n%s", p.stderr.String())
	}
	if n := e.kiiWrites(users); n != 20 {
		t.Errorf("%d writes, want 20", n)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Error(err)
	}
}
