package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
)

// configKeyCase shows, through the product against the fakes, that one
// targets.yaml key changes what happens: each case runs a baseline config
// and the same config with that one key changed, and compares what reached
// the fakes and the report.
type configKeyCase struct {
	key  string
	test func(t *testing.T)
}

// TestEveryConfigKeyChangesWhatHappens: issue 7, "every config key to a
// non-default value ... each one changes what happens". A key added to
// config.Target or a vendor's Keys without a case here fails the first
// check.
func TestEveryConfigKeyChangesWhatHappens(t *testing.T) {
	t.Parallel()
	cases := []configKeyCase{
		{"vendor", testKeyVendor},
		{"base_url", testKeyBaseURL},
		{"apikey", testKeyAPIKey},
		{"token", testKeyToken},
		{"rate", testKeyRate},
		{"burst", testKeyBurst},
		{"concurrency", testKeyConcurrency},
		{"timeout", testKeyTimeout},
		{"protected", testKeyProtected},
		{"insecure_http", testKeyInsecureHTTP},
		{"max_changes", testKeyMaxChanges},
		{"max_wait", testKeyMaxWait},
		{"app_id", testKeyAppID},
		{"email", testKeyEmail},
		{"hides_inactive", testKeyHidesInactive},
		{"spec", testKeySpec},
		{"ledger", testKeyLedger},
		{"notify.webhook", testKeyWebhook},
	}
	var names []string
	for _, c := range cases {
		names = append(names, c.key)
	}
	want := append(config.AllKeys(), "ledger", "notify.webhook")
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("cases cover %v; the config has %v: every key needs a case", names, want)
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			t.Parallel()
			c.test(t)
		})
	}
}

// setKey returns yaml (as fakeVendors.targetsYAML writes it) with target's
// key set to value, added when absent.
func setKey(t *testing.T, yaml, target, key, value string) string {
	t.Helper()
	lines := strings.Split(yaml, "\n")
	start := slices.Index(lines, "  "+target+":")
	if start < 0 {
		t.Fatalf("no target %s in\n%s", target, yaml)
	}
	end := start + 1
	for end < len(lines) && strings.HasPrefix(lines[end], "    ") {
		if strings.HasPrefix(lines[end], "    "+key+":") {
			lines[end] = "    " + key + ": " + value
			return strings.Join(lines, "\n")
		}
		end++
	}
	lines = slices.Insert(lines, end, "    "+key+": "+value)
	return strings.Join(lines, "\n")
}

// baseYAML is the fakes' own targets.yaml for e.
func (e *e2e) baseYAML() string { return e.fakes.targetsYAML(e.srv.URL, 1000) }

// runKey writes cfg and ops, runs them into report dir out, and returns the
// result and report.csv's rows by user (none when the run wrote no report).
func (e *e2e) runKey(cfg, ops, out string) (result, map[string]map[string]string) {
	e.t.Helper()
	cfgPath := e.write(out+".yaml", cfg)
	in := e.write(out+".csv", ops)
	dir := filepath.Join(e.dir, out)
	res := e.run("run", "-c", cfgPath, "-o", dir, in)
	return res, reportRows(e.t, dir)
}

func reportRows(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	path := filepath.Join(dir, "report.csv")
	if _, err := os.Stat(path); err != nil {
		return map[string]map[string]string{}
	}
	return rowsByUser(readCSV(t, path))
}

// wantExit fails the test unless res exited with code.
func wantExit(t *testing.T, what string, res result, code int) {
	t.Helper()
	if res.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, res.code, code, res.stdout, res.stderr)
	}
}

// wantOutcome checks a report row's outcome (and error_code when given).
func wantOutcome(t *testing.T, what string, rows map[string]map[string]string, user, outcome, code string) {
	t.Helper()
	r, ok := rows[user]
	if !ok {
		t.Errorf("%s: no report row for %s", what, user)
		return
	}
	if r["outcome"] != outcome || (code != "" && r["error_code"] != code) {
		t.Errorf("%s: %s ended %s/%s (%s %s), want %s/%s", what, user, r["outcome"], r["error_code"],
			r["detail"], r["message"], outcome, code)
	}
}

func testKeyVendor(t *testing.T) {
	// The vendor decides the protocol and the actions: scim disables, while
	// clearsquare only toggles, so the same row is refused before sending.
	run := func(vendor string) (*e2e, result, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.scim.AddUser(scimtest.User{ID: "s-1", UserName: "s1@example.com", Active: true})
		cfg := e.baseYAML()
		if vendor != "" {
			cfg = setKey(t, cfg, "saas", "vendor", vendor)
		}
		res, rows := e.runKey(cfg, opsCSV("saas,s-1,disable"), "r")
		return e, res, rows
	}
	e, res, rows := run("")
	wantExit(t, "vendor: scim", res, exitOK)
	wantOutcome(t, "vendor: scim", rows, "s-1", "applied", "")
	if u, _ := e.fakes.scim.User("s-1"); u.Active {
		t.Error("vendor: scim: s-1 still active")
	}

	e, res, _ = run("clearsquare")
	wantExit(t, "vendor: clearsquare", res, exitBadInput)
	if !strings.Contains(res.stdout+res.stderr, "toggle-status") {
		t.Errorf("vendor: clearsquare: the refusal does not name what clearsquare supports:\n%s%s", res.stdout, res.stderr)
	}
	if n := e.fakes.scim.Requests(); n != 0 {
		t.Errorf("vendor: clearsquare: %d requests reached the scim fake, want 0", n)
	}
}

// kiiUsers adds enabled kii users.
func kiiUsers(e *e2e, ids ...string) {
	for _, id := range ids {
		e.fakes.kii.AddUser(id, kiitest.User{})
	}
}

// kiiKey runs "disable k-1" on apps, with key set to value when value is
// not empty, and returns the fake, exit and row.
func kiiKey(t *testing.T, key, value string) (*e2e, result, map[string]map[string]string) {
	e := newE2E(t)
	kiiUsers(e, "k-1")
	cfg := e.baseYAML()
	if value != "" {
		cfg = setKey(t, cfg, "apps", key, value)
	}
	res, rows := e.runKey(cfg, opsCSV("apps,k-1,disable"), "r")
	return e, res, rows
}

func wantKiiDisabled(t *testing.T, what string, e *e2e, disabled bool) {
	t.Helper()
	u, _ := e.fakes.kii.User("k-1")
	if u.Disabled != disabled {
		t.Errorf("%s: k-1 disabled=%v, want %v (writes %d)", what, u.Disabled, disabled, e.fakes.kii.Writes("k-1"))
	}
}

func testKeyBaseURL(t *testing.T) {
	e, res, rows := kiiKey(t, "base_url", "")
	wantExit(t, "base_url: the fake's", res, exitOK)
	wantOutcome(t, "base_url: the fake's", rows, "k-1", "applied", "")
	wantKiiDisabled(t, "base_url: the fake's", e, true)

	e, res, rows = kiiKey(t, "base_url", e.srv.URL+"/elsewhere/kii")
	wantExit(t, "base_url: elsewhere", res, exitIncomplete)
	wantOutcome(t, "base_url: elsewhere", rows, "k-1", "failed", "")
	wantKiiDisabled(t, "base_url: elsewhere", e, false)
	if n := e.fakes.kii.Requests(); n != 0 {
		t.Errorf("base_url: elsewhere: %d requests reached the kii fake, want 0", n)
	}
}

func testKeyToken(t *testing.T) {
	e, res, rows := kiiKey(t, "token", "")
	wantExit(t, "token: right", res, exitOK)
	wantOutcome(t, "token: right", rows, "k-1", "applied", "")
	wantKiiDisabled(t, "token: right", e, true)

	e, res, rows = kiiKey(t, "token", randomHex())
	wantExit(t, "token: wrong", res, exitIncomplete)
	wantOutcome(t, "token: wrong", rows, "k-1", "failed", "unauthorized")
	wantKiiDisabled(t, "token: wrong", e, false)
}

func testKeyAppID(t *testing.T) {
	e, res, rows := kiiKey(t, "app_id", "")
	wantExit(t, "app_id: right", res, exitOK)
	wantOutcome(t, "app_id: right", rows, "k-1", "applied", "")
	wantKiiDisabled(t, "app_id: right", e, true)

	e, res, rows = kiiKey(t, "app_id", "otherapp")
	wantExit(t, "app_id: another app", res, exitIncomplete)
	wantOutcome(t, "app_id: another app", rows, "k-1", "failed", "")
	wantKiiDisabled(t, "app_id: another app", e, false)
	if n := e.fakes.kii.Requests(); n == 0 {
		t.Error("app_id: another app: nothing reached the kii fake; the row should have failed there")
	}
}

func testKeyAPIKey(t *testing.T) {
	run := func(apikey string) (*e2e, result, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.epixel.AddUser("e-1", epixeltest.User{Role: "Customer"})
		cfg := e.baseYAML()
		if apikey != "" {
			cfg = setKey(t, cfg, "shop", "apikey", apikey)
		}
		res, rows := e.runKey(cfg, opsCSV("shop,e-1,disable"), "r")
		return e, res, rows
	}
	e, res, rows := run("")
	wantExit(t, "apikey: right", res, exitOK)
	wantOutcome(t, "apikey: right", rows, "e-1", "applied", "")
	if u, _ := e.fakes.epixel.User("e-1"); !u.Blocked {
		t.Error("apikey: right: e-1 not blocked")
	}

	e, res, rows = run(randomHex())
	wantExit(t, "apikey: wrong", res, exitIncomplete)
	wantOutcome(t, "apikey: wrong", rows, "e-1", "failed", "unauthorized")
	if u, _ := e.fakes.epixel.User("e-1"); u.Blocked || e.fakes.epixel.Writes("e-1") != 0 {
		t.Errorf("apikey: wrong: e-1 blocked=%v after %d writes, want untouched", u.Blocked, e.fakes.epixel.Writes("e-1"))
	}
}

func testKeyEmail(t *testing.T) {
	// The rows carry no email column: the target's email is the one sent.
	run := func(email string) (*e2e, result, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.msgkart.AddUser("m-1", msgkarttest.User{Status: "Available"})
		cfg := e.baseYAML()
		if email != "" {
			cfg = setKey(t, cfg, "chat", "email", email)
		}
		res, rows := e.runKey(cfg, opsCSV("chat,m-1,disable"), "r")
		return e, res, rows
	}
	e, res, rows := run("")
	wantExit(t, "email: the account's", res, exitOK)
	wantOutcome(t, "email: the account's", rows, "m-1", "applied", "")
	if u, _ := e.fakes.msgkart.User("m-1"); u.Status != "Disabled" {
		t.Errorf("email: the account's: m-1 is %s, want Disabled", u.Status)
	}

	e, res, rows = run("someone-else@example.com")
	wantExit(t, "email: another", res, exitIncomplete)
	wantOutcome(t, "email: another", rows, "m-1", "failed", "unauthorized")
	if u, _ := e.fakes.msgkart.User("m-1"); u.Status != "Available" || e.fakes.msgkart.Writes("m-1") != 0 {
		t.Errorf("email: another: m-1 is %s after %d writes, want Available and untouched", u.Status, e.fakes.msgkart.Writes("m-1"))
	}
}

// testKeySpec: an http target sends what its spec says. The chat target is
// msgkart through the shipped spec; a copy of it (relative to targets.yaml)
// whose disable has no read and posts to .../enable leaves the user enabled.
func testKeySpec(t *testing.T) {
	run := func(spec string) (*e2e, result, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.msgkart.AddUser("m-1", msgkarttest.User{Status: "Available"})
		cfg := e.baseYAML()
		if spec != "" {
			b, err := os.ReadFile("../../adapters/declarative/specs/msgkart.yaml")
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Replace(string(b), "/api/v1/business/user/{user}/disable", "/api/v1/business/user/{user}/enable", 1)
			text = text[:strings.Index(text, "\nread:")] + "\n"
			e.write(spec, text)
			cfg = setKey(t, cfg, "chat", "spec", spec)
		}
		res, rows := e.runKey(cfg, opsCSV("chat,m-1,disable"), "r")
		return e, res, rows
	}
	e, res, rows := run("")
	wantExit(t, "spec: builtin:msgkart", res, exitOK)
	wantOutcome(t, "spec: builtin:msgkart", rows, "m-1", "applied", "")
	if u, _ := e.fakes.msgkart.User("m-1"); u.Status != "Disabled" {
		t.Errorf("spec: builtin:msgkart: m-1 is %s, want Disabled", u.Status)
	}
	e, res, rows = run("altered.yaml")
	wantExit(t, "spec: altered.yaml", res, exitOK)
	wantOutcome(t, "spec: altered.yaml", rows, "m-1", "applied", "")
	if u, _ := e.fakes.msgkart.User("m-1"); u.Status != "Available" || e.fakes.msgkart.Writes("m-1") != 1 {
		t.Errorf("spec: altered.yaml: m-1 is %s after %d writes, want Available after the one write the spec sends", u.Status, e.fakes.msgkart.Writes("m-1"))
	}
}

// probe watches the requests under one path prefix: when each started, and
// the most that were in flight at once.
type probe struct {
	next   http.Handler
	prefix string

	mu       sync.Mutex
	starts   []time.Time
	inFlight int
	peak     int
}

func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, p.prefix) {
		p.next.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.starts = append(p.starts, time.Now())
	p.inFlight++
	p.peak = max(p.peak, p.inFlight)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	p.next.ServeHTTP(w, r)
}

// span is the time from the first request's start to the last one's, and
// how many there were.
func (p *probe) span() (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.starts) == 0 {
		return 0, 0
	}
	return p.starts[len(p.starts)-1].Sub(p.starts[0]), len(p.starts)
}

func (p *probe) maxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// epixelPaced disables n epixel users (one request each: epixel has no
// reads), each answered after latency, with the fakes' config changed by
// edit, and returns the probe on epixel's requests.
func epixelPaced(t *testing.T, n int, latency time.Duration, edit func(cfg string) string) *probe {
	e := newE2E(t)
	e.fakes.epixel.Faults.SetLatency(latency)
	p := &probe{next: e.fakes.handler(), prefix: fakePrefixes["epixel"]}
	e.serve(p)
	for i := 0; i < n; i++ {
		e.fakes.epixel.AddUser("e-"+itoa(i), epixeltest.User{Role: "Customer"})
	}
	res, rows := e.runKey(edit(e.baseYAML()), opsCSV(many(n, "shop,e-%d,disable")...), "r")
	wantExit(t, "paced run", res, exitOK)
	for i := 0; i < n; i++ {
		wantOutcome(t, "paced run", rows, "e-"+itoa(i), "applied", "")
	}
	if _, got := p.span(); got != n {
		t.Fatalf("%d requests reached epixel, want %d", got, n)
	}
	return p
}

func testKeyRate(t *testing.T) {
	// burst stays 4 (the fakes' config): 10 rows at rate 4 are 4 at once,
	// then 6 more a quarter second apart, 1.5s. At rate 1000 they take a
	// few milliseconds: the upper bound below has a contrast of 1.5s to
	// ~0, which no scheduler delay closes.
	t.Run("rate 4", func(t *testing.T) {
		t.Parallel()
		p := epixelPaced(t, 10, 0, func(cfg string) string { return setKey(t, cfg, "shop", "rate", "4") })
		if d, _ := p.span(); d < 1250*time.Millisecond {
			t.Errorf("rate 4: 10 requests came within %v, want >= 1.25s", d)
		}
	})
	t.Run("rate 1000", func(t *testing.T) {
		t.Parallel()
		p := epixelPaced(t, 10, 0, func(cfg string) string { return cfg })
		if d, _ := p.span(); d >= time.Second {
			t.Errorf("rate 1000: 10 requests took %v, want well under 1s", d)
		}
	})
}

func testKeyBurst(t *testing.T) {
	// At rate 2, 4 rows with burst 1 are half a second apart (1.5s); with
	// burst 4 they go at once. The upper bound (1s) has a contrast of 1.5s
	// to ~0.
	rate2 := func(t *testing.T, burst string) func(cfg string) string {
		return func(cfg string) string {
			return setKey(t, setKey(t, cfg, "shop", "rate", "2"), "shop", "burst", burst)
		}
	}
	t.Run("burst 1", func(t *testing.T) {
		t.Parallel()
		if d, _ := epixelPaced(t, 4, 0, rate2(t, "1")).span(); d < 1250*time.Millisecond {
			t.Errorf("burst 1 at rate 2: 4 requests came within %v, want >= 1.25s", d)
		}
	})
	t.Run("burst 4", func(t *testing.T) {
		t.Parallel()
		if d, _ := epixelPaced(t, 4, 0, rate2(t, "4")).span(); d >= time.Second {
			t.Errorf("burst 4 at rate 2: 4 requests took %v, want them at once (< 1s)", d)
		}
	})
}

func testKeyConcurrency(t *testing.T) {
	// Each answer takes 50ms, so 9 rows at rate 1000 overlap unless the cap
	// forbids it.
	slowEpixel := func(value string) func(cfg string) string {
		return func(cfg string) string { return setKey(t, cfg, "shop", "concurrency", value) }
	}
	if p := epixelPaced(t, 9, 50*time.Millisecond, slowEpixel("1")); p.maxInFlight() != 1 {
		t.Errorf("concurrency 1: %d requests in flight at once, want 1", p.maxInFlight())
	}
	if p := epixelPaced(t, 9, 50*time.Millisecond, slowEpixel("3")); p.maxInFlight() < 2 || p.maxInFlight() > 3 {
		t.Errorf("concurrency 3: at most %d requests in flight, want 2 or 3", p.maxInFlight())
	}
}

func testKeyTimeout(t *testing.T) {
	// Clearsquare answers after 500ms. A toggle is never resent, so a
	// timeout ends the row at once.
	run := func(timeout string) (*e2e, result, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.clearsquare.AddUser("c-1", clearsquaretest.User{Active: true})
		e.fakes.clearsquare.Faults.SetLatency(500 * time.Millisecond)
		cfg := setKey(t, e.baseYAML(), "admin", "timeout", timeout)
		res, rows := e.runKey(cfg, opsCSV("admin,c-1,toggle-status"), "r")
		return e, res, rows
	}
	e, res, rows := run("10s")
	wantExit(t, "timeout 10s", res, exitOK)
	wantOutcome(t, "timeout 10s", rows, "c-1", "applied", "")
	if u, _ := e.fakes.clearsquare.User("c-1"); u.Active {
		t.Error("timeout 10s: c-1 still active")
	}

	_, res, rows = run("100ms")
	wantExit(t, "timeout 100ms", res, exitIncomplete)
	if r := rows["c-1"]; r["error_code"] != "timeout" || (r["outcome"] != "unknown" && r["outcome"] != "failed") {
		t.Errorf("timeout 100ms: c-1 ended %s/%s (%s), want unknown or failed with error_code timeout",
			r["outcome"], r["error_code"], r["message"])
	}
}

func testKeyProtected(t *testing.T) {
	users := []string{"e-keep", "svc-1", "svc-2", "e-go"}
	run := func(protected string) *e2e {
		e := newE2E(t)
		for _, id := range users {
			e.fakes.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
		}
		cfg := e.baseYAML()
		if protected != "" {
			cfg = setKey(t, cfg, "shop", "protected", protected)
		}
		var ops []string
		for _, id := range users {
			ops = append(ops, "shop,"+id+",disable")
		}
		res, rows := e.runKey(cfg, opsCSV(ops...), "r")
		if protected == "" {
			wantExit(t, "no protected", res, exitOK)
			for _, id := range users {
				wantOutcome(t, "no protected", rows, id, "applied", "")
			}
			return e
		}
		wantExit(t, "protected", res, exitIncomplete) // skipped rows make exit 1
		for _, id := range users[:3] {
			wantOutcome(t, "protected", rows, id, "skipped", "")
		}
		wantOutcome(t, "protected", rows, "e-go", "applied", "")
		return e
	}
	e := run("")
	for _, id := range users {
		if u, _ := e.fakes.epixel.User(id); !u.Blocked {
			t.Errorf("no protected: %s not blocked", id)
		}
	}

	e = run(`["e-keep", "svc-*"]`)
	for _, id := range users[:3] {
		if u, _ := e.fakes.epixel.User(id); u.Blocked || e.fakes.epixel.Writes(id) != 0 {
			t.Errorf("protected: %s blocked=%v after %d writes, want untouched", id, u.Blocked, e.fakes.epixel.Writes(id))
		}
	}
	if u, _ := e.fakes.epixel.User("e-go"); !u.Blocked {
		t.Error("protected: e-go (not protected) not blocked")
	}
	if n := e.fakes.epixel.Requests(); n != 1 {
		t.Errorf("protected: %d requests reached epixel, want 1 (e-go's)", n)
	}
}

// runBinary runs the built userbatch with env added to the environment less
// any proxy settings, and returns its result.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func testKeyInsecureHTTP(t *testing.T) {
	// kii.invalid is not loopback, so plain http to it needs insecure_http.
	// The binary reaches it through HTTP_PROXY, the fakes' own server (Go's
	// server takes absolute-form request URIs): a process of its own, since
	// Go reads the proxy settings once per process.
	run := func(insecure bool) (*e2e, result) {
		e := newE2E(t)
		kiiUsers(e, "k-1")
		cfg := setKey(t, e.baseYAML(), "apps", "base_url", "http://kii.invalid/kii")
		if insecure {
			cfg = setKey(t, cfg, "apps", "insecure_http", "true")
		}
		cfgPath := e.write("targets.yaml", cfg)
		in := e.write("ops.csv", opsCSV("apps,k-1,disable"))
		res := runBinary(t, []string{"HTTP_PROXY=" + e.srv.URL}, "run", "-c", cfgPath, "-o", filepath.Join(e.dir, "r"), in)
		return e, res
	}
	e, res := run(false)
	wantExit(t, "no insecure_http", res, exitBadInput)
	if !strings.Contains(res.stderr, "insecure_http") {
		t.Errorf("no insecure_http: the refusal does not say how to allow it:\n%s", res.stderr)
	}
	if n := e.fakes.kii.Requests(); n != 0 {
		t.Errorf("no insecure_http: %d requests reached kii, want 0", n)
	}

	e, res = run(true)
	wantExit(t, "insecure_http: true", res, exitOK)
	wantKiiDisabled(t, "insecure_http: true", e, true)
}

func testKeyMaxChanges(t *testing.T) {
	ids := many(10, "k-%d")
	run := func(maxChanges string) (*e2e, result) {
		e := newE2E(t)
		kiiUsers(e, ids...)
		cfg := e.baseYAML()
		if maxChanges != "" {
			cfg = setKey(t, cfg, "apps", "max_changes", maxChanges)
		}
		res, _ := e.runKey(cfg, opsCSV(many(10, "apps,k-%d,disable")...), "r")
		return e, res
	}
	disabled := func(e *e2e) (n, writes int) {
		for _, id := range ids {
			if u, _ := e.fakes.kii.User(id); u.Disabled {
				n++
			}
			writes += e.fakes.kii.Writes(id)
		}
		return n, writes
	}
	e, res := run("")
	wantExit(t, "no max_changes", res, exitOK)
	if n, _ := disabled(e); n != 10 {
		t.Errorf("no max_changes: %d of 10 disabled", n)
	}

	e, res = run("5")
	wantExit(t, "max_changes 5", res, exitHeld)
	if n, writes := disabled(e); n != 0 || writes != 0 {
		t.Errorf("max_changes 5: %d disabled after %d writes, want none", n, writes)
	}
}

func testKeyMaxWait(t *testing.T) {
	// kii's first read answers 429 with Retry-After: 2.
	run := func(maxWait string) (*e2e, result, map[string]map[string]string) {
		e := newE2E(t)
		kiiUsers(e, "k-1")
		e.fakes.kii.Faults.Add(fakehttp.Rule{User: "k-1", Method: http.MethodGet, Times: 1,
			Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "2"}})
		cfg := e.baseYAML()
		if maxWait != "" {
			cfg = setKey(t, cfg, "apps", "max_wait", maxWait)
		}
		res, rows := e.runKey(cfg, opsCSV("apps,k-1,disable"), "r")
		return e, res, rows
	}
	e, res, rows := run("")
	wantExit(t, "default max_wait", res, exitOK)
	wantOutcome(t, "default max_wait", rows, "k-1", "applied", "")
	wantKiiDisabled(t, "default max_wait", e, true)

	e, res, rows = run("1s")
	wantExit(t, "max_wait 1s", res, exitIncomplete)
	wantOutcome(t, "max_wait 1s", rows, "k-1", "failed", "wait_too_long")
	wantKiiDisabled(t, "max_wait 1s", e, false)
}

func testKeyHidesInactive(t *testing.T) {
	// A provider that hides inactive users (Atlassian) answers 404 to the
	// read of s-1; only a target that knows it sends the enable.
	run := func(hides string) (*scimtest.Server, result, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.scim = scimtest.New(scimtest.Options{Token: e.fakes.creds.scimToken, HideInactive: true})
		e.serve(e.fakes.handler())
		e.fakes.scim.AddUser(scimtest.User{ID: "s-1", UserName: "s1@example.com", Active: false})
		cfg := e.baseYAML()
		if hides != "" {
			cfg = setKey(t, cfg, "saas", "hides_inactive", hides)
		}
		res, rows := e.runKey(cfg, opsCSV("saas,s-1,enable"), "r")
		return e.fakes.scim, res, rows
	}
	fake, res, rows := run("")
	wantExit(t, "no hides_inactive", res, exitIncomplete)
	wantOutcome(t, "no hides_inactive", rows, "s-1", "failed", "not_found")
	if u, _ := fake.User("s-1"); u.Active || fake.Writes("s-1") != 0 {
		t.Errorf("no hides_inactive: s-1 active=%v after %d writes, want untouched", u.Active, fake.Writes("s-1"))
	}

	fake, res, rows = run("true")
	wantExit(t, "hides_inactive: true", res, exitOK)
	wantOutcome(t, "hides_inactive: true", rows, "s-1", "applied", "")
	if u, _ := fake.User("s-1"); !u.Active {
		t.Error("hides_inactive: true: s-1 still inactive")
	}
}

func testKeyLedger(t *testing.T) {
	// The same file run twice into two report directories: only a ledger
	// remembers the first run.
	run := func(ledger bool) (*e2e, map[string]map[string]string) {
		e := newE2E(t)
		e.fakes.epixel.AddUser("e-1", epixeltest.User{Role: "Customer"})
		cfg := e.baseYAML()
		if ledger {
			cfg += "ledger: sqlite:" + filepath.Join(e.dir, "l.db") + "\n"
		}
		ops := opsCSV("shop,e-1,disable")
		res, rows := e.runKey(cfg, ops, "r1")
		wantExit(t, "first run", res, exitOK)
		wantOutcome(t, "first run", rows, "e-1", "applied", "")
		res, rows = e.runKey(cfg, ops, "r2")
		wantExit(t, "second run", res, exitOK)
		return e, rows
	}
	e, _ := run(false)
	if n := e.fakes.epixel.Writes("e-1"); n != 2 {
		t.Errorf("no ledger: e-1 got %d writes over two runs, want 2 (each run sends)", n)
	}

	e, rows := run(true)
	wantOutcome(t, "ledger, second run", rows, "e-1", "already", "")
	if d := rows["e-1"]["detail"]; !strings.Contains(d, "done by run") {
		t.Errorf("ledger, second run: detail %q, want it to name the run that did it", d)
	}
	if n := e.fakes.epixel.Writes("e-1"); n != 1 {
		t.Errorf("ledger: e-1 got %d writes over two runs, want 1", n)
	}
}

func testKeyWebhook(t *testing.T) {
	// Without notify nothing is POSTed anywhere (there is nowhere to); with
	// it, the run ends by POSTing its summary. The URL's path is a secret.
	var mu sync.Mutex
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
		}
	}))
	t.Cleanup(hook.Close)
	secret := randomHex()
	url := hook.URL + "/hooks/" + secret

	e := newE2E(t)
	e.fakes.epixel.AddUser("e-1", epixeltest.User{Role: "Customer"})
	cfg := e.baseYAML() + "notify:\n  webhook: " + url + "\n"
	res, rows := e.runKey(cfg, opsCSV("shop,e-1,disable"), "r")
	wantExit(t, "notify.webhook", res, exitOK)
	wantOutcome(t, "notify.webhook", rows, "e-1", "applied", "")
	if strings.Contains(res.stdout+res.stderr, secret) {
		t.Error("notify.webhook: the webhook URL was printed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) == 0 {
		t.Fatal("notify.webhook: no POST reached the webhook by the end of the run: the run does not call it (job.Notify is not wired into run)")
	}
	var got struct {
		Text    string `json:"text"`
		Summary struct {
			Rows     int            `json:"rows"`
			Outcomes map[string]int `json:"outcomes"`
			ExitCode *int           `json:"exit_code"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(bodies[0], &got); err != nil {
		t.Fatalf("notify.webhook: the POST is not JSON: %v\n%s", err, bodies[0])
	}
	if got.Text == "" || got.Summary.Rows != 1 || got.Summary.Outcomes["applied"] != 1 ||
		got.Summary.ExitCode == nil || *got.Summary.ExitCode != exitOK {
		t.Errorf("notify.webhook: the POST holds %s; want text and a summary of 1 applied row, exit_code 0", bodies[0])
	}
}

var takesList = regexp.MustCompile(`a (\w+) target takes: ([a-z_, ]+)\)`)

// TestConfigKeyTheVendorDoesNotUse: a credential or setting the target's
// vendor never sends (apikey on a SCIM target, a kii app_id on msgkart) is
// refused at its line, naming the keys that vendor takes; nothing is sent.
func TestConfigKeyTheVendorDoesNotUse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		target, vendor, key string
		takes, not          []string // keys the error must list, and must not
	}{
		{"saas", "scim", "apikey", []string{"token", "hides_inactive"}, []string{"apikey"}},
		{"admin", "clearsquare", "apikey", []string{"token"}, []string{"apikey", "app_id"}},
		{"apps", "kii", "apikey", []string{"token", "app_id"}, []string{"apikey"}},
		{"chat", "http", "token", []string{"apikey", "email", "spec"}, []string{"token"}}, // msgkart through its spec
		{"saas", "scim", "app_id", []string{"token", "hides_inactive"}, []string{"app_id"}},
		{"apps", "kii", "hides_inactive", []string{"app_id"}, []string{"hides_inactive"}},
		{"shop", "epixel", "email", []string{"apikey", "token"}, []string{"email"}},
	}
	for _, c := range cases {
		t.Run(c.vendor+"/"+c.key, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t)
			cfg := setKey(t, e.baseYAML(), c.target, c.key, "x1")
			line := slices.Index(strings.Split(cfg, "\n"), "    "+c.key+": x1") + 1
			cfgPath := e.write("t.yaml", cfg)
			in := e.write("ops.csv", opsCSV("apps,k-1,disable"))
			for _, cmd := range [][]string{{"validate", "-c", cfgPath, in}, {"run", "-c", cfgPath, "-o", filepath.Join(e.dir, "out"), in}} {
				res := e.run(cmd...)
				wantExit(t, cmd[0], res, exitBadInput)
				want := fmt.Sprintf("line %d: target %s:", line, c.target)
				if !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, c.key) {
					t.Errorf("%s: want %q naming %s; stderr:\n%s", cmd[0], want, c.key, res.stderr)
				}
				m := takesList.FindStringSubmatch(res.stderr)
				if m == nil || m[1] != c.vendor {
					t.Fatalf("%s: the error does not list the keys a %s target takes:\n%s", cmd[0], c.vendor, res.stderr)
				}
				keys := strings.Split(m[2], ", ")
				for _, k := range c.takes {
					if !slices.Contains(keys, k) {
						t.Errorf("%s: %s is missing from the keys %s takes: %q", cmd[0], k, c.vendor, keys)
					}
				}
				for _, k := range c.not {
					if slices.Contains(keys, k) {
						t.Errorf("%s: %s is listed among the keys %s takes: %q", cmd[0], k, c.vendor, keys)
					}
				}
			}
			if n := e.kiiWrites([]string{"k-1"}); n != 0 {
				t.Errorf("%d writes were sent with a refused config", n)
			}
		})
	}
}
