package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
)

// e2e runs the built binary over real HTTP against the fake vendors on
// loopback.
type e2e struct {
	t       *testing.T
	fakes   *fakeVendors
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler] // tests swap it to wrap the fakes
	dir     string
	cfg     string
	env     []string // NAME=value for the binary's environment, not the test process's
}

func (e *e2e) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*e.handler.Load()).ServeHTTP(w, r)
}

// serve makes h answer every request from now on.
func (e *e2e) serve(h http.Handler) { e.handler.Store(&h) }

func newE2E(t *testing.T) *e2e {
	t.Helper()
	e := &e2e{t: t, fakes: newFakeVendors(false), dir: t.TempDir()}
	e.serve(e.fakes.handler())
	e.srv = httptest.NewServer(e)
	t.Cleanup(e.srv.Close)
	e.cfg = e.write("targets.yaml", e.fakes.targetsYAML(e.srv.URL, 1000))
	return e
}

func (e *e2e) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the built binary to its end, with no input on stdin. A process
// of its own per command: the report directory's lock (a flock) is the
// child's alone, where an in-process run's lock file could be held a moment
// longer by a child another parallel test is starting, and the next command
// on that directory refused.
func (e *e2e) run(args ...string) result {
	e.t.Helper()
	p := e.start(args...)
	code := p.wait()
	return result{code: code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// inProcess runs args through runMain in the test process: for the tests
// that set a package-level hook the binary cannot see (history's clock).
func (e *e2e) inProcess(args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := runMain(args, strings.NewReader(""), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// readCSV reads a report file into maps keyed by column name.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCSV(t, b, ',')
}

func readSummary(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const allVendorsCSV = `target,user,action,role,place_genealogy,block_user,ticket
shop,e-disable,disable,,,,T1
shop,e-member,upgrade-role,member,,,T2
shop,e-nobody,disable,,,,T3
shop,e-conflict,upgrade-role,Preferred Customer,TRUE,,T4
shop,e-flaky,disable,,,,T5
shop,e-down,downgrade-role,Customer,,yes,T6
shop,../x?y=1,disable,,,,T7
admin,c-toggle,toggle-status,,,,T8
admin,c-dropped,toggle-status,,,,T9
admin,c-503,toggle-status,,,,T10
apps,LOGIN_NAME:k-alice,disable,,,,T11
apps,k-already,disable,,,,T12
apps,k-nobody,enable,,,,T13
apps,PHONE:+8190,enable,,,,T14
chat,m-busy,disable,,,,T15
chat,m-already,disable,,,,T16
chat,m/slash,enable,,,,T17
`

func (e *e2e) seedAllVendors() {
	f := e.fakes
	for _, id := range []string{"e-disable", "e-flaky", "../x?y=1"} {
		f.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
	}
	f.epixel.AddUser("e-member", epixeltest.User{Role: "Member"})
	f.epixel.AddUser("e-conflict", epixeltest.User{Role: "Member"})
	f.epixel.AddUser("e-down", epixeltest.User{Role: "Member"})
	f.epixel.Faults.Add(fakehttp.Rule{User: "e-flaky", Times: 2, Fault: fakehttp.Fault{Status: 503}})
	f.clearsquare.AddUser("c-toggle", clearsquaretest.User{Active: true})
	f.clearsquare.AddUser("c-dropped", clearsquaretest.User{Active: true})
	f.clearsquare.AddUser("c-503", clearsquaretest.User{Active: true})
	f.clearsquare.Faults.Add(fakehttp.Rule{User: "c-dropped", Fault: fakehttp.Fault{DropAfter: true}})
	f.clearsquare.Faults.Add(fakehttp.Rule{User: "c-503", Fault: fakehttp.Fault{Status: 503}})
	f.kii.AddUser("LOGIN_NAME:k-alice", kiitest.User{})
	f.kii.AddUser("k-already", kiitest.User{Disabled: true})
	f.kii.AddUser("PHONE:+8190", kiitest.User{Disabled: true})
	f.msgkart.AddUser("m-busy", msgkarttest.User{Status: "Busy"})
	f.msgkart.AddUser("m-already", msgkarttest.User{Status: "Disabled"})
	f.msgkart.AddUser("m/slash", msgkarttest.User{Status: "Disabled"})
}

func TestRunEveryVendorEveryOutcome(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--log-format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d (some rows fail on purpose)\n%s", res.code, exitIncomplete, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	want := map[string]struct{ outcome, code string }{
		"e-disable": {"applied", ""}, "e-member": {"already", ""}, "e-nobody": {"failed", "not_found"},
		"e-conflict": {"failed", "conflict"}, "e-flaky": {"applied", ""}, "e-down": {"applied", ""},
		"../x?y=1": {"applied", ""}, "c-toggle": {"applied", ""}, "c-dropped": {"unknown", "network"},
		"c-503": {"unknown", "server_error"}, "LOGIN_NAME:k-alice": {"applied", ""}, "k-already": {"already", ""},
		"k-nobody": {"failed", "not_found"}, "PHONE:+8190": {"applied", ""}, "m-busy": {"applied", ""},
		"m-already": {"already", ""}, "m/slash": {"applied", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("report has %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		w := want[r["user"]]
		if r["outcome"] != w.outcome || r["error_code"] != w.code {
			t.Errorf("%s: outcome %s/%s, want %s/%s (%s)", r["user"], r["outcome"], r["error_code"], w.outcome, w.code, r["message"])
		}
		if r["line"] != itoa(i+2) || r["ticket"] != "T"+itoa(i+1) {
			t.Errorf("row %d: line %s ticket %s: order or passthrough lost", i, r["line"], r["ticket"])
		}
	}
	if got := rows[4]["attempts"]; got != "3" {
		t.Errorf("e-flaky: attempts %s, want 3 (two 503s, then applied)", got)
	}
	e.assertVendorState()
	sum := readSummary(t, out)
	if sum["rows"].(float64) != 17 || sum["exit_code"].(float64) != 1 {
		t.Errorf("summary rows %v exit %v", sum["rows"], sum["exit_code"])
	}
	for _, name := range []string{"report.csv", "summary.json", "failed.csv", "undo.csv", "journal.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	// The two unknown toggles are not safe to send again: check.csv, not failed.csv.
	if failed := readCSV(t, filepath.Join(out, "failed.csv")); len(failed) != 3 {
		t.Errorf("failed.csv has %d rows, want 3 (the failed ones)", len(failed))
	}
	if check := readCSV(t, filepath.Join(out, "check.csv")); len(check) != 2 {
		t.Errorf("check.csv has %d rows, want 2 (the unknown toggles)", len(check))
	}
}

// assertVendorState checks the fakes themselves, not just the report.
func (e *e2e) assertVendorState() {
	t, f := e.t, e.fakes
	for id, want := range map[string]epixeltest.User{
		"e-disable": {Blocked: true, Role: "Customer"}, "e-member": {Role: "Member"},
		"e-conflict": {Role: "Member"}, "e-flaky": {Blocked: true, Role: "Customer"},
		"e-down": {Blocked: true, Role: "Customer"}, "../x?y=1": {Blocked: true, Role: "Customer"},
	} {
		if got, _ := f.epixel.User(id); got.Blocked != want.Blocked || got.Role != want.Role {
			t.Errorf("epixel %s: %+v, want %+v", id, got, want)
		}
	}
	if f.epixel.Writes("e-flaky") != 1 {
		t.Errorf("e-flaky processed %d times, want 1", f.epixel.Writes("e-flaky"))
	}
	for id, want := range map[string]bool{"c-toggle": false, "c-dropped": false, "c-503": true} {
		if got, _ := f.clearsquare.User(id); got.Active != want {
			t.Errorf("clearsquare %s active %v, want %v", id, got.Active, want)
		}
	}
	// The no-resend rule: a toggle that may have arrived is never sent again.
	for id, want := range map[string]int{"c-toggle": 1, "c-dropped": 1, "c-503": 0} {
		if got := f.clearsquare.Writes(id); got != want {
			t.Errorf("clearsquare %s toggled %d times, want %d", id, got, want)
		}
	}
	for id, want := range map[string]bool{"LOGIN_NAME:k-alice": true, "k-already": true, "PHONE:+8190": false} {
		if got, _ := f.kii.User(id); got.Disabled != want {
			t.Errorf("kii %s disabled %v, want %v", id, got.Disabled, want)
		}
	}
	if f.kii.Writes("k-already") != 0 || f.msgkart.Writes("m-already") != 0 {
		t.Errorf("a user already in state was written")
	}
	for id, want := range map[string]string{"m-busy": "Disabled", "m-already": "Disabled", "m/slash": "Available"} {
		if got, _ := f.msgkart.User(id); got.Status != want {
			t.Errorf("msgkart %s status %q, want %q", id, got.Status, want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestInvalidFileSendsNothing(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV+"shop,,disable,,,,T18\nnowhere,u1,disable,,,,T19\n")
	out := filepath.Join(e.dir, "report")
	// A person at a console reads the problems as lines (a JSON log has
	// them as records: TestHostileCronLogInvalidRows).
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--log-format", "console")
	if res.code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"line 19, column user: user is empty", `line 20, column target: unknown target "nowhere"`} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	if n := e.fakes.epixel.Requests() + e.fakes.kii.Requests() + e.fakes.clearsquare.Requests() + e.fakes.msgkart.Requests(); n != 0 {
		t.Errorf("an invalid file sent %d requests", n)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 19 || rows[17]["outcome"] != "invalid" || rows[0]["outcome"] != "skipped" {
		t.Errorf("report of an invalid file: %d rows, row 18 %q, row 1 %q", len(rows), rows[17]["outcome"], rows[0]["outcome"])
	}

	res = e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "report2"), "--skip-invalid", in)
	if res.code != exitIncomplete {
		t.Fatalf("--skip-invalid: exit %d\n%s", res.code, res.stderr)
	}
	rows = readCSV(t, filepath.Join(e.dir, "report2", "report.csv"))
	if rows[17]["outcome"] != "invalid" || rows[18]["outcome"] != "invalid" || rows[0]["outcome"] != "applied" {
		t.Errorf("--skip-invalid outcomes: %q %q %q", rows[0]["outcome"], rows[17]["outcome"], rows[18]["outcome"])
	}
}

func TestDryRunSendsNoChange(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	out := filepath.Join(e.dir, "plan")
	res := e.run("run", "-c", e.cfg, "-o", out, "--dry-run", in)
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	details := map[string]string{}
	for _, r := range rows {
		details[r["user"]] = r["outcome"] + ":" + strings.SplitN(r["detail"], ":", 2)[0]
	}
	for user, want := range map[string]string{
		"e-disable": "planned:unknown state", "c-toggle": "planned:unknown state",
		"LOGIN_NAME:k-alice": "planned:would change", "k-already": "planned:no change",
		"m-busy": "planned:would change", "m-already": "planned:no change", "k-nobody": "failed:not_found",
	} {
		got := details[user]
		if user == "k-nobody" {
			got = rowsByUser(rows)[user]["outcome"] + ":" + rowsByUser(rows)[user]["error_code"]
		}
		if got != want {
			t.Errorf("%s: %s, want %s", user, got, want)
		}
	}
	writes := 0
	for _, id := range []string{"e-disable", "e-flaky", "e-member"} {
		writes += e.fakes.epixel.Writes(id)
	}
	writes += e.fakes.clearsquare.Writes("c-toggle") + e.fakes.kii.Writes("LOGIN_NAME:k-alice") + e.fakes.msgkart.Writes("m-busy")
	if writes != 0 || e.fakes.epixel.Requests() != 0 || e.fakes.clearsquare.Requests() != 0 {
		t.Errorf("dry run wrote: %d writes, epixel %d requests, clearsquare %d", writes, e.fakes.epixel.Requests(), e.fakes.clearsquare.Requests())
	}
	if res.code != exitIncomplete { // k-nobody cannot be read
		t.Errorf("exit %d\n%s", res.code, res.stderr)
	}
}

func rowsByUser(rows []map[string]string) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, r := range rows {
		m[r["user"]] = r
	}
	return m
}

// TestSecretsNeverPrinted runs the binary with secrets from its environment and a file,
// debug logging, and failures that quote requests, then looks for the secret
// values in everything userbatch wrote.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	c := e.fakes.creds
	// The binary's environment holds the secrets: the test process's stays
	// clean, so this test runs in parallel with the others.
	e.env = []string{"UB_EPIXEL_KEY=" + c.epixelKey, "UB_EPIXEL_TOKEN=" + c.epixelToken,
		"UB_KII_TOKEN=" + c.kiiToken, "UB_MSGKART_KEY=" + c.msgkartKey}
	tokenFile := e.write("cs-token", c.clearsquareToken+"\n")
	cfg := e.write("secret-targets.yaml", `targets:
  shop:
    vendor: epixel
    base_url: `+e.srv.URL+`/epixel/api/v2
    apikey: ${UB_EPIXEL_KEY}
    token: ${UB_EPIXEL_TOKEN}
    rate: 1000
  admin:
    vendor: clearsquare
    base_url: `+e.srv.URL+`/clearsquare
    token: ${file:`+tokenFile+`}
    rate: 1000
  apps:
    vendor: kii
    base_url: `+e.srv.URL+`/kii
    app_id: `+fakeKiiApp+`
    token: ${UB_KII_TOKEN}
    rate: 1000
  chat:
    vendor: msgkart
    base_url: `+e.srv.URL+`/msgkart
    apikey: ${UB_MSGKART_KEY}
    email: `+fakeMsgkartEmail+`
    rate: 1000
`)
	// A closed port makes transport errors that would quote the URL.
	e.fakes.msgkart.Faults.Add(fakehttp.Rule{User: "m-busy", Fault: fakehttp.Fault{Reset: true}})
	out := filepath.Join(e.dir, "report")
	p := e.start("run", "-c", cfg, "-o", out, "--log-level", "debug", "--log-format", "json", e.write("ops.csv", allVendorsCSV))
	if code := p.wait(); code != exitIncomplete {
		t.Fatalf("exit %d\n%s", code, p.stderr.String())
	}
	if e.fakes.epixel.Writes("e-disable") != 1 {
		t.Fatalf("the run did not reach the vendors: %s", p.stderr.String())
	}
	texts := map[string]string{"stdout": p.stdout.String(), "stderr": p.stderr.String()}
	entries, _ := os.ReadDir(out)
	for _, ent := range entries {
		b, _ := os.ReadFile(filepath.Join(out, ent.Name()))
		texts[ent.Name()] = string(b)
	}
	for _, secret := range []string{c.epixelKey, c.epixelToken, c.clearsquareToken, c.kiiToken, c.msgkartKey} {
		for name, text := range texts {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains a secret", name)
			}
		}
	}
}

// TestRetryAfterPausesTarget: a 429 with Retry-After holds every request to
// that target, the retry included, for at least the time asked.
func TestRetryAfterPausesTarget(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	rec := &recorder{next: e.fakes.handler()}
	e.serve(rec)
	for _, id := range []string{"a", "b", "c"} {
		e.fakes.kii.AddUser(id, kiitest.User{})
	}
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: "a", Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: 429, RetryAfter: "1"}})
	cfg := e.write("kii.yaml", "targets:\n  apps:\n    vendor: kii\n    base_url: "+e.srv.URL+"/kii\n"+
		"    app_id: "+fakeKiiApp+"\n    token: "+e.fakes.creds.kiiToken+"\n    rate: 1000\n    concurrency: 1\n")
	in := e.write("ops.csv", "target,user,action\napps,a,disable\napps,b,disable\napps,c,disable\n")
	res := e.run("run", "-c", cfg, "-o", filepath.Join(e.dir, "r"), in)
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	reqs := rec.list()
	if len(reqs) != 7 || reqs[0].status != 429 {
		t.Fatalf("requests: %+v; want the 429 first, then 6 more", reqs)
	}
	if gap := reqs[1].start.Sub(reqs[0].end); gap < time.Second {
		t.Errorf("the next request came %v after the 429, want >= 1s (Retry-After: 1)", gap)
	}
	for _, id := range []string{"a", "b", "c"} {
		if u, _ := e.fakes.kii.User(id); !u.Disabled {
			t.Errorf("%s not disabled", id)
		}
	}
}

// recorder notes when each request started and ended, and its status.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	start, end time.Time
	status     int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: 200}
	start := time.Now()
	r.next.ServeHTTP(sw, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, recorded{start: start, end: time.Now(), status: sw.status})
}

func (r *recorder) list() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
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

// TestShardsAndMerge: three shards of one file send every row exactly once
// between them, and their merged report equals the report of one run.
func TestShardsAndMerge(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	var dirs []string
	for k := 0; k < 3; k++ {
		dir := filepath.Join(e.dir, fmt.Sprintf("shard-%d", k))
		dirs = append(dirs, dir)
		res := e.run("run", "-c", e.cfg, "-o", dir, "--shard", fmt.Sprintf("%d/3", k), in)
		if res.code != exitOK && res.code != exitIncomplete {
			t.Fatalf("shard %d: exit %d\n%s", k, res.code, res.stderr)
		}
	}
	merged := filepath.Join(e.dir, "merged")
	if res := e.run(append([]string{"report", "merge", "-o", merged}, dirs...)...); res.code != exitOK {
		t.Fatalf("merge: exit %d\n%s", res.code, res.stderr)
	}
	e.assertVendorState() // every row applied once, whichever shard had it
	rows := readCSV(t, filepath.Join(merged, "report.csv"))
	if len(rows) != 17 {
		t.Fatalf("merged report has %d rows, want 17", len(rows))
	}
	for i, r := range rows {
		if r["line"] != itoa(i+2) {
			t.Errorf("merged row %d has line %s", i, r["line"])
		}
	}
	if n := len(readCSV(t, filepath.Join(merged, "failed.csv"))); n != 3 {
		t.Errorf("merged failed.csv has %d rows, want 3", n)
	}
	if n := len(readCSV(t, filepath.Join(merged, "check.csv"))); n != 2 {
		t.Errorf("merged check.csv has %d rows, want 2", n)
	}
	undo := readCSV(t, filepath.Join(merged, "undo.csv"))
	if len(undo) != 10 { // 9 applied rows, one of them a downgrade that also blocked
		t.Errorf("merged undo.csv has %d rows, want 10", len(undo))
	}
	sum := readSummary(t, merged)
	if sum["rows"].(float64) != 17 {
		t.Errorf("merged summary rows = %v", sum["rows"])
	}
	// A shard's journal is its own: resuming it as another shard is refused.
	res := e.run("run", "-c", e.cfg, "-o", dirs[0], "--shard", "1/3", in, "--resume")
	if res.code != exitBadInput || !strings.Contains(res.stderr, "shard") {
		t.Errorf("resume as another shard: exit %d %s", res.code, res.stderr)
	}
}

// TestDemo runs the embedded default as a fresh clone would.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := runMain([]string{"demo", "-o", dir, "--log-format", "json"}, strings.NewReader(""), &out, &errb)
	if code != exitOK {
		t.Fatalf("demo exit %d\n%s", code, errb.String())
	}
	for _, name := range []string{"report.csv", "summary.json", "failed.csv", "undo.csv", "journal.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("demo wrote no %s", name)
		}
	}
	sum := readSummary(t, dir)
	outcomes := sum["outcomes"].(map[string]any)
	for _, o := range []string{"applied", "already", "failed"} {
		if outcomes[o].(float64) == 0 {
			t.Errorf("the demo shows no %s row: %v", o, outcomes)
		}
	}
	if sum["retries"].(float64) == 0 {
		t.Errorf("the demo shows no retried row")
	}
	if !strings.Contains(out.String(), dir) || !strings.Contains(errb.String(), "applied") {
		t.Errorf("demo output lacks the report path or the summary:\n%s\n%s", out.String(), errb.String())
	}
}

// TestSandbox: the YAML the sandbox prints is a config that run accepts and
// that reaches the fake vendors.
func TestSandbox(t *testing.T) {
	t.Parallel()
	out, stop := startSandbox()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(cfg, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "ops.csv")
	if err := os.WriteFile(in, []byte("target,user,action\nshop,anyone,disable\napps,LOGIN_NAME:new,disable\nchat,m-100,disable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var rout, rerr bytes.Buffer
	code := runMain([]string{"run", "-c", cfg, "-o", filepath.Join(dir, "r"), in}, strings.NewReader(""), &rout, &rerr)
	if err := stop(); err != nil {
		t.Errorf("sandbox: %v", err)
	}
	if code != exitOK {
		t.Fatalf("run against the sandbox: exit %d\n%s\nconfig:\n%s", code, rerr.String(), out.String())
	}
}

// startSandbox serves the sandbox on a free loopback port; out holds the
// targets.yaml it printed, and stop ends it.
func startSandbox() (out *bytes.Buffer, stop func() error) {
	out = &bytes.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o := &sandboxOptions{globalOptions: &globalOptions{stdout: out, stderr: io.Discard}, listen: "127.0.0.1:0"}
	go func() { done <- sandboxRun(ctx, o, ready) }()
	<-ready
	return out, func() error {
		cancel()
		return <-done
	}
}
