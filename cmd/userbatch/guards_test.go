package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// kiiUsers seeds n kii users, the first inState of them disabled already,
// and returns a file disabling all of them.
func (e *e2e) kiiUsers(n, inState int) (string, []string) {
	users := make([]string, n)
	rows := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("k%05d", i)
		e.fakes.kii.AddUser(users[i], kiitest.User{Disabled: i < inState})
		rows[i] = "apps," + users[i] + ",disable"
	}
	return e.write(fmt.Sprintf("kii-%d-%d.csv", n, inState), opsCSV(rows...)), users
}

func (e *e2e) kiiWrites(users []string) int {
	n := 0
	for _, u := range users {
		n += e.fakes.kii.Writes(u)
	}
	return n
}

// TestMaxChangesHolds: --max-changes 10 over 100 changing rows holds the
// run: exit 4, not one state-changing request, every changing row skipped
// "held", and the commands to go on printed. The same command with the
// limit raised then runs in the same directory.
func TestMaxChangesHolds(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	rows := many(100, "shop,e%03d,disable")
	for i := range rows {
		e.fakes.epixel.AddUser(fmt.Sprintf("e%03d", i), epixeltest.User{Role: "Customer"})
	}
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--max-changes", "10")
	if res.code != exitHeld {
		t.Fatalf("exit %d, want 4\n%s", res.code, res.stderr)
	}
	if n := e.fakes.epixel.Requests(); n != 0 {
		t.Fatalf("a held run sent %d requests", n)
	}
	for _, want := range []string{"100 rows would change, more than --max-changes 10", "--max-changes 100", "userbatch plan -c"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if len(report) != 100 || report[0]["outcome"] != "skipped" || !strings.HasPrefix(report[0]["detail"], "held: ") {
		t.Fatalf("held report: %d rows, first %v", len(report), report[0])
	}
	if sum := readSummary(t, out); sum["exit_code"] != float64(exitHeld) {
		t.Errorf("summary exit_code %v, want 4", sum["exit_code"])
	}
	// Raised, in the same directory: the held report is set aside.
	if res := e.run("run", "-c", e.cfg, "-o", out, in, "--max-changes", "100"); res.code != exitOK {
		t.Fatalf("raised: exit %d\n%s", res.code, res.stderr)
	}
	if u, _ := e.fakes.epixel.User("e042"); !u.Blocked {
		t.Error("the raised run did not apply")
	}
	if _, err := os.Stat(filepath.Join(out, "held", "report.csv")); err != nil {
		t.Errorf("the held report was not set aside: %v", err)
	}
}

// TestMaxChangesPerTarget: a target's max_changes in targets.yaml holds
// the run too, naming the target.
func TestMaxChangesPerTarget(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(30, 0)
	cfg := e.write("limited.yaml", strings.Replace(e.fakes.targetsYAML(e.srv.URL, 1000),
		"    app_id: "+fakeKiiApp+"\n", "    app_id: "+fakeKiiApp+"\n    max_changes: 5\n", 1))
	res := e.run("run", "-c", cfg, "-o", filepath.Join(e.dir, "r"), in)
	if res.code != exitHeld || !strings.Contains(res.stderr, "30 rows would change on target apps, more than its max_changes 5") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 0 {
		t.Errorf("%d writes reached kii", n)
	}
}

// TestMaxChangesCountsAfterReading: 10,000 readable rows of which 9,990 are
// in state already count 10 changes: --max-changes 20 lets the run go, and
// only the 10 are written.
func TestMaxChangesCountsAfterReading(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(10000, 9990)
	cfg := e.write("fast.yaml", e.fakes.targetsYAML(e.srv.URL, 100000))
	res := e.run("run", "-c", cfg, "-o", filepath.Join(e.dir, "r"), in, "--max-changes", "20")
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 10 {
		t.Errorf("%d writes, want 10", n)
	}
}

// TestPlanApplyDrift: plan, one user changed behind the plan's back, apply:
// that row ends skipped "drifted", unsent, and every other row as planned.
// A changed input or config is refused with nothing sent.
func TestPlanApplyDrift(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(20, 5)
	planDir := filepath.Join(e.dir, "plan")
	if res := e.run("plan", "-c", e.cfg, "-o", planDir, in); res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 0 {
		t.Fatalf("plan sent %d writes", n)
	}
	plan := readCSV(t, filepath.Join(planDir, "plan.csv"))
	if len(plan) != 20 || plan[0]["change"] != "no change" || plan[10]["change"] != "would change" {
		t.Fatalf("plan.csv: %d rows, %v / %v", len(plan), plan[0], plan[10])
	}
	e.fakes.kii.AddUser(users[10], kiitest.User{Disabled: true}) // someone else did it
	out := filepath.Join(e.dir, "applied")
	res := e.run("apply", "-c", e.cfg, "-o", out, planDir)
	if res.code != exitIncomplete {
		t.Fatalf("apply: exit %d, want 1 (one row drifted)\n%s", res.code, res.stderr)
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	for i, r := range report {
		want := "applied"
		switch {
		case i < 5:
			want = "already"
		case i == 10:
			want = "skipped"
		}
		if r["outcome"] != want {
			t.Errorf("row %d (%s): %s %q, want %s", i, r["user"], r["outcome"], r["detail"], want)
		}
	}
	if d := report[10]["detail"]; !strings.HasPrefix(d, "drifted: planned would change") {
		t.Errorf("drift detail %q", d)
	}
	if n := e.fakes.kii.Writes(users[10]); n != 0 {
		t.Errorf("the drifted user was written %d times", n)
	}
	if n := e.kiiWrites(users); n != 14 {
		t.Errorf("%d writes, want 14", n)
	}

	// A changed input, or config: refused, nothing sent.
	writes := e.kiiWrites(users)
	moved := e.write("moved.yaml", strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 1000), "/kii", "/kii/v2"))
	if res := e.run("apply", "-c", moved, "-o", filepath.Join(e.dir, "a3"), planDir); res.code != exitBadInput || !strings.Contains(res.stderr, "config's targets changed") {
		t.Errorf("changed config: exit %d\n%s", res.code, res.stderr)
	}
	if err := os.WriteFile(in, []byte(opsCSV("apps,"+users[0]+",enable")), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := e.run("apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "a2"), planDir); res.code != exitBadInput || !strings.Contains(res.stderr, "input file changed") {
		t.Errorf("changed input: exit %d\n%s", res.code, res.stderr)
	}
	if e.kiiWrites(users) != writes {
		t.Error("a refused apply sent writes")
	}
}

// TestCanary: a canary whose rows do not take stops the run, exit 3,
// having sent only the canary; a good canary lets the run finish.
func TestCanary(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	rows := []string{"shop,ghost-1,disable", "shop,ghost-2,disable"}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("e%02d", i)
		e.fakes.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
		rows = append(rows, "shop,"+id+",disable")
	}
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--canary", "3")
	if res.code != exitStopped || !strings.Contains(res.stderr, "canary") {
		t.Fatalf("exit %d, want 3\n%s", res.code, res.stderr)
	}
	sent := 0
	for i := 0; i < 20; i++ {
		sent += e.fakes.epixel.Writes(fmt.Sprintf("e%02d", i))
	}
	if sent != 1 {
		t.Errorf("%d users written after a failed canary of 3 (2 ghosts + 1), want 1", sent)
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if r := report[5]; r["outcome"] != "skipped" || !strings.Contains(r["detail"], "canary failed") {
		t.Errorf("row after the canary: %s %q", r["outcome"], r["detail"])
	}

	// A good canary: the same file without the ghosts.
	good := e.write("good.csv", opsCSV(rows[2:]...))
	if res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "good"), good, "--canary", "3"); res.code != exitOK {
		t.Fatalf("good canary: exit %d\n%s", res.code, res.stderr)
	}
	for i := 0; i < 20; i++ {
		if u, _ := e.fakes.epixel.User(fmt.Sprintf("e%02d", i)); !u.Blocked {
			t.Errorf("e%02d not blocked after a good canary", i)
		}
	}
}
