package main

// Operator-level tests for issue 7: each promise where the parts meet
// (config → pipeline, process ↔ process, report → input), asserted through
// runMain or the built binary against the fake vendors on loopback, from
// what reached the fakes and what the report says.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
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

// seamWithProtected adds a protected list (YAML lines, indented for a
// target's settings) to target name of a fakes targets.yaml.
func seamWithProtected(cfg, name, lines string) string {
	head := "  " + name + ":\n"
	if !strings.Contains(cfg, head) {
		panic("no target " + name)
	}
	return strings.Replace(cfg, head, head+lines, 1)
}

// TestSeamsProtectedUsers: `protected:` in targets.yaml (exact ids and
// globs) reaches the pipeline: disable, downgrade and toggle of a protected
// user end skipped with no request to the vendor, in a dry run too, while
// an enable of a protected user and everyone else's rows still run.
func TestSeamsProtectedUsers(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	hits := &seamHits{next: e.fakes.handler()}
	e.serve(hits)
	f := e.fakes
	f.epixel.AddUser("boss-1", epixeltest.User{Role: "Customer"})
	f.epixel.AddUser("svc-mail", epixeltest.User{Role: "Member"})
	f.epixel.AddUser("svc-back", epixeltest.User{Role: "Customer", Blocked: true})
	f.epixel.AddUser("xsvc-1", epixeltest.User{Role: "Customer"})
	f.epixel.AddUser("u-plain", epixeltest.User{Role: "Customer"})
	f.clearsquare.AddUser("svc-ops", clearsquaretest.User{Active: true})
	f.clearsquare.AddUser("c-plain", clearsquaretest.User{Active: true})
	f.kii.AddUser("boss-1", kiitest.User{})
	f.kii.AddUser("boss-2", kiitest.User{Disabled: true})
	f.kii.AddUser("svc-kii", kiitest.User{})
	cfg := f.targetsYAML(e.srv.URL, 1000)
	cfg = seamWithProtected(cfg, "shop", "    protected: [boss-1, \"svc-*\"]\n")
	cfg = seamWithProtected(cfg, "admin", "    protected:\n      - \"svc-*\"\n")
	cfg = seamWithProtected(cfg, "apps", "    protected: [boss-1, boss-2]\n")
	cfgPath := e.write("protected.yaml", cfg)
	in := e.write("ops.csv", `target,user,action,role
shop,boss-1,disable,
shop,svc-mail,downgrade-role,Customer
shop,svc-back,enable,
shop,xsvc-1,disable,
shop,u-plain,disable,
admin,svc-ops,toggle-status,
admin,c-plain,toggle-status,
apps,boss-1,disable,
apps,boss-2,enable,
apps,svc-kii,disable,
`)
	protected := []struct{ prefix, user string }{
		{"/epixel", "boss-1"}, {"/epixel", "svc-mail"}, {"/clearsquare", "svc-ops"}, {"/kii", "boss-1"},
	}
	assertUntouched := func(when string) {
		t.Helper()
		for _, p := range protected {
			if n := hits.about(p.prefix, p.user); n != 0 {
				t.Errorf("%s: %d requests about protected %s reached %s", when, n, p.user, p.prefix)
			}
		}
	}
	assertSkipped := func(when string, rows map[string]map[string]string, keys ...string) {
		t.Helper()
		for _, k := range keys {
			r := rows[k]
			if r["outcome"] != "skipped" || !strings.Contains(r["detail"], "protected") {
				t.Errorf("%s: %s: outcome %q detail %q, want skipped as protected", when, k, r["outcome"], r["detail"])
			}
		}
	}
	protectedKeys := []string{"shop/boss-1", "shop/svc-mail", "admin/svc-ops", "apps/boss-1"}

	plan := filepath.Join(e.dir, "plan")
	res := e.run("run", "-c", cfgPath, "-o", plan, "--dry-run", in)
	if res.code != exitIncomplete { // skipped rows make exit 1
		t.Fatalf("dry run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows := seamRowsByKey(readCSV(t, filepath.Join(plan, "report.csv")))
	assertSkipped("dry run", rows, protectedKeys...)
	for _, k := range []string{"shop/svc-back", "shop/xsvc-1", "shop/u-plain", "admin/c-plain", "apps/boss-2", "apps/svc-kii"} {
		if rows[k]["outcome"] != "planned" {
			t.Errorf("dry run: %s: %q %q, want planned", k, rows[k]["outcome"], rows[k]["detail"])
		}
	}
	assertUntouched("dry run")

	out := filepath.Join(e.dir, "report")
	res = e.run("run", "-c", cfgPath, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows = seamRowsByKey(readCSV(t, filepath.Join(out, "report.csv")))
	assertSkipped("run", rows, protectedKeys...)
	for _, k := range []string{"shop/svc-back", "shop/xsvc-1", "shop/u-plain", "admin/c-plain", "apps/boss-2", "apps/svc-kii"} {
		if rows[k]["outcome"] != "applied" {
			t.Errorf("run: %s: %q %q %q, want applied", k, rows[k]["outcome"], rows[k]["detail"], rows[k]["message"])
		}
	}
	assertUntouched("run")
	for id, want := range map[string]epixeltest.User{
		"boss-1": {Role: "Customer"}, "svc-mail": {Role: "Member"}, "svc-back": {Role: "Customer"},
		"xsvc-1": {Role: "Customer", Blocked: true}, "u-plain": {Role: "Customer", Blocked: true},
	} {
		if got, _ := f.epixel.User(id); got.Blocked != want.Blocked || got.Role != want.Role {
			t.Errorf("epixel %s: %+v, want %+v", id, got, want)
		}
	}
	if f.epixel.Writes("boss-1")+f.epixel.Writes("svc-mail") != 0 || f.epixel.Writes("svc-back") != 1 {
		t.Errorf("epixel writes: boss-1 %d, svc-mail %d, svc-back (enable) %d", f.epixel.Writes("boss-1"),
			f.epixel.Writes("svc-mail"), f.epixel.Writes("svc-back"))
	}
	if f.clearsquare.Writes("svc-ops") != 0 || f.clearsquare.Writes("c-plain") != 1 {
		t.Errorf("clearsquare writes: svc-ops %d, c-plain %d", f.clearsquare.Writes("svc-ops"), f.clearsquare.Writes("c-plain"))
	}
	if u, _ := f.kii.User("boss-1"); u.Disabled || f.kii.Writes("boss-1") != 0 {
		t.Errorf("kii boss-1 (protected): %+v, %d writes", u, f.kii.Writes("boss-1"))
	}
	if u, _ := f.kii.User("boss-2"); u.Disabled {
		t.Errorf("kii boss-2: an enable of a protected user did not run")
	}
	if u, _ := f.kii.User("svc-kii"); !u.Disabled {
		t.Errorf("kii svc-kii: another target's glob protected it")
	}
}

func seamRowsByKey(rows []map[string]string) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, r := range rows {
		m[r["target"]+"/"+r["user"]] = r
	}
	return m
}

// seamLimit answers 429 (Retry-After: 1) to any request beyond limit in
// the last second, as a vendor enforcing its rate does, and keeps every
// arrival time.
type seamLimit struct {
	next     http.Handler
	limit    int
	mu       sync.Mutex
	arrivals []time.Time
	refused  int
}

func (l *seamLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.admit(time.Now()) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	l.next.ServeHTTP(w, r)
}

func (l *seamLimit) admit(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.arrivals = append(l.arrivals, now)
	if seamInLastSecond(l.arrivals, now) > l.limit {
		l.refused++
		return false
	}
	return true
}

func seamInLastSecond(ts []time.Time, now time.Time) int {
	n := 0
	for i := len(ts) - 1; i >= 0 && now.Sub(ts[i]) < time.Second; i-- {
		n++
	}
	return n
}

// seamBusiestSecond is the most arrivals any one-second window holds.
func seamBusiestSecond(ts []time.Time) int {
	ts = append([]time.Time(nil), ts...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	most, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// seamShardUsers makes per users for each of n shards of target.
func seamShardUsers(target string, n, per int) []string {
	var users []string
	count := make([]int, n)
	for i := 0; len(users) < n*per; i++ {
		u := fmt.Sprintf("r-%04d", i)
		for k := 0; k < n; k++ {
			if (batch.Shard{Index: k, Count: n}).Includes(target, u) && count[k] < per {
				count[k]++
				users = append(users, u)
			}
		}
	}
	return users
}

// TestSeamsShardsShareTheRate: three shard processes of one file, started
// together against a target of rate R, split R between them: a vendor
// enforcing R (+ N of slack) in any second never has to answer 429.
func TestSeamsShardsShareTheRate(t *testing.T) {
	t.Parallel()
	const (
		rate     = 10
		slack    = 3
		shards   = 3
		perShard = 18
	)
	e := newE2E(t)
	lim := &seamLimit{next: e.fakes.handler(), limit: rate + slack}
	e.serve(lim)
	users := seamShardUsers("shop", shards, perShard)
	var rows []string
	for _, u := range users {
		e.fakes.epixel.AddUser(u, epixeltest.User{Role: "Customer"})
		rows = append(rows, "shop,"+u+",disable")
	}
	cfg := e.write("rated.yaml", fmt.Sprintf("targets:\n  shop:\n    vendor: epixel\n    base_url: %s/epixel/api/v2\n"+
		"    apikey: %s\n    token: %s\n    rate: %d\n    burst: 1\n    concurrency: 4\n    timeout: 10s\n",
		e.srv.URL, e.fakes.creds.epixelKey, e.fakes.creds.epixelToken, rate))
	in := e.write("ops.csv", opsCSV(rows...))
	var ps []*process
	for k := 0; k < shards; k++ {
		ps = append(ps, e.seamStart("run", "-c", cfg, "-o", filepath.Join(e.dir, fmt.Sprintf("shard-%d", k)),
			"--shard", fmt.Sprintf("%d/%d", k, shards), in))
	}
	for k, p := range ps {
		if code := seamWaitWithin(t, p, 2*time.Minute); code != exitOK {
			t.Errorf("shard %d: exit %d\n%s", k, code, p.stderr.String())
		}
	}
	lim.mu.Lock()
	refused, arrivals := lim.refused, append([]time.Time(nil), lim.arrivals...)
	lim.mu.Unlock()
	busiest := seamBusiestSecond(arrivals)
	t.Logf("%d requests over %v, busiest second %d, refused %d", len(arrivals),
		arrivals[len(arrivals)-1].Sub(arrivals[0]).Round(time.Millisecond), busiest, refused)
	if refused != 0 {
		t.Errorf("the vendor answered 429 %d times: the shards together exceeded rate %d + %d", refused, rate, slack)
	}
	if busiest > rate+slack {
		t.Errorf("one second saw %d requests, want at most %d", busiest, rate+slack)
	}
	for _, u := range users {
		if n := e.fakes.epixel.Writes(u); n != 1 {
			t.Errorf("%s written %d times, want 1", u, n)
		}
	}
}

// TestSeamsLockRefusesSecondProcess: a --resume started while the first
// process is mid-run on the same report directory exits 2 at once naming
// the holder, sends nothing, and leaves the live journal alone; the first
// process then finishes normally, each user written once.
func TestSeamsLockRefusesSecondProcess(t *testing.T) {
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

// TestSeamsFailedCSVRerunTogglesNobodyTwice: toggles whose request may have
// arrived end unknown in check.csv, not failed.csv; re-running failed.csv
// as written sends no toggle again.
func TestSeamsFailedCSVRerunTogglesNobodyTwice(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	f := e.fakes
	toggles := []string{"c-ok1", "c-dropped", "c-reset", "c-503", "c-ok2"}
	for _, id := range toggles {
		f.clearsquare.AddUser(id, clearsquaretest.User{Active: true})
	}
	// The answer is lost after the vendor applied the toggle; the 503 and
	// the reset give no proof either way.
	f.clearsquare.Faults.Add(fakehttp.Rule{User: "c-dropped", Fault: fakehttp.Fault{DropAfter: true}})
	f.clearsquare.Faults.Add(fakehttp.Rule{User: "c-503", Times: 1, Fault: fakehttp.Fault{Status: 503}})
	f.clearsquare.Faults.Add(fakehttp.Rule{User: "c-reset", Times: 1, Fault: fakehttp.Fault{Reset: true}})
	f.epixel.AddUser("e-ok", epixeltest.User{Role: "Customer"})
	f.kii.AddUser("k-ok", kiitest.User{})
	in := e.write("ops.csv", opsCSV(
		"admin,c-ok1,toggle-status", "admin,c-dropped,toggle-status", "shop,e-ok,disable",
		"shop,e-missing,disable", "admin,c-reset,toggle-status", "apps,k-missing,disable",
		"admin,c-503,toggle-status", "apps,k-ok,disable", "admin,c-ok2,toggle-status"))
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows := seamRowsByKey(readCSV(t, filepath.Join(out, "report.csv")))
	for k, want := range map[string]string{
		"admin/c-ok1": "applied", "admin/c-dropped": "unknown", "admin/c-reset": "unknown", "admin/c-503": "unknown",
		"admin/c-ok2": "applied", "shop/e-ok": "applied", "shop/e-missing": "failed", "apps/k-missing": "failed", "apps/k-ok": "applied",
	} {
		if rows[k]["outcome"] != want {
			t.Errorf("%s: %q (%s), want %s", k, rows[k]["outcome"], rows[k]["message"], want)
		}
	}
	if f.clearsquare.Writes("c-dropped") != 1 {
		t.Fatalf("c-dropped: the vendor applied it %d times; the fault did not fire as meant", f.clearsquare.Writes("c-dropped"))
	}
	check := readCSV(t, filepath.Join(out, "check.csv"))
	var checked []string
	for _, r := range check {
		checked = append(checked, r["user"])
		if !strings.Contains(r["reason"], "not safe to send twice") {
			t.Errorf("check.csv %s: reason %q", r["user"], r["reason"])
		}
	}
	if got := strings.Join(checked, ","); got != "c-dropped,c-reset,c-503" {
		t.Errorf("check.csv users %q, want c-dropped,c-reset,c-503", got)
	}
	failedPath := filepath.Join(out, "failed.csv")
	var failedUsers []string
	for _, r := range readCSV(t, failedPath) {
		failedUsers = append(failedUsers, r["target"]+"/"+r["user"])
	}
	if got := strings.Join(failedUsers, ","); got != "shop/e-missing,apps/k-missing" {
		t.Errorf("failed.csv rows %q, want shop/e-missing,apps/k-missing (the unknown toggles belong in check.csv)", got)
	}

	// The operator fixes what failed (the users now exist) and re-runs
	// failed.csv as written.
	f.epixel.AddUser("e-missing", epixeltest.User{Role: "Customer"})
	f.kii.AddUser("k-missing", kiitest.User{})
	requests := f.clearsquare.Requests()
	res = e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "rerun"), failedPath)
	if res.code != exitOK {
		t.Errorf("re-run of failed.csv: exit %d, want 0\n%s", res.code, res.stderr)
	}
	if got := f.clearsquare.Requests(); got != requests {
		t.Errorf("re-running failed.csv sent %d requests to the toggle-only vendor", got-requests)
	}
	for _, id := range toggles {
		if n := f.clearsquare.Writes(id); n > 1 {
			t.Errorf("%s toggled %d times", id, n)
		}
	}
	if u, _ := f.epixel.User("e-missing"); !u.Blocked {
		t.Errorf("e-missing not disabled by the re-run")
	}
	if u, _ := f.kii.User("k-missing"); !u.Disabled {
		t.Errorf("k-missing not disabled by the re-run")
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

// TestSeamsMergeRefusals: `report merge` exits 2 and writes nothing for a
// shard missing, a shard given twice, shards of two inputs, and an -o that
// holds files, whose content stays as it was.
func TestSeamsMergeRefusals(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	dirs := e.seamShardReports(filepath.Join(e.dir, "shard"), e.write("ops.csv", allVendorsCSV))
	other := e.seamShardReports(filepath.Join(e.dir, "other"), e.write("other.csv", allVendorsCSV+"shop,e-new,disable,,,,T18\n"))
	copyOf0 := filepath.Join(e.dir, "copy-of-0")
	seamCopyDir(t, dirs[0], copyOf0)
	shardsBefore := map[string]map[string]string{}
	for _, d := range append(append([]string{}, dirs...), other...) {
		shardsBefore[d] = seamSnapshot(t, d)
	}

	cases := []struct {
		name string
		dirs []string
		says string
	}{
		{"a shard missing", dirs[:2], "missing"},
		{"a shard copied and given twice", []string{dirs[0], dirs[1], dirs[2], copyOf0}, "given twice"},
		{"shards of two inputs", []string{dirs[0], dirs[1], other[2]}, "different input"},
	}
	for _, c := range cases {
		out := filepath.Join(e.dir, "merged-"+strings.ReplaceAll(c.name, " ", "-"))
		res := e.run(append([]string{"report", "merge", "-o", out}, c.dirs...)...)
		if res.code != exitBadInput || !strings.Contains(res.stderr, c.says) {
			t.Errorf("%s: exit %d, stderr %q; want 2 saying %q", c.name, res.code, strings.TrimSpace(res.stderr), c.says)
		}
		if snap := seamSnapshot(t, out); len(snap) != 0 {
			t.Errorf("%s: a refused merge wrote %d files into -o", c.name, len(snap))
		}
	}

	full := filepath.Join(e.dir, "full")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	undo := "target,user,action\nshop,e-disable,enable\n"
	if err := os.WriteFile(filepath.Join(full, "undo.csv"), []byte(undo), 0o600); err != nil {
		t.Fatal(err)
	}
	before := seamSnapshot(t, full)
	res := e.run(append([]string{"report", "merge", "-o", full}, dirs...)...)
	if res.code != exitBadInput || !strings.Contains(res.stderr, "not empty") {
		t.Errorf("-o holding undo.csv: exit %d, stderr %q; want 2 saying not empty", res.code, strings.TrimSpace(res.stderr))
	}
	if after := seamSnapshot(t, full); !seamSameSnapshot(before, after) {
		t.Errorf("a refused merge changed the -o that held files: %v", after)
	}
	for d, snap := range shardsBefore {
		if !seamSameSnapshot(snap, seamSnapshot(t, d)) {
			t.Errorf("a merge changed shard directory %s", d)
		}
	}
	// The same shards, each once, into a new -o: merged (so the refusals
	// above were for the reasons named, not broken shards).
	res = e.run(append([]string{"report", "merge", "-o", filepath.Join(e.dir, "merged")}, dirs...)...)
	if res.code != exitOK {
		t.Fatalf("merge of the three shards: exit %d\n%s", res.code, res.stderr)
	}
	if n := len(readCSV(t, filepath.Join(e.dir, "merged", "report.csv"))); n != 17 {
		t.Errorf("merged report has %d rows, want 17", n)
	}
}

// TestSeamsMergeSameDirTwice: a shard directory typed twice on the command
// line is refused as a repeated shard, not blamed on another process.
func TestSeamsMergeSameDirTwice(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	dirs := e.seamShardReports(filepath.Join(e.dir, "shard"), e.write("ops.csv", allVendorsCSV))
	out := filepath.Join(e.dir, "merged")
	res := e.run("report", "merge", "-o", out, dirs[0], dirs[1], dirs[2], dirs[1])
	if res.code != exitBadInput {
		t.Errorf("exit %d, want 2", res.code)
	}
	if !strings.Contains(res.stderr, "given twice") || strings.Contains(res.stderr, "another userbatch process") {
		t.Errorf("stderr %q; want it to say the shard is given twice, not that another process holds it", strings.TrimSpace(res.stderr))
	}
	if snap := seamSnapshot(t, out); len(snap) != 0 {
		t.Errorf("a refused merge wrote %d files into -o", len(snap))
	}
}

// TestSeamsReportDirRules: a run refuses a directory holding files but no
// journal (exit 2, nothing sent, the file unchanged), and a run's report
// directory is 0700 with every file 0600.
func TestSeamsReportDirRules(t *testing.T) {
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

// TestSeamsReadmeDryRunThenApply: the README's flow, a dry run then the
// same command without --dry-run, applies the changes and keeps the dry
// run's report in report/dry-run/; --resume after only a dry run is refused
// saying so, moving and sending nothing.
func TestSeamsReadmeDryRunThenApply(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)

	plan := filepath.Join(e.dir, "plan")
	if res := e.run("run", "-c", e.cfg, "-o", plan, in, "--dry-run"); res.code != exitIncomplete {
		t.Fatalf("dry run: exit %d\n%s", res.code, res.stderr)
	}
	before, requests := seamSnapshot(t, plan), seamRequests(e)
	res := e.run("run", "-c", e.cfg, "-o", plan, in, "--resume")
	if res.code != exitBadInput || !strings.Contains(res.stderr, "dry run") {
		t.Errorf("--resume after a dry run: exit %d, stderr %q; want 2 saying it was a dry run", res.code, strings.TrimSpace(res.stderr))
	}
	if seamRequests(e) != requests || seamWrites(e) != 0 {
		t.Errorf("--resume after a dry run sent %d requests, %d writes", seamRequests(e)-requests, seamWrites(e))
	}
	if after := seamSnapshot(t, plan); !seamSameSnapshot(before, after) {
		t.Errorf("--resume after a dry run moved or changed files")
	}

	out := filepath.Join(e.dir, "report") + "/"
	if res := e.run("run", "-c", e.cfg, "-o", out, in, "--dry-run"); res.code != exitIncomplete {
		t.Fatalf("README dry run: exit %d\n%s", res.code, res.stderr)
	}
	dryReport := seamSnapshot(t, out)["report.csv"]
	res = e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitIncomplete { // some rows of allVendorsCSV fail on purpose
		t.Fatalf("README run after the dry run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	e.assertVendorState()
	aside := filepath.Join(out, "dry-run")
	if got, err := os.ReadFile(filepath.Join(aside, "report.csv")); err != nil || string(got) != dryReport {
		t.Errorf("the dry run's report.csv is not in %s unchanged (err %v)", aside, err)
	}
	planned := 0
	for _, r := range readCSV(t, filepath.Join(aside, "report.csv")) {
		if r["outcome"] == "planned" {
			planned++
		}
	}
	if planned == 0 {
		t.Errorf("dry-run/report.csv holds no planned row")
	}
	rows := rowsByUser(readCSV(t, filepath.Join(out, "report.csv")))
	for _, u := range []string{"e-disable", "c-toggle", "LOGIN_NAME:k-alice", "m-busy"} {
		if rows[u]["outcome"] != "applied" {
			t.Errorf("real report: %s %q, want applied", u, rows[u]["outcome"])
		}
	}
	if sum := readSummary(t, out); sum["dry_run"] != false {
		t.Errorf("the real run's summary says dry_run %v", sum["dry_run"])
	}
}

// TestSeamsInvalidFileSummaryExitCode: a file with invalid rows exits 2 and
// its summary.json says so.
func TestSeamsInvalidFileSummaryExitCode(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV+"shop,,disable,,,,T18\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
	}
	if n := seamRequests(e); n != 0 {
		t.Errorf("an invalid file sent %d requests", n)
	}
	if got := readSummary(t, out)["exit_code"]; got != float64(exitBadInput) {
		t.Errorf("summary.json exit_code %v, want %d (the process's)", got, exitBadInput)
	}
}

// TestSeamsResumedSummaryCoversWholeRun: a run stopped by SIGTERM and
// resumed ends with a summary.json whose started_at is the first process's
// start, processes 2, and a throughput measured over the whole run.
func TestSeamsResumedSummaryCoversWholeRun(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	gate := newSeamGate(t, e.fakes.handler())
	e.serve(gate)
	const n = 60
	for i := 0; i < n; i++ {
		e.fakes.epixel.AddUser(fmt.Sprintf("st-%02d", i), epixeltest.User{Role: "Customer"})
	}
	in := e.write("ops.csv", opsCSV(many(n, "shop,st-%02d,disable")...))
	out := filepath.Join(e.dir, "report")
	t0 := time.Now().UTC().Truncate(time.Second)
	first := e.seamStart("run", "-c", e.cfg, "-o", out, in, "--grace", "1h")
	gate.waitArrival(t, first)
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The held requests may finish once the stop is acknowledged: no new
	// row is dispatched after it.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(first.stderr.String(), "stopping: no new rows") {
		select {
		case <-deadline:
			t.Fatalf("the first process never acknowledged SIGTERM:\n%s", first.stderr.String())
		case <-tick.C: // polling what the process printed
		}
	}
	gate.open()
	if code := seamWaitWithin(t, first, time.Minute); code != exitStopped {
		t.Fatalf("first process: exit %d, want 3\n%s", code, first.stderr.String())
	}
	firstSum := readSummary(t, out)
	firstStart, err := time.Parse(time.RFC3339Nano, firstSum["started_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	if !firstStart.Before(resumedAt) || firstStart.Before(t0) {
		t.Fatalf("first summary's started_at %v is not within the first process (%v .. %v)", firstStart, t0, resumedAt)
	}
	second := e.seamStart("run", "-c", e.cfg, "-o", out, in, "--resume")
	if code := seamWaitWithin(t, second, time.Minute); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, second.stderr.String())
	}
	sum := readSummary(t, out)
	started, err := time.Parse(time.RFC3339Nano, sum["started_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	// The first process's summary and its journal take their clocks a
	// moment apart; what matters is the first process, not the resume.
	if gap := started.Sub(firstStart); gap < -10*time.Millisecond || gap > 10*time.Millisecond {
		t.Errorf("started_at %v after --resume, want the first process's %v", started, firstStart)
	}
	if !started.Before(resumedAt) {
		t.Errorf("started_at %v is after the resume started (%v)", started, resumedAt)
	}
	if got := sum["processes"]; got != float64(2) {
		t.Errorf("processes %v, want 2", got)
	}
	if ops := sum["ops_per_s"].(float64); !(ops > 0) || ops >= n/0.05 {
		t.Errorf("ops_per_s %v: not a rate over the whole run (%d rows)", ops, n)
	}
	if d := sum["duration_s"].(float64); d+0.01 < resumedAt.Sub(firstStart).Seconds() {
		t.Errorf("duration_s %v does not cover the first process (started %v before the resume)", d, resumedAt.Sub(firstStart))
	}
	if outcomes := sum["outcomes"].(map[string]any); outcomes["applied"] != float64(n) {
		t.Errorf("outcomes %v, want %d applied", outcomes, n)
	}
	for i := 0; i < n; i++ {
		if w := e.fakes.epixel.Writes(fmt.Sprintf("st-%02d", i)); w != 1 {
			t.Errorf("st-%02d written %d times, want 1", i, w)
		}
	}
}
