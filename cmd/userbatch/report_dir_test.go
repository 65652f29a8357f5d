package main

// The report directory: one process at a time (its lock), the rules for
// reusing one, and a rerun into the same directory; through the built
// binary against the fake vendors on loopback. The seam* helpers are shared
// with the other feature files.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
)

// seamHits records every request's path, query and body, so a test can
// tell whether any request about a given user reached a given fake.
type seamHits struct {
	next  http.Handler
	mu    sync.Mutex
	texts []string
}

func (h *seamHits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.mu.Lock()
	h.texts = append(h.texts, r.URL.Path+"?"+r.URL.RawQuery+"\n"+string(body))
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

// about counts the requests under prefix that name user anywhere.
func (h *seamHits) about(prefix, user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.texts {
		if strings.HasPrefix(t, prefix) && strings.Contains(t, user) {
			n++
		}
	}
	return n
}

// seamGate holds every request until release is closed (or the client
// gives up), and reports each arrival on arrived.
type seamGate struct {
	next    http.Handler
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
	n       atomic.Int64
}

func newSeamGate(t *testing.T, next http.Handler) *seamGate {
	g := &seamGate{next: next, arrived: make(chan struct{}, 1024), release: make(chan struct{})}
	// Registered after newE2E's: runs before the server closes, which
	// waits for every handler.
	t.Cleanup(g.open)
	return g
}

func (g *seamGate) open() { g.once.Do(func() { close(g.release) }) }

func (g *seamGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.n.Add(1)
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	g.next.ServeHTTP(w, r)
}

// waitArrival waits for the gate's next request, failing the test if none
// comes while p runs.
func (g *seamGate) waitArrival(t *testing.T, p *process) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("no request reached the vendor in 30s\n%s", p.stderr.String())
	}
}

// seamStart starts the binary and kills it if the test ends first.
func (e *e2e) seamStart(args ...string) *process {
	e.t.Helper()
	p := e.start(args...)
	e.t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// seamWaitWithin waits for p, failing the test (and killing p) after d.
func seamWaitWithin(t *testing.T, p *process, d time.Duration) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- p.wait() }()
	select {
	case code := <-done:
		return code
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("the process did not end within %v\n%s", d, p.stderr.String())
		return -1
	}
}

func seamRowsByKey(rows []map[string]string) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, r := range rows {
		m[r["target"]+"/"+r["user"]] = r
	}
	return m
}

// TestLockRefusesSecondProcess: a --resume started while the first
// process is mid-run on the same report directory exits 2 at once naming
// the holder, sends nothing, and leaves the live journal alone; the first
// process then finishes normally, each user written once.
func TestLockRefusesSecondProcess(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	gate := newSeamGate(t, e.fakes.handler())
	e.serve(gate)
	const n = 20
	rows := many(n, "shop,lk-%02d,disable")
	for i := 0; i < n; i++ {
		e.fakes.epixel.AddUser(fmt.Sprintf("lk-%02d", i), epixeltest.User{Role: "Customer"})
	}
	cfg := e.write("one.yaml", strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 1000), "concurrency: 4", "concurrency: 1"))
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	journal := filepath.Join(out, batch.JournalName)
	first := e.seamStart("run", "-c", cfg, "-o", out, in)
	gate.waitArrival(t, first) // the first process holds the lock and a request is in flight
	before, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}

	second := e.seamStart("run", "-c", cfg, "-o", out, in, "--resume")
	code := seamWaitWithin(t, second, 30*time.Second)
	stderr := second.stderr.String()
	if code != exitBadInput {
		t.Errorf("second process: exit %d, want 2\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "in use by another userbatch process") || !strings.Contains(stderr, fmt.Sprintf("pid %d", first.cmd.Process.Pid)) {
		t.Errorf("second process's stderr does not name the holder (pid %d):\n%s", first.cmd.Process.Pid, stderr)
	}
	if got := gate.n.Load(); got != 1 {
		t.Errorf("%d requests reached the vendor while one was held; the second process sent some", got)
	}
	during, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(during, before) {
		t.Errorf("the live journal was rewritten by the refused process:\nbefore:\n%s\nafter:\n%s", before, during)
	}

	gate.open()
	if code := seamWaitWithin(t, first, time.Minute); code != exitOK && code != exitIncomplete {
		t.Fatalf("first process: exit %d\n%s", code, first.stderr.String())
	}
	after, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(after, during) {
		t.Errorf("the first process's journal does not continue what it had written")
	}
	if _, err := batch.ReadJournal(journal); err != nil {
		t.Errorf("the journal no longer reads: %v", err)
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if len(report) != n {
		t.Fatalf("report has %d rows, want %d", len(report), n)
	}
	for i, r := range report {
		user := fmt.Sprintf("lk-%02d", i)
		if r["outcome"] != "applied" || r["user"] != user {
			t.Errorf("row %d: %s %s", i, r["user"], r["outcome"])
		}
		if w := e.fakes.epixel.Writes(user); w != 1 {
			t.Errorf("%s written %d times, want 1", user, w)
		}
	}
}

// seamShardReports runs the three shards of in, each into root-K.
func (e *e2e) seamShardReports(root, in string) []string {
	e.t.Helper()
	var dirs []string
	for k := 0; k < 3; k++ {
		dir := fmt.Sprintf("%s-%d", root, k)
		dirs = append(dirs, dir)
		res := e.run("run", "-c", e.cfg, "-o", dir, "--shard", fmt.Sprintf("%d/3", k), in)
		if res.code != exitOK && res.code != exitIncomplete {
			e.t.Fatalf("shard %d of %s: exit %d\n%s", k, in, res.code, res.stderr)
		}
	}
	return dirs
}

// seamSnapshot is every regular file under dir (but the lock) with its
// content.
func seamSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return snap
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".userbatch.lock" {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		snap[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func seamSameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func seamCopyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range seamSnapshot(t, from) {
		if err := os.WriteFile(filepath.Join(to, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReportDirRules: a run refuses a directory holding files but no
// journal (exit 2, nothing sent, the file unchanged), and a run's report
// directory is 0700 with every file 0600.
func TestReportDirRules(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	foreign := filepath.Join(e.dir, "home")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(foreign, "notes.txt")
	if err := os.WriteFile(notes, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := e.run("run", "-c", e.cfg, "-o", foreign, in)
	if res.code != exitBadInput || !strings.Contains(res.stderr, "no journal") {
		t.Errorf("run into a directory with a file: exit %d, stderr %q; want 2", res.code, strings.TrimSpace(res.stderr))
	}
	if n := seamRequests(e); n != 0 {
		t.Errorf("a refused run sent %d requests", n)
	}
	if snap := seamSnapshot(t, foreign); len(snap) != 1 || snap["notes.txt"] != "keep me\n" {
		t.Errorf("the directory changed: %v", snap)
	}

	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in); res.code != exitIncomplete {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("report directory mode %o, want 700", perm)
	}
	for _, name := range []string{"journal.jsonl", "report.csv", "summary.json", "failed.csv", "check.csv", "undo.csv", "report.html"} {
		info, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %o, want 600", name, perm)
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		info, err := ent.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode %o: readable by others", ent.Name(), info.Mode().Perm())
		}
	}
}

func seamRequests(e *e2e) int {
	f := e.fakes
	return f.epixel.Requests() + f.clearsquare.Requests() + f.kii.Requests() + f.msgkart.Requests()
}

func seamWrites(e *e2e) int {
	f := e.fakes
	n := 0
	for _, id := range []string{"e-disable", "e-member", "e-conflict", "e-flaky", "e-down", "../x?y=1"} {
		n += f.epixel.Writes(id)
	}
	for _, id := range []string{"c-toggle", "c-dropped", "c-503"} {
		n += f.clearsquare.Writes(id)
	}
	for _, id := range []string{"LOGIN_NAME:k-alice", "k-already", "PHONE:+8190"} {
		n += f.kii.Writes(id)
	}
	for _, id := range []string{"m-busy", "m-already", "m/slash"} {
		n += f.msgkart.Writes(id)
	}
	return n
}

// TestFixAndRunAgainIntoTheSameDirectory: a run refused for its invalid
// rows leaves its report; after the fix, the same command runs in the same
// -o, and the refused run's files are in invalid/.
func TestFixAndRunAgainIntoTheSameDirectory(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-1", epixeltest.User{Role: "Customer"})
	in := e.write("ops.csv", opsCSV("shop,e-1,disable", "nowhere,e-2,disable"))
	out := filepath.Join(e.dir, "report")
	res := runBinary(t, nil, "run", "-c", e.cfg, "-o", out, in)
	if res.code != exitBadInput {
		t.Fatalf("invalid file: exit %d, want 2\n%s", res.code, res.stderr)
	}
	if rows := readCSV(t, filepath.Join(out, "report.csv")); len(rows) != 2 || rows[1]["outcome"] != "invalid" {
		t.Fatalf("the refused run's report: %v", rows)
	}
	res = runBinary(t, nil, "run", "-c", e.cfg, "-o", out, in, "--resume")
	if res.code != exitBadInput || !strings.Contains(res.stderr, "refused for invalid rows") {
		t.Errorf("--resume of a refused run: exit %d, want 2 saying why\n%s", res.code, res.stderr)
	}

	if err := os.WriteFile(in, []byte(opsCSV("shop,e-1,disable")), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runBinary(t, nil, "run", "-c", e.cfg, "-o", out, in)
	if res.code != exitOK {
		t.Fatalf("the fixed file into the same -o: exit %d, want 0\n%s", res.code, res.stderr)
	}
	if rows := readCSV(t, filepath.Join(out, "report.csv")); len(rows) != 1 || rows[0]["outcome"] != "applied" {
		t.Errorf("the new run's report: %v", rows)
	}
	if rows := readCSV(t, filepath.Join(out, "invalid", "report.csv")); len(rows) != 2 || rows[1]["outcome"] != "invalid" {
		t.Errorf("invalid/report.csv: %v", rows)
	}
	if sum := readSummary(t, filepath.Join(out, "invalid")); sum["exit_code"] != 2.0 {
		t.Errorf("invalid/summary.json exit_code %v, want 2", sum["exit_code"])
	}
	if n := e.fakes.epixel.Writes("e-1"); n != 1 {
		t.Errorf("e-1 written %d times, want 1", n)
	}
}
