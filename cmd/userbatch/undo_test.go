package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
)

// undoCase is one vendor's round trip: seed users, run a file that changes
// each of them (one user twice, at two effective_at: at one they would
// conflict), run the undo.csv it wrote as it is, and
// find every user as before the first run.
type undoCase struct {
	csv  string
	seed func(*fakeVendors)
	// state is each user's whole state at the fake, by user id.
	state func(*fakeVendors) map[string]string
	// twice is the user changed twice: it ends the run as it began, so it
	// is checked by its writes instead.
	twice string
	// notRestorable are the users whose undo row needs a person (an
	// epixel role whose previous value is unknown), with the note that
	// says so: the undo run reports them invalid and leaves them.
	notRestorable map[string]string
}

func TestUndoRestoresEpixel(t *testing.T) {
	t.Parallel()
	users := []string{"e-block", "e-unblock", "e-twice", "e-up", "e-downblock", "e-upmember", "e-downcustomer"}
	runUndoCase(t, undoCase{
		csv: `target,user,action,role,place_genealogy,block_user,ticket,effective_at
shop,e-block,block,,,,T1,
shop,e-unblock,unblock,,,,T2,
shop,e-twice,disable,,,,T3,2020-01-01
shop,e-up,upgrade-role,Preferred Customer,false,,T4,
shop,e-twice,enable,,,,T5,2020-01-02
shop,e-downblock,downgrade-role,Preferred Customer,,true,T6,
shop,e-upmember,upgrade-role,Member,,,T7,
shop,e-downcustomer,downgrade-role,Customer,,,T8,
`,
		seed: func(f *fakeVendors) {
			f.epixel.AddUser("e-block", epixeltest.User{Role: "Customer"})
			f.epixel.AddUser("e-unblock", epixeltest.User{Role: "Customer", Blocked: true})
			f.epixel.AddUser("e-twice", epixeltest.User{Role: "Customer"})
			f.epixel.AddUser("e-up", epixeltest.User{Role: "Customer"})
			f.epixel.AddUser("e-downblock", epixeltest.User{Role: "Member"})
			f.epixel.AddUser("e-upmember", epixeltest.User{Role: "Customer"})
			f.epixel.AddUser("e-downcustomer", epixeltest.User{Role: "PreferredCustomer"})
		},
		state: func(f *fakeVendors) map[string]string {
			return states(users, f.epixel.User)
		},
		twice: "e-twice",
		notRestorable: map[string]string{
			"e-upmember":     "role before the upgrade is not known",
			"e-downcustomer": "role before the downgrade is not known",
		},
	})
}

func TestUndoRestoresClearsquareToggles(t *testing.T) {
	t.Parallel()
	users := []string{"c-on", "c-off", "c-twice"}
	runUndoCase(t, undoCase{
		csv: `target,user,action,ticket,effective_at
admin,c-on,toggle-status,T1,
admin,c-twice,toggle-status,T2,2020-01-01
admin,c-off,toggle-status,T3,
admin,c-twice,toggle-status,T4,2020-01-02
`,
		seed: func(f *fakeVendors) {
			f.clearsquare.AddUser("c-on", clearsquaretest.User{Active: true})
			f.clearsquare.AddUser("c-off", clearsquaretest.User{Active: false})
			f.clearsquare.AddUser("c-twice", clearsquaretest.User{Active: true})
		},
		state: func(f *fakeVendors) map[string]string { return states(users, f.clearsquare.User) },
		twice: "c-twice",
	})
}

func TestUndoRestoresKii(t *testing.T) {
	t.Parallel()
	// -k-dash is written '-k-dash in undo.csv (a formula-neutralised
	// cell), and read back as itself.
	users := []string{"LOGIN_NAME:k-on", "k-off", "PHONE:+8190", "k-twice", "-k-dash"}
	runUndoCase(t, undoCase{
		csv: `target,user,action,ticket,effective_at
apps,LOGIN_NAME:k-on,disable,T1,
apps,k-twice,enable,T2,2020-01-01
apps,k-off,enable,T3,
apps,PHONE:+8190,deactivate,T4,
apps,k-twice,disable,T5,2020-01-02
apps,-k-dash,disable,T6,
`,
		seed: func(f *fakeVendors) {
			f.kii.AddUser("LOGIN_NAME:k-on", kiitest.User{})
			f.kii.AddUser("k-off", kiitest.User{Disabled: true})
			f.kii.AddUser("PHONE:+8190", kiitest.User{})
			f.kii.AddUser("k-twice", kiitest.User{Disabled: true})
			f.kii.AddUser("-k-dash", kiitest.User{})
		},
		state: func(f *fakeVendors) map[string]string { return states(users, f.kii.User) },
		twice: "k-twice",
	})
}

// msgkart's enable makes a Disabled user Available: a presence such as Busy
// is the user's own, set by their client, and no API call restores it. The
// enabled users here are Available, the state an enable gives back.
func TestUndoRestoresMsgkart(t *testing.T) {
	t.Parallel()
	users := []string{"m-on", "m-off", "m-twice"}
	runUndoCase(t, undoCase{
		csv: `target,user,action,ticket,effective_at
chat,m-on,suspend,T1,
chat,m-twice,enable,T2,2020-01-01
chat,m-off,unsuspend,T3,
chat,m-twice,disable,T4,2020-01-02
`,
		seed: func(f *fakeVendors) {
			f.msgkart.AddUser("m-on", msgkarttest.User{Status: "Available"})
			f.msgkart.AddUser("m-off", msgkarttest.User{Status: "Disabled"})
			f.msgkart.AddUser("m-twice", msgkarttest.User{Status: "Disabled"})
		},
		state: func(f *fakeVendors) map[string]string { return states(users, f.msgkart.User) },
		twice: "m-twice",
	})
}

func TestUndoRestoresSCIM(t *testing.T) {
	t.Parallel()
	const on, off, twice = "0b6f3c1e-0000-4000-8000-000000000001", "0b6f3c1e-0000-4000-8000-000000000002", "0b6f3c1e-0000-4000-8000-000000000003"
	users := []string{on, off, twice}
	runUndoCase(t, undoCase{
		csv: `target,user,action,ticket,effective_at
saas,userName:on@example.com,disable,T1,
saas,` + twice + `,enable,T2,2020-01-01
saas,` + off + `,enable,T3,
saas,` + twice + `,disable,T4,2020-01-02
`,
		seed: func(f *fakeVendors) {
			attrs := map[string]any{"displayName": "On Person", "emails": []any{map[string]any{"value": "on@example.com", "primary": true}}}
			f.scim.AddUser(scimtest.User{ID: on, UserName: "on@example.com", Active: true, Attributes: attrs})
			f.scim.AddUser(scimtest.User{ID: off, UserName: "off@example.com", Active: false})
			f.scim.AddUser(scimtest.User{ID: twice, UserName: "twice@example.com", Active: false})
		},
		state: func(f *fakeVendors) map[string]string { return states(users, f.scim.User) },
		twice: twice,
	})
}

// states renders each user's whole state at a fake.
func states[U any](ids []string, get func(string) (U, bool)) map[string]string {
	m := map[string]string{}
	for _, id := range ids {
		u, ok := get(id)
		m[id] = fmt.Sprintf("%v %+v", ok, u)
	}
	return m
}

// twiceWrites counts the writes a fake received for a user.
func twiceWrites(f *fakeVendors, id string) int {
	return f.epixel.Writes(id) + f.clearsquare.Writes(id) + f.kii.Writes(id) + f.msgkart.Writes(id) + f.scim.Writes(id)
}

func runUndoCase(t *testing.T, c undoCase) {
	t.Helper()
	e := newE2E(t)
	c.seed(e.fakes)
	before := c.state(e.fakes)
	in := e.write("ops.csv", c.csv)
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in); res.code != exitOK {
		t.Fatalf("run: exit %d, want 0\n%s", res.code, res.stderr)
	}
	for _, r := range readCSV(t, filepath.Join(out, "report.csv")) {
		if r["outcome"] != "applied" {
			t.Fatalf("line %s %s: %s (%s %s): every row of this file changes its user", r["line"], r["user"], r["outcome"], r["detail"], r["message"])
		}
	}
	changed := c.state(e.fakes)
	for id, st := range before {
		if id != c.twice && changed[id] == st {
			t.Fatalf("%s: the run left it as it was (%s): the test proves nothing", id, st)
		}
	}
	if n := twiceWrites(e.fakes, c.twice); n != 2 {
		t.Fatalf("%s: %d writes in the run, want 2", c.twice, n)
	}

	undo := filepath.Join(out, "undo.csv")
	args := []string{"run", "-c", e.cfg, "-o", filepath.Join(e.dir, "undo-report"), undo}
	wantCode := exitOK
	if len(c.notRestorable) > 0 {
		args = append(args, "--skip-invalid")
		wantCode = exitIncomplete // its invalid rows
	}
	res := e.run(args...)
	if res.code != wantCode {
		t.Fatalf("undo run: exit %d, want %d\n%s", res.code, wantCode, res.stderr)
	}
	checkUndoReport(t, filepath.Join(e.dir, "undo-report", "report.csv"), c.notRestorable)

	after := c.state(e.fakes)
	for id, want := range before {
		if _, left := c.notRestorable[id]; left {
			if after[id] != changed[id] {
				t.Errorf("%s: its undo row is invalid, yet the user changed: %s, then %s", id, changed[id], after[id])
			}
			continue
		}
		if after[id] != want {
			t.Errorf("%s: after the undo %s, before the run %s", id, after[id], want)
		}
	}
	if n := twiceWrites(e.fakes, c.twice); n != 4 {
		t.Errorf("%s: %d writes in all, want 4 (two in the run, two in the undo)", c.twice, n)
	}
}

// checkUndoReport checks the undo run's report: every row applied but the
// ones that need a person, which are invalid and say why in undo_note.
func checkUndoReport(t *testing.T, path string, notRestorable map[string]string) {
	t.Helper()
	invalid := map[string]bool{}
	for _, r := range readCSV(t, path) {
		note, needsPerson := notRestorable[r["user"]]
		switch {
		case needsPerson:
			invalid[r["user"]] = true
			if r["outcome"] != "invalid" || !strings.Contains(r["undo_note"], note) || !strings.Contains(r["undo_note"], "reverses line") {
				t.Errorf("undo line %s %s: outcome %s undo_note %q: want invalid, with a note saying %q", r["line"], r["user"], r["outcome"], r["undo_note"], note)
			}
		case r["outcome"] != "applied":
			t.Errorf("undo line %s %s %s: %s (%s %s)", r["line"], r["user"], r["action"], r["outcome"], r["detail"], r["message"])
		}
	}
	for user := range notRestorable {
		if !invalid[user] {
			t.Errorf("%s: no row in the undo run's report", user)
		}
	}
}
