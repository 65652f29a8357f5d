package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
)

// TestApplyRefusesEditedPlan: a reviewer strikes a row from plan.csv, or
// edits plan.json; apply refuses (exit 2), sends nothing, and says how to
// leave rows out. The plan as written applies.
func TestApplyRefusesEditedPlan(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(6, 0)
	planDir := filepath.Join(e.dir, "plan")
	res := e.run("plan", "-c", e.cfg, "-o", planDir, in)
	if res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "to leave rows out, edit the input and run plan again") {
		t.Errorf("plan does not say how to leave rows out:\n%s", res.stdout)
	}
	planCSV := filepath.Join(planDir, "plan.csv")
	planJSON := filepath.Join(planDir, "plan.json")
	origCSV, err := os.ReadFile(planCSV)
	if err != nil {
		t.Fatal(err)
	}
	origJSON, err := os.ReadFile(planJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(origJSON), `"would_change": 6`) {
		t.Fatalf("plan.json does not hold would_change 6:\n%s", origJSON)
	}
	lines := strings.SplitAfter(string(origCSV), "\n")
	struck := strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), "")
	edits := map[string]struct{ path, content string }{
		"a row struck from plan.csv":  {planCSV, struck},
		"a count edited in plan.json": {planJSON, strings.Replace(string(origJSON), `"would_change": 6`, `"would_change": 5`, 1)},
	}
	for name, ed := range edits {
		if err := os.WriteFile(ed.path, []byte(ed.content), 0o600); err != nil {
			t.Fatal(err)
		}
		res := e.run("apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "a-"+strings.Fields(name)[1]), planDir)
		if res.code != exitBadInput {
			t.Errorf("%s: exit %d, want 2\n%s", name, res.code, res.stderr)
		}
		for _, want := range []string{"differs from what userbatch plan wrote", "remove them from the input file", "run userbatch plan again"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", name, want, res.stderr)
			}
		}
		if n := e.kiiWrites(users); n != 0 {
			t.Fatalf("%s: a refused apply sent %d writes", name, n)
		}
		_ = os.WriteFile(planCSV, origCSV, 0o600)
		_ = os.WriteFile(planJSON, origJSON, 0o600)
	}
	res = e.run("apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "applied"), planDir)
	if res.code != exitOK {
		t.Fatalf("the plan as written: exit %d\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 6 {
		t.Errorf("%d writes, want 6", n)
	}
}

// TestResumeAlreadyAfterKillGoesToCheck: two epixel role changes are in
// flight when the binary is SIGKILLed; one reached the vendor, one did not.
// On --resume both are sent again: the one the vendor now calls already
// done ends already, in check.csv with the reason and not in undo.csv
// (epixel cannot be read: the user may have held the role before the
// run); the other is applied and in undo.csv.
func TestResumeAlreadyAfterKillGoesToCheck(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-landed", epixeltest.User{Role: "Customer"})
	e.fakes.epixel.AddUser("e-lost", epixeltest.User{Role: "Customer"})
	arrived := make(chan string, 2)
	release := make(chan struct{})
	defer close(release)
	var hold atomic.Bool
	hold.Store(true)
	fakes := e.fakes.handler()
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hold.Load() || !strings.HasPrefix(r.URL.Path, "/epixel/") {
			fakes.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		user := "e-lost"
		if bytes.Contains(body, []byte("e-landed")) {
			user = "e-landed"
			fakes.ServeHTTP(httptest.NewRecorder(), r) // applied; the answer is lost
		}
		arrived <- user
		<-release
	}))
	in := e.write("ops.csv", "target,user,action,role\nshop,e-landed,upgrade-role,Member\nshop,e-lost,upgrade-role,Member\n")
	out := filepath.Join(e.dir, "report")
	p := e.start("run", "-c", e.cfg, "-o", out, in)
	for i := 0; i < 2; i++ {
		select {
		case <-arrived:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Fatalf("the writes never reached the vendor\n%s", p.stderr.String())
		}
	}
	_ = p.cmd.Process.Kill()
	p.wait()
	hold.Store(false)
	if u, _ := e.fakes.epixel.User("e-landed"); u.Role != "Member" {
		t.Fatalf("e-landed holds %q before the resume, want Member", u.Role)
	}

	res := e.run("run", "-c", e.cfg, "-o", out, in, "--resume")
	if res.code != exitOK {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if r := report[0]; r["outcome"] != "already" || !strings.Contains(r["detail"], "whether this run made the change is not known") {
		t.Errorf("e-landed: %s %q, want already, not known whether this run made it", r["outcome"], r["detail"])
	}
	if r := report[1]; r["outcome"] != "applied" {
		t.Errorf("e-lost: %s %q, want applied", r["outcome"], r["detail"])
	}
	check := readCSV(t, filepath.Join(out, "check.csv"))
	if len(check) != 1 || check[0]["user"] != "e-landed" ||
		!strings.HasPrefix(check[0]["reason"], "line 2: ") || !strings.Contains(check[0]["reason"], "not in undo.csv") {
		t.Errorf("check.csv: %v, want e-landed with why", check)
	}
	undo := readCSV(t, filepath.Join(out, "undo.csv"))
	if len(undo) != 1 || undo[0]["user"] != "e-lost" {
		t.Errorf("undo.csv: %v, want only e-lost", undo)
	}
	files, _ := readSummary(t, out)["file_rows"].(map[string]any)
	if files == nil || files["check.csv"] != float64(1) || files["undo.csv"] != float64(1) {
		t.Errorf("summary.json file_rows: %v, want check.csv 1 and undo.csv 1", readSummary(t, out)["file_rows"])
	}
}

// TestCanaryResumeAfterFailure: a canary that failed on a line stops the
// run (exit 3); --canary --resume judges the same canary rows from the
// journal and stops again, sending nothing new and naming the line; a
// resume without --canary goes on.
func TestCanaryResumeAfterFailure(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	rows := []string{"shop,ghost-1,disable"}
	var users []string
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("e%02d", i)
		e.fakes.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
		rows = append(rows, "shop,"+id+",disable")
		users = append(users, id)
	}
	writes := func() int {
		n := 0
		for _, u := range users {
			n += e.fakes.epixel.Writes(u)
		}
		return n
	}
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--canary", "2")
	if res.code != exitStopped {
		t.Fatalf("first run: exit %d, want 3\n%s", res.code, res.stderr)
	}
	if n := writes(); n != 1 {
		t.Fatalf("%d users written by a canary of 2 (a ghost and e00), want 1", n)
	}
	res = e.run("run", "-c", e.cfg, "-o", out, in, "--canary", "2", "--resume")
	if res.code != exitStopped {
		t.Fatalf("resume with --canary: exit %d, want 3\n%s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "canary passed") || !strings.Contains(res.stderr, "line 2 ended failed") {
		t.Errorf("resume with --canary does not name the failed line:\n%s", res.stderr)
	}
	if n := writes(); n != 1 {
		t.Errorf("resume after a failed canary sent %d more writes", n-1)
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if r := report[0]; r["outcome"] != "failed" {
		t.Errorf("the ghost: %s %q", r["outcome"], r["detail"])
	}
	if r := report[5]; r["outcome"] != "skipped" || !strings.Contains(r["detail"], "canary failed (line 2 ended failed") {
		t.Errorf("a row after the canary: %s %q", r["outcome"], r["detail"])
	}
	res = e.run("run", "-c", e.cfg, "-o", out, in, "--resume")
	if res.code != exitIncomplete {
		t.Fatalf("resume without --canary: exit %d, want 1 (the ghost failed)\n%s", res.code, res.stderr)
	}
	for _, u := range users {
		if n := e.fakes.epixel.Writes(u); n != 1 {
			t.Errorf("%s written %d times, want 1", u, n)
		}
	}
}
