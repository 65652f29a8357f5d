package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
)

const verifySCIMUser = "5d0a4f7e-1c2b-4e3f-8a9b-0c1d2e3f4a5b"

// verifyCSV is a run over every vendor: changes, a user already in state,
// a user changed twice (a day apart: at one effective_at the rows would
// conflict), a row that fails, rows the vendor cannot read back.
const verifyCSV = `target,user,action,role,place_genealogy,ticket,effective_at
apps,LOGIN_NAME:k-alice,disable,,,T1,
apps,k-bob,disable,,,T2,
apps,k-already,disable,,,T3,
apps,k-twice,disable,,,T4,2020-01-01
apps,k-twice,enable,,,T5,2020-01-02
apps,k-nobody,disable,,,T6,
chat,m-busy,disable,,,T7,
chat,m-stays,disable,,,T8,
saas,` + verifySCIMUser + `,disable,,,T9,
shop,e-block,disable,,,T10,
shop,e-up,upgrade-role,Preferred Customer,true,T11,
admin,c-toggle,toggle-status,,,T12,
`

func (e *e2e) seedVerify() {
	f := e.fakes
	f.kii.AddUser("LOGIN_NAME:k-alice", kiitest.User{})
	f.kii.AddUser("k-bob", kiitest.User{})
	f.kii.AddUser("k-already", kiitest.User{Disabled: true})
	f.kii.AddUser("k-twice", kiitest.User{})
	f.msgkart.AddUser("m-busy", msgkarttest.User{Status: "Busy"})
	f.msgkart.AddUser("m-stays", msgkarttest.User{Status: "Available"})
	f.scim.AddUser(scimtest.User{ID: verifySCIMUser, UserName: "v@example.com", Active: true})
	f.epixel.AddUser("e-block", epixeltest.User{Role: "Customer"})
	f.epixel.AddUser("e-up", epixeltest.User{Role: "Customer"})
	f.clearsquare.AddUser("c-toggle", clearsquaretest.User{Active: true})
}

// verifyWrites is every seeded user's write count at the fakes.
func (e *e2e) verifyWrites() map[string]int {
	f := e.fakes
	w := map[string]int{}
	for _, id := range []string{"LOGIN_NAME:k-alice", "k-bob", "k-already", "k-twice"} {
		w["kii "+id] = f.kii.Writes(id)
	}
	for _, id := range []string{"m-busy", "m-stays"} {
		w["msgkart "+id] = f.msgkart.Writes(id)
	}
	w["scim"] = f.scim.Writes(verifySCIMUser)
	for _, id := range []string{"e-block", "e-up"} {
		w["epixel "+id] = f.epixel.Writes(id)
	}
	w["clearsquare"] = f.clearsquare.Writes("c-toggle")
	return w
}

// countMethods wraps the fakes to count the requests that are not GETs:
// a verify must send none.
func (e *e2e) countMethods() *atomic.Int64 {
	var n atomic.Int64
	h := e.fakes.handler()
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	return &n
}

func TestVerifyAfterRunThenDrift(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedVerify()
	in := e.write("ops.csv", verifyCSV)
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in); res.code != exitIncomplete {
		t.Fatalf("run: exit %d, want 1 (k-nobody fails)\n%s", res.code, res.stderr)
	}
	writes := e.verifyWrites()
	others := e.countMethods()

	res := e.run("verify", "-c", e.cfg, out)
	if res.code != exitOK {
		t.Fatalf("verify right after the run: exit %d, want 0\n%s%s", res.code, res.stdout, res.stderr)
	}
	rows := readVerify(t, out, 12)
	want := map[string][2]string{ // ticket line → verdict, state_now
		"2": {"ok", "disabled"}, "3": {"ok", "disabled"}, "4": {"ok", "disabled"},
		"5": {"ok", "enabled"}, "6": {"ok", "enabled"}, "7": {"ok", ""},
		"8": {"ok", "userStatus=Disabled"}, "9": {"ok", "userStatus=Disabled"},
		"10": {"ok", "inactive (active=false)"}, "11": {"unreadable", ""}, "12": {"unreadable", ""},
		"13": {"unreadable", ""},
	}
	checkVerdicts(t, rows, want)
	// Why a row was not read is said where its state would be.
	if st := rows[5]["state_now"]; !strings.Contains(st, "not_found") || rows[5]["outcome"] != "failed" {
		t.Errorf("k-nobody: outcome %s state_now %q: a failed row is ok, and says why it was not read", rows[5]["outcome"], st)
	}
	if st := rows[9]["state_now"]; !strings.Contains(st, "epixel cannot read") {
		t.Errorf("epixel row state_now %q: should say the vendor cannot read state", st)
	}
	if !strings.Contains(res.stdout, "9 ok, 0 drift, 3 unreadable") {
		t.Errorf("verify printed no counts:\n%s", res.stdout)
	}

	// Behind the run's back, an administrator enables two users again.
	e.fakes.kii.AddUser("LOGIN_NAME:k-alice", kiitest.User{})
	e.fakes.msgkart.AddUser("m-busy", msgkarttest.User{Status: "Available"})
	writes["kii LOGIN_NAME:k-alice"], writes["msgkart m-busy"] = 0, 0 // AddUser starts the count again
	res = e.run("verify", "-c", e.cfg, out)
	if res.code != exitIncomplete {
		t.Fatalf("verify after drift: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	want["2"] = [2]string{"drift", "enabled"}
	want["8"] = [2]string{"drift", "userStatus=Available"}
	checkVerdicts(t, readVerify(t, out, 12), want)
	for _, s := range []string{"line 2: apps LOGIN_NAME:k-alice disable", "line 8: chat m-busy disable", "7 ok, 2 drift, 3 unreadable"} {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("verify's output lacks %q:\n%s", s, res.stdout)
		}
	}
	if !strings.Contains(res.stderr, "2 rows drifted") {
		t.Errorf("stderr should say how many rows drifted:\n%s", res.stderr)
	}
	if got := e.verifyWrites(); !mapsEqual(got, writes) {
		t.Errorf("the fakes saw writes during verify: before %v, after %v", writes, got)
	}
	if n := others.Load(); n != 0 {
		t.Errorf("verify sent %d requests that are not GETs", n)
	}
}

// readVerify reads verify.csv, checks its header, mode and row count.
func readVerify(t *testing.T, dir string, rows int) []map[string]string {
	t.Helper()
	path := filepath.Join(dir, "verify.csv")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("verify.csv mode %v, want 0600", info.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	head, _, _ := strings.Cut(string(b), "\n")
	if head != "line,target,user,action,outcome,state_now,verdict" {
		t.Errorf("verify.csv header %q", head)
	}
	got := readCSV(t, path)
	if len(got) != rows {
		t.Fatalf("verify.csv has %d rows, want %d (one per report row)", len(got), rows)
	}
	return got
}

func checkVerdicts(t *testing.T, rows []map[string]string, want map[string][2]string) {
	t.Helper()
	for _, r := range rows {
		w, ok := want[r["line"]]
		if !ok {
			t.Errorf("verify.csv has line %s, not in the input", r["line"])
			continue
		}
		// A row not read says why in state_now: "(not read: ...)".
		state := r["state_now"]
		if strings.HasPrefix(state, "(not read: ") {
			state = ""
		}
		if r["verdict"] != w[0] || state != w[1] {
			t.Errorf("line %s (%s %s %s, %s): verdict %q state_now %q, want %q %q",
				r["line"], r["target"], r["user"], r["action"], r["outcome"], r["verdict"], r["state_now"], w[0], w[1])
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
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

func TestVerifyRefusesOtherConfigAndUnfinishedReports(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedVerify()
	in := e.write("ops.csv", verifyCSV)
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in); res.code != exitIncomplete {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	base, _ := os.ReadFile(e.cfg)
	moved := e.write("moved.yaml", strings.Replace(string(base), "/kii\n", "/kii-eu\n", 1))
	fewer := e.write("fewer.yaml", strings.Replace(string(base), "  admin:\n", "  admin2:\n", 1))
	unfinished := filepath.Join(e.dir, "unfinished")
	if err := os.Mkdir(unfinished, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"journal.jsonl", "report.csv"} { // a run that died before its summary
		b, _ := os.ReadFile(filepath.Join(out, name))
		if err := os.WriteFile(filepath.Join(unfinished, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	requests := e.fakes.kii.Requests() + e.fakes.msgkart.Requests() + e.fakes.scim.Requests()
	for _, c := range []struct {
		name, cfg, dir, want string
	}{
		{"base_url changed", moved, out, "config changed since the run"},
		{"targets changed", fewer, out, "targets changed since the run"},
		{"no summary.json", e.cfg, unfinished, "no finished report"},
		{"no directory", e.cfg, filepath.Join(e.dir, "nowhere"), "no such file"},
	} {
		res := e.run("verify", "-c", c.cfg, c.dir)
		if res.code != exitBadInput || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s", c.name, res.code, c.want, res.stderr)
		}
		if _, err := os.Stat(filepath.Join(c.dir, "verify.csv")); err == nil {
			t.Errorf("%s: verify.csv written by a refused verify", c.name)
		}
	}
	if got := e.fakes.kii.Requests() + e.fakes.msgkart.Requests() + e.fakes.scim.Requests(); got != requests {
		t.Errorf("a refused verify sent %d requests", got-requests)
	}
}

func TestVerifyMsgkartWithoutEmail(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	base, _ := os.ReadFile(e.cfg)
	cfg := e.write("noemail.yaml", strings.Replace(string(base), "    email: "+fakeMsgkartEmail+"\n", "", 1))
	e.fakes.msgkart.AddUser("m-1", msgkarttest.User{Status: "Busy"})
	e.fakes.kii.AddUser("k-1", kiitest.User{})
	in := e.write("ops.csv", "target,user,action,email\nchat,m-1,disable,"+fakeMsgkartEmail+"\napps,k-1,disable,\n")
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", cfg, "-o", out, in); res.code != exitOK {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	reads := e.fakes.msgkart.Requests()
	res := e.run("verify", "-c", cfg, out)
	if res.code != exitOK {
		t.Fatalf("verify: exit %d, want 0 (unreadable is not drift)\n%s", res.code, res.stderr)
	}
	rows := readVerify(t, out, 2)
	if r := rows[0]; r["verdict"] != "unreadable" || !strings.Contains(r["state_now"], "email") {
		t.Errorf("msgkart row without a target email: verdict %q state_now %q, want unreadable, saying why", r["verdict"], r["state_now"])
	}
	if r := rows[1]; r["verdict"] != "ok" || r["state_now"] != "disabled" {
		t.Errorf("kii row: %v", r)
	}
	if got := e.fakes.msgkart.Requests(); got != reads {
		t.Errorf("verify sent %d requests to msgkart, which it cannot read without an email", got-reads)
	}
}

// TestVerifyHelp: the command is wired and documented, and the columns its
// help names are verify.csv's, exactly.
func TestVerifyHelp(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	res := e.run("verify", "--help")
	if res.code != exitOK || !strings.Contains(res.stdout, "verify -c targets.yaml REPORT_DIR") {
		t.Fatalf("verify --help: exit %d\n%s", res.code, res.stdout)
	}
	help := regexp.MustCompile(`verify\.csv: ([a-z_,]+)\.`).FindStringSubmatch(res.stdout)
	e.seedVerify()
	out := filepath.Join(e.dir, "report")
	e.run("run", "-c", e.cfg, "-o", out, e.write("ops.csv", verifyCSV))
	if v := e.run("verify", "-c", e.cfg, out); v.code != exitOK {
		t.Fatalf("verify: exit %d\n%s", v.code, v.stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "verify.csv"))
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\n")
	if help == nil || help[1] != head {
		t.Errorf("verify --help names the columns %q; verify.csv has %q", help, head)
	}
	res = e.run("--help")
	if !slices.ContainsFunc(strings.Split(res.stdout, "\n"), func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "verify ") }) {
		t.Errorf("root help does not list verify:\n%s", res.stdout)
	}
}

// TestVerifyOneUserInTwoSpellings: a SCIM user disabled as
// userName:v@example.com and enabled the next day as userName:V@Example.com
// is one person (SCIM userNames ignore case): only the last row that
// claimed a change for them is judged, so the earlier disable is not drift.
func TestVerifyOneUserInTwoSpellings(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedVerify()
	in := e.write("ops.csv", "target,user,action,effective_at\n"+
		"saas,userName:v@example.com,disable,2026-01-01\n"+
		"saas,userName:V@Example.com,enable,2026-01-02\n")
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in); res.code != exitOK {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	res := e.run("verify", "-c", e.cfg, out)
	if res.code != exitOK {
		t.Fatalf("verify: exit %d, want 0 (the enable was the last change)\n%s%s", res.code, res.stdout, res.stderr)
	}
	checkVerdicts(t, readVerify(t, out, 2), map[string][2]string{"2": {"ok", "active"}, "3": {"ok", "active"}})
}
