package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
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

// TestMaxChangesCountsAfterReading: 500 readable rows of which 490 are in
// state already count 10 changes: --max-changes 20, far below the rows,
// lets the run go, and only the 10 are written (README's example is 10,000
// rows; the count is the same rule at any size).
func TestMaxChangesCountsAfterReading(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(500, 490)
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

// seamWithProtected adds a protected list (YAML lines, indented for a
// target's settings) to target name of a fakes targets.yaml.
func seamWithProtected(cfg, name, lines string) string {
	head := "  " + name + ":\n"
	if !strings.Contains(cfg, head) {
		panic("no target " + name)
	}
	return strings.Replace(cfg, head, head+lines, 1)
}

// TestProtectedUsers: `protected:` in targets.yaml (exact ids and
// globs) reaches the pipeline: disable, downgrade and toggle of a protected
// user end skipped with no request to the vendor, in a dry run too, while
// an enable of a protected user and everyone else's rows still run.
func TestProtectedUsers(t *testing.T) {
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
