package main

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
)

// identityBin runs the built binary to its end and returns what it said.
func (e *e2e) identityBin(args ...string) result {
	e.t.Helper()
	p := e.start(args...)
	e.t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	code := seamWaitWithin(e.t, p, 2*time.Minute)
	return result{code: code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// identityRows reads a report or plan CSV keyed by its line column, or by
// position (line = index + 2) when it has none.
func identityRows(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	m := map[string]map[string]string{}
	for i, r := range readCSV(t, path) {
		line := r["line"]
		if line == "" {
			line = itoa(i + 2)
		}
		m[line] = r
	}
	return m
}

// The SCIM users of the protected test, beside the demo's three.
const identitySCIMPlain = "5d1c7a52-3c0e-4a9f-8d6b-2f7e9a1b0c3d"

// TestIdentityProtectedBySpelling: protected patterns stop a user however
// the row spells them (case, Kii's and SCIM's id-form prefixes, on either
// side) and, on SCIM, by any name the read returns (id, userName, emails):
// the dry run, the plan and the run skip those rows with the pattern
// named, and nothing is written for them; enables still run.
func TestIdentityProtectedBySpelling(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	f := e.fakes
	for _, u := range []string{"LOGIN_NAME:Boss", "boss", "LOGIN_NAME:breakglass", "LOGIN_NAME:svc-backup", "LOGIN_NAME:alice"} {
		f.kii.AddUser(u, kiitest.User{})
	}
	f.kii.AddUser("LOGIN_NAME:svc-restore", kiitest.User{Disabled: true})
	f.scim.AddUser(scimtest.User{ID: demoSCIMJensen, UserName: "bjensen@example.com", Active: true})
	f.scim.AddUser(scimtest.User{ID: demoSCIMSmith, UserName: "jsmith@example.com", Active: true})
	f.scim.AddUser(scimtest.User{ID: demoSCIMRoe, UserName: "mroe@example.com", Active: true,
		Attributes: map[string]any{"emails": []any{map[string]any{"value": "m.roe@work.example", "type": "work"}}}})
	f.scim.AddUser(scimtest.User{ID: identitySCIMPlain, UserName: "plain@example.com", Active: true})
	cfg := f.targetsYAML(e.srv.URL, 1000)
	cfg = seamWithProtected(cfg, "apps", `    protected: ["LOGIN_NAME:boss", "breakglass", "svc-*"]`+"\n")
	cfg = seamWithProtected(cfg, "saas", `    protected: ["userName:bjensen@example.com", "`+demoSCIMSmith+`", "M.Roe@work.example"]`+"\n")
	cfgPath := e.write("protected.yaml", cfg)
	in := e.write("ops.csv", `target,user,action,effective_at
apps,LOGIN_NAME:Boss,disable,
apps,boss,disable,2020-01-01
apps,LOGIN_NAME:breakglass,disable,
apps,LOGIN_NAME:svc-backup,disable,
apps,LOGIN_NAME:svc-restore,enable,
apps,LOGIN_NAME:alice,disable,
saas,userName:BJensen@example.com,disable,
saas,userName:jsmith@example.com,disable,
saas,`+demoSCIMRoe+`,disable,
saas,`+identitySCIMPlain+`,disable,
`)
	protected := map[string]string{ // line → the pattern that holds it
		"2": "LOGIN_NAME:boss", "3": "LOGIN_NAME:boss", "4": "breakglass", "5": "svc-*",
		"8": "userName:bjensen@example.com", "9": demoSCIMSmith, "10": "M.Roe@work.example",
	}
	changing := []string{"6", "7", "11"}
	assertProtected := func(when string, rows map[string]map[string]string) {
		t.Helper()
		for line, pat := range protected {
			want := fmt.Sprintf("protected: matches %q", pat)
			if r := rows[line]; r["outcome"] != "skipped" || r["detail"] != want {
				t.Errorf("%s: line %s (%s): %q %q, want skipped, %s", when, line, r["user"], r["outcome"], r["detail"], want)
			}
		}
	}

	dry := filepath.Join(e.dir, "dry")
	res := e.identityBin("run", "--dry-run", "-c", cfgPath, "-o", dry, in)
	if res.code != exitIncomplete { // skipped rows make exit 1
		t.Fatalf("dry run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows := identityRows(t, filepath.Join(dry, "report.csv"))
	assertProtected("dry run", rows)
	for _, line := range changing {
		if rows[line]["outcome"] != "planned" || rows[line]["detail"] != "would change" {
			t.Errorf("dry run: line %s: %q %q, want planned, would change", line, rows[line]["outcome"], rows[line]["detail"])
		}
	}

	plan := filepath.Join(e.dir, "plan")
	if res := e.identityBin("plan", "-c", cfgPath, "-o", plan, in); res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	planned := identityRows(t, filepath.Join(plan, "plan.csv"))
	for line := range protected {
		if c := planned[line]["change"]; c != "protected" {
			t.Errorf("plan.csv line %s (%s): change %q, want protected", line, planned[line]["user"], c)
		}
	}
	for _, line := range changing {
		if c := planned[line]["change"]; c != "would change" {
			t.Errorf("plan.csv line %s: change %q, want would change", line, c)
		}
	}

	out := filepath.Join(e.dir, "run")
	res = e.identityBin("run", "-c", cfgPath, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows = identityRows(t, filepath.Join(out, "report.csv"))
	assertProtected("run", rows)
	for _, line := range changing {
		if rows[line]["outcome"] != "applied" {
			t.Errorf("run: line %s: %q %q, want applied", line, rows[line]["outcome"], rows[line]["detail"])
		}
	}
	for _, u := range []string{"LOGIN_NAME:Boss", "boss", "LOGIN_NAME:breakglass", "LOGIN_NAME:svc-backup"} {
		if st, _ := f.kii.User(u); st.Disabled || f.kii.Writes(u) != 0 {
			t.Errorf("kii %s (protected): disabled %v after %d writes", u, st.Disabled, f.kii.Writes(u))
		}
	}
	for _, id := range []string{demoSCIMJensen, demoSCIMSmith, demoSCIMRoe} {
		if u, _ := f.scim.User(id); !u.Active || f.scim.Writes(id) != 0 {
			t.Errorf("scim %s (protected): active %v after %d writes", id, u.Active, f.scim.Writes(id))
		}
	}
	if f.kii.Writes("LOGIN_NAME:alice") != 1 || f.kii.Writes("LOGIN_NAME:svc-restore") != 1 || f.scim.Writes(identitySCIMPlain) != 1 {
		t.Errorf("unprotected rows: alice %d, svc-restore (enable) %d, scim plain %d writes, want 1 each",
			f.kii.Writes("LOGIN_NAME:alice"), f.kii.Writes("LOGIN_NAME:svc-restore"), f.scim.Writes(identitySCIMPlain))
	}
}

// TestIdentityProtectedLoneStarRefused: a pattern that is only stars once
// the vendor's prefix is stripped would protect everyone: refused.
func TestIdentityProtectedLoneStarRefused(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	cfg := seamWithProtected(e.fakes.targetsYAML(e.srv.URL, 1000), "apps", `    protected: ["LOGIN_NAME:*"]`+"\n")
	cfgPath := e.write("star.yaml", cfg)
	in := e.write("ops.csv", opsCSV("apps,LOGIN_NAME:alice,disable"))
	res := e.identityBin("run", "-c", cfgPath, "-o", filepath.Join(e.dir, "r"), in)
	if res.code != exitBadInput || !strings.Contains(res.stderr, `protected holds "LOGIN_NAME:*"`) {
		t.Errorf("exit %d, want 2 naming the pattern\n%s", res.code, res.stderr)
	}
	if n := e.fakes.kii.Requests(); n != 0 {
		t.Errorf("%d requests reached kii", n)
	}
}

const identityConflictsCSV = `target,user,action,role,effective_at
apps,LOGIN_NAME:leo,disable,,
apps,LOGIN_NAME:Leo,enable,,
admin,c-1,toggle-status,,
admin,c-1,toggle-status,,
shop,e-1,upgrade-role,Member,
shop,e-1,downgrade-role,Customer,
apps,LOGIN_NAME:mia,disable,,2020-01-01
apps,LOGIN_NAME:mia,enable,,2020-01-15
apps,LOGIN_NAME:ok,disable,,
`

// identityConflicts: line → the line each conflicting row names.
var identityConflicts = map[string]string{"2": "3", "3": "2", "4": "5", "5": "4", "6": "7", "7": "6"}

func (e *e2e) seedConflicts() {
	f := e.fakes
	for _, u := range []string{"LOGIN_NAME:leo", "LOGIN_NAME:Leo", "LOGIN_NAME:mia", "LOGIN_NAME:ok"} {
		f.kii.AddUser(u, kiitest.User{})
	}
	f.clearsquare.AddUser("c-1", clearsquaretest.User{Active: true})
	f.epixel.AddUser("e-1", epixeltest.User{Role: "Customer"})
}

func (e *e2e) allRequests() int {
	f := e.fakes
	return f.epixel.Requests() + f.clearsquare.Requests() + f.kii.Requests() + f.msgkart.Requests() + f.scim.Requests()
}

// TestIdentityConflictsRefuseTheFile: rows of one user and effective_at
// that contradict each other (disable and enable in two spellings, a
// toggle twice, two different roles) are invalid, each naming the other;
// validate, run, --dry-run, plan and every --shard refuse the file with
// nothing sent; --skip-invalid sends the rest. Rows with different
// effective_at are no conflict.
func TestIdentityConflictsRefuseTheFile(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedConflicts()
	in := e.write("ops.csv", identityConflictsCSV)

	res := e.identityBin("validate", "-c", e.cfg, in)
	if res.code != exitBadInput {
		t.Fatalf("validate: exit %d, want 2\n%s%s", res.code, res.stdout, res.stderr)
	}
	for line, other := range identityConflicts {
		want := fmt.Sprintf("line %s, column action: conflicts with line %s", line, other)
		if !strings.Contains(res.stdout, want) {
			t.Errorf("validate does not say %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "line 8,") || strings.Contains(res.stdout, "line 9,") {
		t.Errorf("validate: rows with different effective_at reported:\n%s", res.stdout)
	}

	for _, args := range [][]string{{"run"}, {"run", "--dry-run"}, {"plan"}, {"run", "--shard", "0/2"}, {"run", "--shard", "1/2"}} {
		out := filepath.Join(e.dir, strings.NewReplacer("/", "-", " ", "").Replace(strings.Join(args, "")))
		res := e.identityBin(append(args, "-c", e.cfg, "-o", out, in)...)
		if res.code != exitBadInput {
			t.Errorf("%v: exit %d, want 2\n%s", args, res.code, res.stderr)
		}
		if n := e.allRequests(); n != 0 {
			t.Fatalf("%v: %d requests reached the vendors of a refused file", args, n)
		}
	}
	rows := identityRows(t, filepath.Join(e.dir, "run", "report.csv"))
	for line, other := range identityConflicts {
		if r := rows[line]; r["outcome"] != "invalid" || !strings.Contains(r["message"], "conflicts with line "+other) {
			t.Errorf("report.csv line %s: %q %q, want invalid, conflicts with line %s", line, r["outcome"], r["message"], other)
		}
	}

	out := filepath.Join(e.dir, "skip")
	res = e.identityBin("run", "--skip-invalid", "-c", e.cfg, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("--skip-invalid: exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows = identityRows(t, filepath.Join(out, "report.csv"))
	for line := range identityConflicts {
		if rows[line]["outcome"] != "invalid" {
			t.Errorf("--skip-invalid: line %s: %q, want invalid", line, rows[line]["outcome"])
		}
	}
	for _, line := range []string{"8", "9", "10"} {
		if rows[line]["outcome"] != "applied" {
			t.Errorf("--skip-invalid: line %s: %q %q, want applied", line, rows[line]["outcome"], rows[line]["detail"])
		}
	}
	f := e.fakes
	if n := f.kii.Writes("LOGIN_NAME:leo") + f.kii.Writes("LOGIN_NAME:Leo") + f.clearsquare.Writes("c-1") + f.epixel.Writes("e-1"); n != 0 {
		t.Errorf("--skip-invalid: %d writes for conflicting rows", n)
	}
	if u, _ := f.kii.User("LOGIN_NAME:mia"); u.Disabled || f.kii.Writes("LOGIN_NAME:mia") != 2 {
		t.Errorf("mia (disable, then enable later): disabled %v after %d writes, want enabled after 2", u.Disabled, f.kii.Writes("LOGIN_NAME:mia"))
	}
}

const identityDuplicatesCSV = `target,user,action,role
apps,LOGIN_NAME:leo,disable,
apps,LOGIN_NAME:Leo,block,
shop,e-1,upgrade-role,Member
shop,e-1,upgrade-role,member
apps,leo,disable,
shop,e-2,disable,
`

// identityDuplicates: line → the earlier line it repeats.
var identityDuplicates = map[string]string{"3": "2", "5": "4", "6": "2"}

// TestIdentityDuplicatesSkipped: an exact repeat of an earlier row of the
// same user (however spelled) ends skipped, "duplicate of line N", and is
// never sent: in validate, a run, a dry run, a plan (change "duplicate")
// and its apply.
func TestIdentityDuplicatesSkipped(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	f := e.fakes
	for _, u := range []string{"LOGIN_NAME:leo", "LOGIN_NAME:Leo", "leo"} {
		f.kii.AddUser(u, kiitest.User{})
	}
	f.epixel.AddUser("e-1", epixeltest.User{Role: "Customer"})
	f.epixel.AddUser("e-2", epixeltest.User{Role: "Customer"})
	in := e.write("ops.csv", identityDuplicatesCSV)

	res := e.identityBin("validate", "-c", e.cfg, in)
	if res.code != exitOK {
		t.Fatalf("validate: exit %d, want 0\n%s%s", res.code, res.stdout, res.stderr)
	}
	for line, first := range identityDuplicates {
		if want := "line " + line + ": duplicate of line " + first; !strings.Contains(res.stdout, want) {
			t.Errorf("validate does not say %q:\n%s", want, res.stdout)
		}
	}
	assertDuplicates := func(when string, rows map[string]map[string]string) {
		t.Helper()
		for line, first := range identityDuplicates {
			if r := rows[line]; r["outcome"] != "skipped" || r["detail"] != "duplicate of line "+first {
				t.Errorf("%s: line %s: %q %q, want skipped, duplicate of line %s", when, line, r["outcome"], r["detail"], first)
			}
		}
	}

	dry := filepath.Join(e.dir, "dry")
	if res := e.identityBin("run", "--dry-run", "-c", e.cfg, "-o", dry, in); res.code != exitIncomplete {
		t.Fatalf("dry run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	assertDuplicates("dry run", identityRows(t, filepath.Join(dry, "report.csv")))

	plan := filepath.Join(e.dir, "plan")
	if res := e.identityBin("plan", "-c", e.cfg, "-o", plan, in); res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	planned := identityRows(t, filepath.Join(plan, "plan.csv"))
	for line := range identityDuplicates {
		if c := planned[line]["change"]; c != "duplicate" {
			t.Errorf("plan.csv line %s: change %q, want duplicate", line, c)
		}
	}
	if f.kii.Writes("LOGIN_NAME:leo")+f.epixel.Writes("e-1") != 0 {
		t.Fatal("the dry run or the plan wrote")
	}

	out := filepath.Join(e.dir, "apply")
	res = e.identityBin("apply", "-c", e.cfg, "-o", out, plan)
	if res.code != exitIncomplete {
		t.Fatalf("apply: exit %d, want 1\n%s", res.code, res.stderr)
	}
	rows := identityRows(t, filepath.Join(out, "report.csv"))
	assertDuplicates("apply", rows)
	for _, line := range []string{"2", "4", "7"} {
		if rows[line]["outcome"] != "applied" {
			t.Errorf("apply: line %s: %q %q, want applied", line, rows[line]["outcome"], rows[line]["detail"])
		}
	}
	if f.kii.Writes("LOGIN_NAME:leo") != 1 || f.kii.Writes("LOGIN_NAME:Leo")+f.kii.Writes("leo") != 0 || f.epixel.Writes("e-1") != 1 {
		t.Errorf("writes: LOGIN_NAME:leo %d, LOGIN_NAME:Leo %d, leo %d, e-1 %d; want 1, 0, 0, 1", f.kii.Writes("LOGIN_NAME:leo"),
			f.kii.Writes("LOGIN_NAME:Leo"), f.kii.Writes("leo"), f.epixel.Writes("e-1"))
	}

	// A plain run of the same file, on fresh users: the same outcomes.
	for _, u := range []string{"LOGIN_NAME:leo", "LOGIN_NAME:Leo", "leo"} {
		f.kii.AddUser(u, kiitest.User{})
	}
	run := filepath.Join(e.dir, "run")
	if res := e.identityBin("run", "-c", e.cfg, "-o", run, in); res.code != exitIncomplete {
		t.Fatalf("run: exit %d, want 1\n%s", res.code, res.stderr)
	}
	assertDuplicates("run", identityRows(t, filepath.Join(run, "report.csv")))
	if f.kii.Writes("LOGIN_NAME:leo") != 1 || f.kii.Writes("LOGIN_NAME:Leo")+f.kii.Writes("leo") != 0 {
		t.Errorf("run: writes LOGIN_NAME:leo %d, LOGIN_NAME:Leo %d, leo %d", f.kii.Writes("LOGIN_NAME:leo"), f.kii.Writes("LOGIN_NAME:Leo"), f.kii.Writes("leo"))
	}
}

// overlapWatch counts requests about one Kii user (by its folded, bare
// name) that were in flight at the same time.
type overlapWatch struct {
	next     http.Handler
	mu       sync.Mutex
	inFlight map[string]int
	overlaps int
}

func (o *overlapWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := ""
	if seg := strings.Split(r.URL.EscapedPath(), "/"); strings.HasPrefix(r.URL.Path, "/kii/") && len(seg) > 2 {
		user, _ = url.PathUnescape(seg[len(seg)-2])
		user = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(user, "LOGIN_NAME:"), "login_name:"))
	}
	o.mu.Lock()
	if user != "" {
		if o.inFlight[user] > 0 {
			o.overlaps++
		}
		o.inFlight[user]++
	}
	o.mu.Unlock()
	o.next.ServeHTTP(w, r)
	o.mu.Lock()
	if user != "" {
		o.inFlight[user]--
	}
	o.mu.Unlock()
}

// TestIdentityOneUserInOrder: rows of one Kii user in different spellings
// (LOGIN_NAME:user-00, User-00) run in input order, never at the same
// time, and fall in the same shard.
func TestIdentityOneUserInOrder(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	watch := &overlapWatch{next: e.fakes.handler(), inFlight: map[string]int{}}
	e.serve(watch)
	f := e.fakes
	f.kii.Faults.Add(fakehttp.Rule{Fault: fakehttp.Fault{Delay: 30 * time.Millisecond}})
	var rows []string
	for i := range 24 {
		lower, upper := fmt.Sprintf("LOGIN_NAME:user-%02d", i), fmt.Sprintf("User-%02d", i)
		f.kii.AddUser(lower, kiitest.User{})
		f.kii.AddUser(upper, kiitest.User{})
		rows = append(rows, "apps,"+lower+",disable,2020-01-01", "apps,"+upper+",enable,2020-01-02")
	}
	in := e.write("ops.csv", "target,user,action,effective_at\n"+strings.Join(rows, "\n")+"\n")

	out := filepath.Join(e.dir, "run")
	if res := e.identityBin("run", "-c", e.cfg, "-o", out, in); res.code != exitOK {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	if watch.overlaps != 0 {
		t.Errorf("%d requests about one user were in flight together", watch.overlaps)
	}
	for i := range 24 {
		lower := fmt.Sprintf("LOGIN_NAME:user-%02d", i)
		if u, _ := f.kii.User(lower); !u.Disabled || f.kii.Writes(lower) != 1 {
			t.Errorf("%s: disabled %v after %d writes", lower, u.Disabled, f.kii.Writes(lower))
		}
	}

	shardOf := map[string]string{} // folded user → the shard whose report has it
	for k := range 3 {
		dir := filepath.Join(e.dir, fmt.Sprintf("shard-%d", k))
		if res := e.identityBin("run", "--dry-run", "--shard", fmt.Sprintf("%d/3", k), "-c", e.cfg, "-o", dir, in); res.code != exitOK {
			t.Fatalf("shard %d: exit %d\n%s", k, res.code, res.stderr)
		}
		for _, r := range readCSV(t, filepath.Join(dir, "report.csv")) {
			user := strings.ToLower(strings.TrimPrefix(r["user"], "LOGIN_NAME:"))
			if prev, ok := shardOf[user]; ok && prev != dir {
				t.Errorf("%s is in two shards (%s and %s)", r["user"], prev, dir)
			}
			shardOf[user] = dir
		}
	}
	if len(shardOf) != 24 {
		t.Errorf("the shards hold %d users, want 24", len(shardOf))
	}
}

// TestIdentityProtectedThroughASpec: a target described by a spec matches
// its protected patterns the way its spec's identity says, as the Go
// adapter does: Kii's spec folds case and strips LOGIN_NAME:, so "boss" is
// the protected LOGIN_NAME:boss, and no write for them reaches the vendor.
func TestIdentityProtectedThroughASpec(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	for _, u := range []string{"LOGIN_NAME:Boss", "LOGIN_NAME:alice"} {
		e.fakes.kii.AddUser(u, kiitest.User{})
	}
	cfg := e.fakes.targetsYAML(e.srv.URL, 1000)
	spec := strings.Replace(cfg, "  apps:\n    vendor: kii\n", "  apps:\n    vendor: http\n    spec: builtin:kii\n", 1)
	if spec == cfg {
		t.Fatalf("the config has no kii target apps:\n%s", cfg)
	}
	cfgPath := e.write("spec.yaml", seamWithProtected(spec, "apps", `    protected: ["LOGIN_NAME:boss"]`+"\n"))
	in := e.write("ops.csv", "target,user,action\napps,boss,disable\napps,LOGIN_NAME:alice,disable\n")
	out := filepath.Join(e.dir, "run")
	if res := e.run("run", "-c", cfgPath, "-o", out, in); res.code != exitIncomplete {
		t.Fatalf("run: exit %d, want 1 (protected rows are skipped)\n%s", res.code, res.stderr)
	}
	rows := identityRows(t, filepath.Join(out, "report.csv"))
	if r := rows["2"]; r["outcome"] != "skipped" || r["detail"] != `protected: matches "LOGIN_NAME:boss"` {
		t.Errorf("line 2 (boss): %q %q, want skipped as protected", r["outcome"], r["detail"])
	}
	if r := rows["3"]; r["outcome"] != "applied" {
		t.Errorf("line 3 (alice): %q %q, want applied", r["outcome"], r["detail"])
	}
	if n := e.fakes.kii.Writes("LOGIN_NAME:Boss"); n != 0 {
		t.Errorf("%d writes reached the protected user", n)
	}
}
