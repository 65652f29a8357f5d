package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/internal/skipped"
)

// binPath is the userbatch binary built once for the tests that drive it as
// an operator would: a process, signals, SIGKILL.
var binPath string

func TestMain(m *testing.M) {
	widenParallel()
	dir, err := os.MkdirTemp("", "userbatch-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "userbatch")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building userbatch:", err)
		os.Exit(1)
	}
	code := skipped.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// widenParallel lets more tests run at once than go test's default of
// GOMAXPROCS: these tests mostly wait on child processes, loopback HTTP,
// tmux and Chromium, so on a 2-core machine GOMAXPROCS at a time leaves the
// cores idle. An explicit -parallel still wins.
func widenParallel() {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(4*runtime.GOMAXPROCS(0)))
	}
}

// counter calls fn once, when the n-th request arrives.
type counter struct {
	next http.Handler
	n    int64
	seen atomic.Int64
	fn   func()
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.seen.Add(1) == c.n && c.fn != nil {
		c.fn()
	}
	c.next.ServeHTTP(w, r)
}

// process is a started userbatch binary.
type process struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
}

// lockedBuffer is stderr, readable while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (e *e2e) start(args ...string) *process {
	e.t.Helper()
	p := &process{cmd: exec.Command(binPath, args...)}
	p.cmd.Env = append(os.Environ(), e.env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// wait returns the exit code (-1 when killed by a signal).
func (p *process) wait() int {
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -2
	}
	return 0
}

func opsCSV(rows ...string) string {
	return "target,user,action\n" + strings.Join(rows, "\n") + "\n"
}

func many(n int, format string) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = fmt.Sprintf(format, i)
	}
	return rows
}

// TestGracefulStopAndResume: SIGINT stops dispatching, lets requests in
// flight finish, writes a complete report with the rest skipped, exits 3;
// --resume then finishes with every row applied exactly once.
func TestGracefulStopAndResume(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel = epixeltest.New(epixeltest.Options{APIKey: e.fakes.creds.epixelKey, Token: e.fakes.creds.epixelToken, AutoCreate: true})
	e.fakes.epixel.Faults.SetLatency(10 * time.Millisecond)
	var started atomic.Pointer[process]
	c := &counter{next: e.fakes.handler(), n: 40, fn: func() { _ = started.Load().cmd.Process.Signal(syscall.SIGINT) }}
	e.serve(c)
	const n = 300
	in := e.write("ops.csv", opsCSV(many(n, "shop,user-%03d,disable")...))
	out := filepath.Join(e.dir, "report")
	p := e.start("run", "-c", e.cfg, "-o", out, in, "--log-format", "json")
	started.Store(p)
	if code := p.wait(); code != exitStopped {
		t.Fatalf("exit %d, want 3\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "--resume") {
		t.Errorf("stderr does not say how to resume:\n%s", p.stderr.String())
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	counts := map[string]int{}
	for _, r := range rows {
		counts[r["outcome"]]++
	}
	if len(rows) != n || counts["skipped"] == 0 || counts["applied"] < 40-4 || counts["applied"]+counts["skipped"] != n {
		t.Fatalf("report after stop: %d rows, %v", len(rows), counts)
	}
	p = e.start("run", "-c", e.cfg, "-o", out, in, "--resume")
	if code := p.wait(); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, p.stderr.String())
	}
	rows = readCSV(t, filepath.Join(out, "report.csv"))
	for i, r := range rows {
		user := fmt.Sprintf("user-%03d", i)
		if r["outcome"] != "applied" || r["user"] != user {
			t.Errorf("row %d: %s %s", i, r["user"], r["outcome"])
		}
		if got := e.fakes.epixel.Writes(user); got != 1 {
			t.Errorf("%s written %d times, want 1", user, got)
		}
	}
}

// TestSecondSignalStopsAtOnce: a second SIGINT ends the run without waiting
// for the grace period, and the journal still resumes.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: e.fakes.creds.kiiToken, AutoCreate: true})
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: "slow", Times: 1, Fault: fakehttp.Fault{Delay: time.Minute}})
	var started atomic.Pointer[process]
	// The second signal goes once the first is acknowledged: the OS merges
	// signals that arrive while one is still pending.
	c := &counter{next: e.fakes.handler(), n: 1, fn: func() {
		p := started.Load()
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		go func() {
			for !strings.Contains(p.stderr.String(), "stopping: no new rows") {
				runtime.Gosched()
			}
			_ = p.cmd.Process.Signal(syscall.SIGINT)
		}()
	}}
	e.serve(c)
	in := e.write("ops.csv", opsCSV(append([]string{"apps,slow,disable"}, many(20, "apps,k%d,disable")...)...))
	out := filepath.Join(e.dir, "report")
	t0 := time.Now()
	p := e.start("run", "-c", e.cfg, "-o", out, in, "--grace", "1h")
	started.Store(p)
	if code := p.wait(); code != exitStopped {
		t.Fatalf("exit %d, want 3\n%s", code, p.stderr.String())
	}
	t.Logf("first run took %v", time.Since(t0))
	t1 := time.Now()
	p = e.start("run", "-c", e.cfg, "-o", out, in, "--resume")
	if code := p.wait(); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, p.stderr.String())
	}
	t.Logf("resume took %v", time.Since(t1))
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 21 {
		t.Fatalf("report has %d rows, want 21", len(rows))
	}
}

// TestFaultsThroughTheBinary injects every fault the vendors can throw and
// checks that no row is lost, no idempotent row fails while retries remain,
// no toggle is sent twice, and attempts are counted.
func TestFaultsThroughTheBinary(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	f := e.fakes
	faults := map[string]fakehttp.Fault{
		"e-503":    {Status: 503},
		"e-500":    {Status: 500},
		"e-reset":  {Reset: true},
		"e-drop":   {DropAfter: true},
		"e-slow":   {Delay: time.Minute},
		"e-429":    {Status: 429, RetryAfter: "1"},
		"c-429":    {Status: 429, RetryAfter: "1"},
		"c-drop":   {DropAfter: true},
		"c-503":    {Status: 503},
		"c-reset":  {Reset: true},
		"c-slow":   {Delay: time.Minute},
		"k-500":    {Status: 500},
		"k-reset":  {Reset: true},
		"e-always": {Status: 502},
	}
	var rows []string
	for _, id := range []string{"e-503", "e-500", "e-reset", "e-drop", "e-slow", "e-429", "e-ok", "e-always"} {
		f.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
		times := 1
		if id == "e-always" {
			times = 0
		}
		if fl, ok := faults[id]; ok {
			f.epixel.Faults.Add(fakehttp.Rule{User: id, Times: times, Fault: fl})
		}
		rows = append(rows, "shop,"+id+",disable")
	}
	for _, id := range []string{"c-429", "c-drop", "c-503", "c-reset", "c-slow", "c-ok"} {
		f.clearsquare.AddUser(id, clearsquaretest.User{Active: true})
		if fl, ok := faults[id]; ok {
			f.clearsquare.Faults.Add(fakehttp.Rule{User: id, Times: 1, Fault: fl})
		}
		rows = append(rows, "admin,"+id+",toggle-status")
	}
	for _, id := range []string{"k-500", "k-reset"} {
		f.kii.AddUser(id, kiitest.User{})
		f.kii.Faults.Add(fakehttp.Rule{User: id, Method: http.MethodPut, Times: 1, Fault: faults[id]})
		rows = append(rows, "apps,"+id+",disable")
	}
	cfg := strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 1000), "timeout: 10s", "timeout: 1s")
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	p := e.start("run", "-c", e.write("fast-timeout.yaml", cfg), "-o", out, in, "--log-level", "debug", "--log-format", "json")
	if code := p.wait(); code != exitIncomplete {
		t.Fatalf("exit %d, want 1\n%s", code, p.stderr.String())
	}
	got := rowsByUser(readCSV(t, filepath.Join(out, "report.csv")))
	if len(got) != len(rows) {
		t.Fatalf("report has %d rows, want %d", len(got), len(rows))
	}
	want := map[string]string{
		"e-503": "applied 2", "e-500": "applied 2", "e-reset": "applied 2", "e-drop": "applied 2",
		"e-slow": "applied 2", "e-429": "applied 2", "e-ok": "applied 1", "e-always": "unknown 5",
		"c-429": "applied 2", "c-drop": "unknown 1", "c-503": "unknown 1", "c-reset": "unknown 1",
		"c-slow": "unknown 1", "c-ok": "applied 1",
		"k-500": "applied 3", "k-reset": "applied 3", // read, failed write, write
	}
	for id, w := range want {
		if g := got[id]["outcome"] + " " + got[id]["attempts"]; g != w {
			t.Errorf("%s: %s, want %s (%s)\n%s", id, g, w, got[id]["message"], grepLines(p.stderr.String(), "\"line\":"+got[id]["line"]+","))
		}
	}
	for id, w := range map[string]int{"c-429": 1, "c-drop": 1, "c-503": 0, "c-reset": 0, "c-slow": 0, "c-ok": 1} {
		if n := f.clearsquare.Writes(id); n != w {
			t.Errorf("toggle %s processed %d times, want %d", id, n, w)
		}
	}
	for _, id := range []string{"e-503", "e-500", "e-reset", "e-drop", "e-slow", "e-429", "e-ok"} {
		if u, _ := f.epixel.User(id); !u.Blocked {
			t.Errorf("%s not blocked", id)
		}
	}
}

// TestKillAndResume SIGKILLs the binary at many points of a run, resumes
// each time, and checks from the fakes' own counters that every idempotent
// row ends right, no toggle was sent twice, and the final report has exactly
// one outcome per row.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.epixel = epixeltest.New(epixeltest.Options{APIKey: c.epixelKey, Token: c.epixelToken, AutoCreate: true})
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken, AutoCreate: true})
	for _, in := range []*fakehttp.Injector{&e.fakes.epixel.Faults, &e.fakes.clearsquare.Faults, &e.fakes.kii.Faults} {
		in.SetLatency(10 * time.Millisecond)
	}
	e.serve(e.fakes.handler())
	var rows []string
	rows = append(rows, many(600, "shop,e%03d,disable")...)
	rows = append(rows, many(100, "apps,k%03d,disable")...)
	rows = append(rows, many(100, "admin,c%03d,toggle-status")...)
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	journal := filepath.Join(out, "journal.jsonl")
	kills := 0
	for i := 0; i < 12; i++ {
		args := []string{"run", "-c", e.cfg, "-o", out, in}
		if _, err := os.Stat(journal); err == nil {
			args = append(args, "--resume")
		}
		p := e.start(args...)
		// Kill times spread over the run: 40ms to 205ms after start.
		timer := time.AfterFunc(time.Duration(40+15*i)*time.Millisecond, func() { _ = p.cmd.Process.Kill() })
		code := p.wait()
		if timer.Stop() {
			t.Logf("run %d finished before its kill (exit %d)", i, code)
		} else {
			kills++
		}
	}
	if kills < 10 {
		t.Fatalf("only %d runs were killed mid-way; the run is too short for this test", kills)
	}
	p := e.start("run", "-c", e.cfg, "-o", out, in, "--resume")
	if code := p.wait(); code != exitOK && code != exitIncomplete {
		t.Fatalf("final resume: exit %d\n%s", code, p.stderr.String())
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if len(report) != len(rows) {
		t.Fatalf("report has %d rows, want %d", len(report), len(rows))
	}
	checkUndoComplete(t, out, report)
	for i, r := range report {
		if r["line"] != fmt.Sprint(i+2) {
			t.Fatalf("row %d has line %s", i, r["line"])
		}
		user := r["user"]
		switch user[0] {
		case 'e':
			if u, _ := e.fakes.epixel.User(user); !u.Blocked || r["outcome"] != "applied" {
				t.Errorf("%s: blocked %v, outcome %s", user, u.Blocked, r["outcome"])
			}
		case 'k':
			// Every kii user started enabled: each disable is this run's
			// change, even one a killed process sent and a resume found done.
			if u, _ := e.fakes.kii.User(user); !u.Disabled || r["outcome"] != "applied" {
				t.Errorf("%s: disabled %v, outcome %s", user, u.Disabled, r["outcome"])
			}
		case 'c':
			n := e.fakes.clearsquare.Writes(user)
			switch {
			case n > 1:
				t.Errorf("toggle %s sent %d times", user, n)
			case r["outcome"] == "applied" && n != 1:
				t.Errorf("toggle %s reported applied but the vendor saw %d", user, n)
			case r["outcome"] != "applied" && r["outcome"] != "unknown":
				t.Errorf("toggle %s: outcome %s", user, r["outcome"])
			}
		}
	}
}

// checkUndoComplete: undo.csv lists every change the run made, whatever
// the kills, in reverse input order.
func checkUndoComplete(t *testing.T, out string, report []map[string]string) {
	t.Helper()
	var applied []string
	for _, r := range report {
		if r["outcome"] == "applied" {
			applied = append(applied, r["user"])
		}
	}
	undo := readCSV(t, filepath.Join(out, "undo.csv"))
	if len(undo) != len(applied) {
		t.Fatalf("undo.csv has %d rows for %d applied rows", len(undo), len(applied))
	}
	for i, u := range undo {
		if want := applied[len(applied)-1-i]; u["user"] != want {
			t.Fatalf("undo row %d is for %s, want %s (reverse input order)", i, u["user"], want)
		}
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
