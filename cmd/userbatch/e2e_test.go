package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	env     []string         // NAME=value for the binary's environment, not the test process's
	now     func() time.Time // the in-process commands' clock (nil: the wall clock)
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

// inProcess runs args in the test process, on e.now's clock: for the tests
// that need a clock the binary cannot be given (history's "now").
func (e *e2e) inProcess(args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	g := &globalOptions{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, args: args, now: e.now}
	if g.now == nil {
		g.now = time.Now
	}
	code := g.main()
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

func rowsByUser(rows []map[string]string) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, r := range rows {
		m[r["user"]] = r
	}
	return m
}
