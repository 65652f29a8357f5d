package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

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
	faults := []*fakehttp.Injector{&e.fakes.epixel.Faults, &e.fakes.clearsquare.Faults, &e.fakes.kii.Faults}
	for _, in := range faults {
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
		// Kill points spread over the run by its progress, not by the
		// clock (a loaded machine slows the binary, not the clock): at the
		// 1st, 9th, ... 89th request this process sends, in flight.
		var current atomic.Pointer[process]
		e.serve(&counter{next: e.fakes.handler(), n: int64(1 + 8*i), fn: func() {
			if p := current.Load(); p != nil {
				_ = p.cmd.Process.Kill()
			}
		}})
		p := e.start(args...)
		current.Store(p)
		if code := p.wait(); code == -1 {
			kills++
		} else {
			t.Logf("run %d finished before its kill (exit %d)", i, code)
		}
	}
	if kills < 10 {
		t.Fatalf("only %d runs were killed mid-way; the run is too short for this test", kills)
	}
	e.serve(e.fakes.handler())
	for _, f := range faults {
		f.SetLatency(0) // the kills are over: the rest of the run need not crawl
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

// TestResumeRefusals: a journal is never overwritten, and --resume refuses a
// different input or a config that points elsewhere.
func TestResumeRefusals(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in); res.code != exitIncomplete {
		t.Fatalf("first run: exit %d\n%s", res.code, res.stderr)
	}
	cases := []struct {
		name, cfg, in string
		resume        bool
		want          string
	}{
		{"no --resume", e.cfg, in, false, "holds a run already"},
		{"other input", e.cfg, e.write("other.csv", allVendorsCSV+"shop,e-new,disable,,,,T18\n"), true, "not the one this journal was started with"},
		{"other base_url", e.write("moved.yaml", strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 1000), "/kii", "/kii/v2")), in, true, "config changed"},
		{"other targets", e.write("fewer.yaml", "targets:\n  shop:\n    vendor: epixel\n    base_url: "+e.srv.URL+"/epixel/api/v2\n    apikey: a\n    token: b\n"), in, true, "targets changed"},
		{"no journal", e.cfg, in, true, "nothing to resume"},
	}
	for _, c := range cases {
		dir := out
		if c.name == "no journal" {
			dir = filepath.Join(e.dir, "empty")
		}
		args := []string{"run", "-c", c.cfg, "-o", dir, c.in}
		if c.resume {
			args = append(args, "--resume")
		}
		requests := e.fakes.epixel.Requests()
		res := e.run(args...)
		if res.code != exitBadInput || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, res.code, res.stderr, c.want)
		}
		if e.fakes.epixel.Requests() != requests {
			t.Errorf("%s: a refused run sent requests", c.name)
		}
	}
	// The same input and config resume fine, and send nothing new.
	writes := e.fakes.epixel.Writes("e-disable")
	if res := e.run("run", "-c", e.cfg, "-o", out, in, "--resume"); res.code != exitIncomplete {
		t.Errorf("resume of a finished run: exit %d\n%s", res.code, res.stderr)
	}
	if e.fakes.epixel.Writes("e-disable") != writes || e.fakes.clearsquare.Writes("c-toggle") != 1 {
		t.Errorf("resuming a finished run sent settled rows again")
	}
}

// hiddenTemps lists the temporary files in dir (".report.csv.123.partial").
func hiddenTemps(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, ".*.partial"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// killWhileWriting starts the binary and SIGKILLs it as soon as a report
// file being written (pattern, in dir) appears: the directory is read on a
// fast ticker until a deadline. It fails the test unless the kill landed
// while the file was still being written.
func killWhileWriting(t *testing.T, e *e2e, dir, pattern string, args ...string) {
	t.Helper()
	p := e.start(args...)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for found := false; !found; {
		select {
		case <-tick.C:
			matches, _ := filepath.Glob(filepath.Join(dir, pattern))
			found = len(matches) > 0
		case <-deadline:
			_ = p.cmd.Process.Kill()
			p.wait()
			t.Fatalf("no %s appeared in %s\n%s", pattern, dir, p.stderr.String())
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != -1 {
		t.Fatalf("the process ended (exit %d) before the kill: make the report larger\n%s", code, p.stderr.String())
	}
	if len(hiddenTemps(t, dir)) == 0 {
		t.Fatalf("the kill landed after the report was written: make the report larger")
	}
}

// bigInput is a file of n epixel rows with a passthrough column: its dry
// run sends nothing and its report takes a while to write.
func bigInput(e *e2e, n int) string {
	var b strings.Builder
	b.WriteString("target,user,action,ticket\n")
	for i := range n {
		fmt.Fprintf(&b, "shop,user-%06d,disable,ticket %d of tonight's leavers\n", i, i)
	}
	return e.write("big.csv", b.String())
}

// TestResumeRemovesWhatAKilledProcessLeft: a process SIGKILLed while it
// writes its report leaves temporary files full of user ids; the resume
// removes them and writes the report. A merge killed while writing, and
// run again into the same -o, does the same.
func TestResumeRemovesWhatAKilledProcessLeft(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	const n = 20000 // enough that writing the report takes longer than the kill
	in := bigInput(e, n)
	out := filepath.Join(e.dir, "report")
	killWhileWriting(t, e, out, ".report.csv.*.partial", "run", "-c", e.cfg, "-o", out, "--dry-run", in, "--log-format", "json")
	left := hiddenTemps(t, out)
	res := runBinary(t, nil, "run", "-c", e.cfg, "-o", out, "--dry-run", "--resume", in, "--log-format", "json")
	if res.code != exitOK {
		t.Fatalf("--resume: exit %d\n%s", res.code, res.stderr)
	}
	if got := hiddenTemps(t, out); len(got) != 0 {
		t.Errorf("after --resume the killed process's files are still there: %v (were %v)", got, left)
	}
	if !strings.Contains(res.stderr, "removed the temporary files") {
		t.Errorf("the resume does not say it removed %v:\n%s", left, res.stderr)
	}
	if rows := readCSV(t, filepath.Join(out, "report.csv")); len(rows) != n {
		t.Errorf("report.csv after --resume: %d rows, want %d", len(rows), n)
	}

	var shards []string
	for k := range 2 {
		dir := filepath.Join(e.dir, fmt.Sprintf("shard-%d", k))
		res := runBinary(t, nil, "run", "-c", e.cfg, "-o", dir, "--dry-run", "--shard", fmt.Sprintf("%d/2", k), in, "--log-format", "json")
		if res.code != exitOK {
			t.Fatalf("shard %d: exit %d\n%s", k, res.code, res.stderr)
		}
		shards = append(shards, dir)
	}
	merged := filepath.Join(e.dir, "merged")
	if err := os.Mkdir(merged, 0o700); err != nil {
		t.Fatal(err)
	}
	killWhileWriting(t, e, merged, ".report.csv.*.partial", append([]string{"report", "merge", "-o", merged}, shards...)...)
	res = runBinary(t, nil, append([]string{"report", "merge", "--log-format", "json", "-o", merged}, shards...)...)
	if res.code != exitOK {
		t.Fatalf("merge again: exit %d\n%s", res.code, res.stderr)
	}
	if got := hiddenTemps(t, merged); len(got) != 0 {
		t.Errorf("after the second merge the killed merge's files are still there: %v", got)
	}
	if rows := readCSV(t, filepath.Join(merged, "report.csv")); len(rows) != n {
		t.Errorf("merged report.csv: %d rows, want %d", len(rows), n)
	}
}

// TestFailedCSVRerunTogglesNobodyTwice: toggles whose request may have
// arrived end unknown in check.csv, not failed.csv; re-running failed.csv
// as written sends no toggle again.
func TestFailedCSVRerunTogglesNobodyTwice(t *testing.T) {
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

// TestReadmeDryRunThenApply: the README's flow, a dry run then the
// same command without --dry-run, applies the changes and keeps the dry
// run's report in report/dry-run/; --resume after only a dry run is refused
// saying so, moving and sending nothing.
func TestReadmeDryRunThenApply(t *testing.T) {
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

// TestResumedSummaryCoversWholeRun: a run stopped by SIGTERM and
// resumed ends with a summary.json whose started_at is the first process's
// start, processes 2, and a throughput measured over the whole run.
func TestResumedSummaryCoversWholeRun(t *testing.T) {
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
