package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
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
)

// TestSignalsCaughtOnce: SIGINT and SIGTERM are caught in one place,
// signalCatcher, and reach the commands from there (as signals for a run,
// as a context for verify and sandbox); no other code calls signal.Notify.
func TestSignalsCaughtOnce(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	var callers []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "signal" && strings.HasPrefix(sel.Sel.Name, "Notify") {
				callers = append(callers, filepath.ToSlash(path))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(callers) != 1 || !strings.HasSuffix(callers[0], "cmd/userbatch/signals.go") {
		t.Errorf("signal.Notify is called in %v; want only cmd/userbatch/signals.go", callers)
	}
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

// hostileHold answers reads at once and holds every write after the fake
// has processed it, until the client goes away or release is closed: the
// vendor has the change, the client has no answer yet.
type hostileHold struct {
	next    http.Handler
	held    chan string
	release chan struct{}
}

func (h *hostileHold) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	select {
	case <-h.release:
		write = false
	default:
	}
	if !write {
		h.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	h.held <- r.URL.Path
	select {
	case <-r.Context().Done():
		return
	case <-h.release:
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// hostileWaitFor polls text until it holds want, or fails past limit.
func hostileWaitFor(t *testing.T, text func() string, want string, limit time.Duration) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !strings.Contains(text(), want) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no %q within %v:\n%s", want, limit, text())
		}
	}
}

// TestSecondInterrupt: with writes in flight (the vendor has them,
// the client has no answer), SIGINT, then SIGINT again once "stopping" is
// logged: exit 3, one line after the second signal naming the exact resume
// command, nothing logged after it; the resume finishes with no user
// written twice.
func TestSecondInterrupt(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken, AutoCreate: true})
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	hold := &hostileHold{next: e.fakes.handler(), held: make(chan string, 64), release: make(chan struct{})}
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(hold.release) }) }
	t.Cleanup(releaseAll) // before the server closes: no handler left blocked
	e.serve(hold)
	rows := append(many(8, "apps,k%d,disable"), many(8, "admin,c%d,toggle-status")...)
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	args := []string{"run", "-c", e.cfg, "-o", out, in, "--grace", "1h", "--log-format", "json"}
	p := e.start(args...)
	var killed atomic.Bool
	timer := time.AfterFunc(hostileLimit, func() { killed.Store(true); _ = p.cmd.Process.Kill() })
	defer timer.Stop()
	for i := 0; i < 4; i++ { // writes in flight at the vendor
		select {
		case <-hold.held:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Fatalf("only %d writes reached the vendor\n%s", i, p.stderr.String())
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	hostileWaitFor(t, p.stderr.String, "stopping", 30*time.Second)
	before := len(p.stderr.String())
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	code := p.wait()
	if killed.Load() {
		t.Fatalf("the second SIGINT did not stop the run within %v\n%s", hostileLimit, p.stderr.String())
	}
	stderr := p.stderr.String()
	if code != exitStopped {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	after := strings.Split(strings.TrimRight(stderr[before:], "\n"), "\n")
	resume := "userbatch " + strings.Join(args, " ") + " --resume"
	if len(after) != 1 {
		t.Fatalf("%d lines after the second SIGINT, want exactly 1:\n%s", len(after), strings.Join(after, "\n"))
	}
	line := after[0]
	for _, want := range []string{"cut off", "journal is consistent"} {
		if !strings.Contains(line, want) {
			t.Errorf("the line after the second SIGINT lacks %q: %s", want, line)
		}
	}
	if !strings.HasSuffix(line, resume) {
		t.Errorf("the line does not end with the exact resume command %q:\n%s", resume, line)
	}
	for _, bad := range []string{"retrying", "context canceled", "fix the cause"} {
		if strings.Contains(stderr[before:], bad) {
			t.Errorf("stderr holds %q after the second SIGINT:\n%s", bad, stderr[before:])
		}
	}
	for _, bad := range []string{"context canceled", "fix the cause"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr holds %q:\n%s", bad, stderr)
		}
	}
	hostileResumeAfterCut(t, e, releaseAll, strings.Fields(resume)[1:], out, len(rows))
}

// hostileResumeAfterCut runs the printed resume command and checks that
// every row ends settled with no user written twice.
func hostileResumeAfterCut(t *testing.T, e *e2e, releaseAll func(), args []string, out string, n int) {
	t.Helper()
	releaseAll()
	code, _, p := e.hostileStart(args...)
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if len(report) != n {
		t.Fatalf("report after resume has %d rows, want %d", len(report), n)
	}
	unknown := 0
	for _, r := range report {
		user := r["user"]
		if user[0] == 'k' {
			u, _ := e.fakes.kii.User(user)
			if w := e.fakes.kii.Writes(user); w != 1 || !u.Disabled || r["outcome"] != "applied" {
				t.Errorf("kii %s: %d writes, disabled %v, outcome %s; want one write, applied", user, w, u.Disabled, r["outcome"])
			}
			continue
		}
		w := e.fakes.clearsquare.Writes(user)
		switch {
		case w > 1:
			t.Errorf("toggle %s sent %d times", user, w)
		case r["outcome"] == "applied" && w != 1:
			t.Errorf("toggle %s applied but the vendor saw %d", user, w)
		case r["outcome"] == "unknown":
			unknown++ // cut off in flight: never sent again, checked by hand
		case r["outcome"] != "applied":
			t.Errorf("toggle %s: %s", user, r["outcome"])
		}
	}
	want := exitOK
	if unknown > 0 {
		want = exitIncomplete
	}
	if code != want {
		t.Errorf("resume: exit %d, want %d (%d toggles cut off in flight)\n%s", code, want, unknown, p.stderr.String())
	}
}
