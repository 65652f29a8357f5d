package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// ledgerFixture is a kii target with a SQLite ledger, and a run per call in
// a new report directory, as a nightly cron runs.
type ledgerFixture struct {
	*e2e
	cfg  string
	runs int
}

func newLedgerFixture(t *testing.T) *ledgerFixture {
	e := newE2E(t)
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: e.fakes.creds.kiiToken})
	e.serve(e.fakes.handler())
	cfg := e.write("ledger.yaml", e.fakes.targetsYAML(e.srv.URL, 1000)+"ledger: sqlite:"+filepath.Join(e.dir, "state", "ledger.db")+"\n")
	return &ledgerFixture{e2e: e, cfg: cfg}
}

// run runs one row (target apps) in a new directory and returns the row of
// its report.csv and the directory.
func (f *ledgerFixture) run(row string, args ...string) (map[string]string, string) {
	f.t.Helper()
	f.runs++
	out := filepath.Join(f.dir, fmt.Sprintf("run%d", f.runs))
	in := f.write(fmt.Sprintf("ops%d.csv", f.runs), opsCSV("apps,"+row))
	res := f.e2e.run(append([]string{"run", "-c", f.cfg, "-o", out, in}, args...)...)
	if res.code != exitOK {
		f.t.Fatalf("run %d (%s %v): exit %d\n%s", f.runs, row, args, res.code, res.stderr)
	}
	rows := readCSV(f.t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 {
		f.t.Fatalf("run %d: %d report rows, want 1", f.runs, len(rows))
	}
	return rows[0], out
}

func (f *ledgerFixture) expect(what string, row map[string]string, outcome, detail string) {
	f.t.Helper()
	if row["outcome"] != outcome || !strings.Contains(row["detail"], detail) {
		f.t.Errorf("%s: %s %q, want %s with %q", what, row["outcome"], row["detail"], outcome, detail)
	}
}

// TestLedgerRehireSupersedes is issue 15 point 1: a leaver disabled, rehired
// (enabled) and leaving again is disabled again: the rehire's entry
// supersedes the first disable, so the second one is sent.
func TestLedgerRehireSupersedes(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t)
	leo := "LOGIN_NAME:leo"
	f.fakes.kii.AddUser(leo, kiitest.User{})
	writes := func() int { return f.fakes.kii.Writes(leo) }

	row, _ := f.run(leo + ",disable")
	f.expect("run 1, the leave", row, "applied", "disabled")
	row, _ = f.run(leo + ",enable")
	f.expect("run 2, the rehire", row, "applied", "enabled")
	if writes() != 2 {
		t.Fatalf("after the rehire: %d writes, want 2", writes())
	}

	// The plan follows the same rule: the ledger no longer decides, the read does.
	dry, _ := f.run(leo+",disable", "--dry-run")
	if dry["outcome"] != "planned" || dry["detail"] != "would change" || !strings.Contains(dry["message"], "current state: enabled") {
		t.Errorf("dry run after the rehire: %s %q %q, want planned, would change, from the read", dry["outcome"], dry["detail"], dry["message"])
	}

	row, out := f.run(leo + ",disable")
	f.expect("run 3, the second leave", row, "applied", "disabled")
	if writes() != 3 {
		t.Errorf("the second leave reached the vendor %d times in all, want 3 writes", writes())
	}
	if u, _ := f.fakes.kii.User(leo); !u.Disabled {
		t.Errorf("leo is enabled at the vendor after the second leave")
	}
	if res := f.e2e.run("verify", "-c", f.cfg, out); res.code != exitOK {
		t.Errorf("verify after the second leave: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	run3 := readSummaryRunID(t, out)

	// Now the second leave answers for the key, in any spelling of leo.
	for _, spelled := range []string{leo, "LOGIN_NAME:LEO", "leo"} {
		row, _ = f.run(spelled + ",disable")
		f.expect("a repeat as "+spelled, row, "already", "done by run "+run3+" at ")
		dry, _ = f.run(spelled+",disable", "--dry-run")
		if dry["detail"] != "no change" || !strings.Contains(dry["message"], "decided by the ledger: done by run "+run3) {
			t.Errorf("dry run of a repeat as %s: %q %q, want no change decided by the ledger", spelled, dry["detail"], dry["message"])
		}
	}
	// plan consults the ledger the same way.
	planDir := filepath.Join(f.dir, "plan")
	if res := f.e2e.run("plan", "-c", f.cfg, "-o", planDir, f.write("plan.csv", opsCSV("apps,LOGIN_NAME:Leo,disable"))); res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	if r := readCSV(t, filepath.Join(planDir, "report.csv"))[0]; r["detail"] != "no change" || !strings.Contains(r["message"], "decided by the ledger: done by run "+run3) {
		t.Errorf("plan: %q %q, want no change decided by the ledger", r["detail"], r["message"])
	}
	if n := writes() + f.fakes.kii.Writes("LOGIN_NAME:LEO") + f.fakes.kii.Writes("leo"); n != 3 {
		t.Errorf("repeats sent %d writes in all, want none beyond the 3", n-3)
	}
}

// TestLedgerRehireSpelledAnotherWay: the rehire's enable names leo another
// way; it supersedes the leave all the same.
func TestLedgerRehireSpelledAnotherWay(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t)
	f.fakes.kii.AddUser("LOGIN_NAME:leo", kiitest.User{})
	f.fakes.kii.AddUser("LOGIN_NAME:Leo", kiitest.User{Disabled: true}) // the fake compares ids exactly
	f.run("LOGIN_NAME:leo,disable")
	row, _ := f.run("LOGIN_NAME:Leo,enable")
	f.expect("the rehire spelled Leo", row, "applied", "enabled")
	// The fake keeps two users; Kii keeps one: make the fake's leo enabled,
	// as Kii's one leo now is (AddUser counts its writes from 0 again).
	f.fakes.kii.AddUser("LOGIN_NAME:leo", kiitest.User{})
	row, _ = f.run("LOGIN_NAME:leo,disable")
	f.expect("the second leave", row, "applied", "disabled")
	if n := f.fakes.kii.Writes("LOGIN_NAME:leo"); n != 1 {
		t.Errorf("the second leave reached the vendor %d times, want 1", n)
	}
}

// TestLedgerHeldRowReadsMovedUser: a row the ledger holds runs once, even
// where the user was enabled again outside userbatch; the detail says so.
func TestLedgerHeldRowReadsMovedUser(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t)
	leo := "LOGIN_NAME:leo"
	f.fakes.kii.AddUser(leo, kiitest.User{})
	_, out := f.run(leo + ",disable")
	run1 := readSummaryRunID(t, out)
	// Enabled again by hand at the vendor (AddUser counts writes from 0).
	f.fakes.kii.AddUser(leo, kiitest.User{})
	row, _ := f.run(leo + ",disable")
	f.expect("the repeat", row, "already", "done by run "+run1)
	f.expect("the repeat", row, "already", "; the user is enabled now")
	if n := f.fakes.kii.Writes(leo); n != 0 {
		t.Errorf("the repeat wrote leo %d times: a row the ledger holds runs once", n)
	}
	dry, _ := f.run(leo+",disable", "--dry-run")
	if dry["detail"] != "no change" || !strings.Contains(dry["message"], "decided by the ledger") || !strings.Contains(dry["message"], "the user is enabled now") {
		t.Errorf("dry run: %q %q, want no change decided by the ledger, naming the move", dry["detail"], dry["message"])
	}
}

// readSummaryRunID is the run id the journal's header holds.
func readSummaryRunID(t *testing.T, dir string) string {
	t.Helper()
	b := readFile(t, filepath.Join(dir, "journal.jsonl"))
	head, _, _ := strings.Cut(b, "\n")
	_, after, ok := strings.Cut(head, `"run_id":"`)
	id, _, ok2 := strings.Cut(after, `"`)
	if !ok || !ok2 || id == "" {
		t.Fatalf("no run id in the journal header %q", head)
	}
	return id
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
