package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
)

// TestEpixelCaptivePortalIsUnknown: something in front of epixel answers
// every request 200 with an HTML page. Nothing says the change was made, so
// the row is unknown (check by hand), never applied, and undo.csv offers
// nothing to reverse.
func TestEpixelCaptivePortalIsUnknown(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-portal", epixeltest.User{Role: "Customer"})
	fakes := e.fakes.handler()
	var portal atomic.Int64
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, fakePrefixes["epixel"]+"/") {
			fakes.ServeHTTP(w, r)
			return
		}
		portal.Add(1)
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>captive portal: please log in</body></html>")
	}))
	in := e.write("ops.csv", "target,user,action\nshop,e-portal,disable\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitIncomplete, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 || rows[0]["outcome"] != "unknown" || rows[0]["error_code"] != "bad_response" ||
		!strings.Contains(rows[0]["message"], "captive portal") {
		t.Fatalf("report %v, want one unknown bad_response row quoting the page", rows)
	}
	if portal.Load() == 0 {
		t.Fatal("the portal saw no request")
	}
	if u, _ := e.fakes.epixel.User("e-portal"); u.Blocked || e.fakes.epixel.Requests() != 0 {
		t.Errorf("the vendor was reached: %+v, %d requests", u, e.fakes.epixel.Requests())
	}
	if undo := undoRows(t, out); len(undo) != 0 {
		t.Errorf("undo.csv offers %v for a change nobody confirmed", undo)
	}
}

// undoRows reads undo.csv, which may be absent when nothing was applied.
func undoRows(t *testing.T, dir string) []map[string]string {
	t.Helper()
	p := filepath.Join(dir, "undo.csv")
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil
	}
	return readCSV(t, p)
}

// TestEpixelDowngradeAlreadyBlocks: an offboarding row (downgrade to
// Customer, block_user) for a user who already is a Customer ends applied,
// and the user is blocked at the vendor: epixel skips the block when the
// role is already right, so userbatch sends it itself.
func TestEpixelDowngradeAlreadyBlocks(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-cust", epixeltest.User{Role: "Customer"})
	in := e.write("ops.csv", "target,user,action,role,block_user\nshop,e-cust,downgrade-role,Customer,yes\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitOK {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitOK, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 || rows[0]["outcome"] != "applied" {
		t.Fatalf("report %v, want the row applied", rows)
	}
	if !strings.Contains(rows[0]["message"]+rows[0]["detail"], "role already right, user blocked") {
		t.Errorf("row %v does not say the role was already right and the user was blocked", rows[0])
	}
	if u, _ := e.fakes.epixel.User("e-cust"); !u.Blocked || u.Role != "Customer" {
		t.Errorf("epixel user %+v, want a blocked Customer", u)
	}
}

// TestClearsquareUntrustedCertificateFails: a toggle that never left because
// the vendor's certificate is not trusted is failed (safe to re-run once
// fixed), not unknown.
func TestClearsquareUntrustedCertificateFails(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	vendor := httptest.NewUnstartedServer(e.fakes.handler())
	vendor.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	vendor.StartTLS()
	defer vendor.Close()
	e.fakes.clearsquare.AddUser("c-1", clearsquaretest.User{Active: true})
	cfg := e.write("tls.yaml", clearsquareTarget(vendor.URL+fakePrefixes["clearsquare"], e.fakes.creds.clearsquareToken))
	in := e.write("ops.csv", "target,user,action\nadmin,c-1,toggle-status\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", cfg, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitIncomplete, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 || rows[0]["outcome"] != "failed" || rows[0]["error_code"] != "tls" {
		t.Fatalf("report %v, want the toggle failed with error_code tls", rows)
	}
	if n := e.fakes.clearsquare.Requests(); n != 0 {
		t.Errorf("the vendor saw %d requests", n)
	}
}

// TestClearsquareProxyRefusesConnectFails runs the binary behind a proxy (on
// loopback) that answers every CONNECT with 502: nothing reached the vendor,
// so the toggles end failed, never unknown. It runs the built binary rather
// than runMain because net/http reads HTTPS_PROXY once per process. The
// vendor's host name is only ever sent to the proxy, never resolved.
func TestClearsquareProxyRefusesConnectFails(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	var connects atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			connects.Add(1)
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()
	cfg := e.write("proxied.yaml", clearsquareTarget("https://admin.clearsquare.example", e.fakes.creds.clearsquareToken))
	in := e.write("ops.csv", "target,user,action\nadmin,c-1,toggle-status\nadmin,c-2,toggle-status\n")
	out := filepath.Join(e.dir, "report")
	cmd := exec.Command(binPath, "run", "-c", cfg, "-o", out, in)
	cmd.Env = append(withoutProxyEnv(os.Environ()), "HTTPS_PROXY="+proxy.URL, "NO_PROXY=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitIncomplete {
		t.Fatalf("exit %v, want %d\n%s", err, exitIncomplete, stderr.String())
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 2 {
		t.Fatalf("report has %d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r["outcome"] != "failed" || r["error_code"] != "network" {
			t.Errorf("%s: %s/%s (%s), want failed/network", r["user"], r["outcome"], r["error_code"], r["message"])
		}
	}
	if connects.Load() == 0 {
		t.Error("the proxy saw no CONNECT: the run did not go through it")
	}
}

// clearsquareTarget is a targets.yaml with one clearsquare target, "admin".
func clearsquareTarget(base, token string) string {
	return fmt.Sprintf("targets:\n  admin:\n    vendor: clearsquare\n    base_url: %s\n    token: %s\n"+
		"    rate: 1000\n    burst: 4\n    concurrency: 4\n    timeout: 10s\n", base, token)
}

// withoutProxyEnv drops the proxy settings the test process may have.
func withoutProxyEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// TestFaultsThroughTheBinary injects every fault the vendors can throw and
// checks that no row is lost, no idempotent row fails while retries remain,
// no toggle is sent twice, and attempts are counted.
func TestFaultsThroughTheBinary(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	f := e.fakes
	faults := map[string]fakehttp.Fault{
		"e-503":    {Status: 503},
		"e-500":    {Status: 500},
		"e-reset":  {Reset: true},
		"e-drop":   {DropAfter: true},
		"e-slow":   {Delay: time.Minute},
		"e-429":    {Status: 429, RetryAfter: "1"},
		"c-429":    {Status: 429, RetryAfter: "1"},
		"c-drop":   {DropAfter: true},
		"c-503":    {Status: 503},
		"c-reset":  {Reset: true},
		"c-slow":   {Delay: time.Minute},
		"k-500":    {Status: 500},
		"k-reset":  {Reset: true},
		"e-always": {Status: 502},
	}
	var rows []string
	for _, id := range []string{"e-503", "e-500", "e-reset", "e-drop", "e-slow", "e-429", "e-ok", "e-always"} {
		f.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
		times := 1
		if id == "e-always" {
			times = 0
		}
		if fl, ok := faults[id]; ok {
			f.epixel.Faults.Add(fakehttp.Rule{User: id, Times: times, Fault: fl})
		}
		rows = append(rows, "shop,"+id+",disable")
	}
	for _, id := range []string{"c-429", "c-drop", "c-503", "c-reset", "c-slow", "c-ok"} {
		f.clearsquare.AddUser(id, clearsquaretest.User{Active: true})
		if fl, ok := faults[id]; ok {
			f.clearsquare.Faults.Add(fakehttp.Rule{User: id, Times: 1, Fault: fl})
		}
		rows = append(rows, "admin,"+id+",toggle-status")
	}
	for _, id := range []string{"k-500", "k-reset"} {
		f.kii.AddUser(id, kiitest.User{})
		f.kii.Faults.Add(fakehttp.Rule{User: id, Method: http.MethodPut, Times: 1, Fault: faults[id]})
		rows = append(rows, "apps,"+id+",disable")
	}
	cfg := strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 1000), "timeout: 10s", "timeout: 1s")
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	p := e.start("run", "-c", e.write("fast-timeout.yaml", cfg), "-o", out, in, "--log-level", "debug", "--log-format", "json")
	if code := p.wait(); code != exitIncomplete {
		t.Fatalf("exit %d, want 1\n%s", code, p.stderr.String())
	}
	got := rowsByUser(readCSV(t, filepath.Join(out, "report.csv")))
	if len(got) != len(rows) {
		t.Fatalf("report has %d rows, want %d", len(got), len(rows))
	}
	want := map[string]string{
		"e-503": "applied 2", "e-500": "applied 2", "e-reset": "applied 2", "e-drop": "applied 2",
		"e-slow": "applied 2", "e-429": "applied 2", "e-ok": "applied 1", "e-always": "unknown 5",
		"c-429": "applied 2", "c-drop": "unknown 1", "c-503": "unknown 1", "c-reset": "unknown 1",
		"c-slow": "unknown 1", "c-ok": "applied 1",
		"k-500": "applied 3", "k-reset": "applied 3", // read, failed write, write
	}
	for id, w := range want {
		if g := got[id]["outcome"] + " " + got[id]["attempts"]; g != w {
			t.Errorf("%s: %s, want %s (%s)\n%s", id, g, w, got[id]["message"], grepLines(p.stderr.String(), "\"line\":"+got[id]["line"]+","))
		}
	}
	for id, w := range map[string]int{"c-429": 1, "c-drop": 1, "c-503": 0, "c-reset": 0, "c-slow": 0, "c-ok": 1} {
		if n := f.clearsquare.Writes(id); n != w {
			t.Errorf("toggle %s processed %d times, want %d", id, n, w)
		}
	}
	for _, id := range []string{"e-503", "e-500", "e-reset", "e-drop", "e-slow", "e-429", "e-ok"} {
		if u, _ := f.epixel.User(id); !u.Blocked {
			t.Errorf("%s not blocked", id)
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

// TestRetryAfterPastMaxWait: a vendor asking to wait longer than the
// target's max_wait (default 5m) fails that row at once with
// wait_too_long, names both durations, and pauses nothing: the other rows
// of the same target are applied and the run ends in seconds. A Retry-After
// past int64 is clamped, not a negative wait.
func TestRetryAfterPastMaxWait(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	counter := &hostilePathCounter{next: e.fakes.handler()}
	e.serve(counter)
	asks := map[string]string{"k-week": "999999", "k-overflow": "99999999999999999999999"}
	for user, ra := range asks {
		e.fakes.kii.AddUser(user, kiitest.User{})
		e.fakes.kii.Faults.Add(fakehttp.Rule{User: user, Method: http.MethodGet,
			Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: ra}})
	}
	others := []string{"k1", "k2", "k3", "k4", "k5"}
	for _, id := range others {
		e.fakes.kii.AddUser(id, kiitest.User{})
	}
	in := e.write("ops.csv", opsCSV("apps,k-week,disable", "apps,k-overflow,disable",
		"apps,k1,disable", "apps,k2,disable", "apps,k3,disable", "apps,k4,disable", "apps,k5,disable"))
	out := filepath.Join(e.dir, "report")
	code, took, p := e.hostileStart("run", "-c", e.cfg, "-o", out, in)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 1 (two rows fail)\n%s", code, p.stderr.String())
	}
	if took > 30*time.Second {
		t.Errorf("the run took %v: it waited for a Retry-After beyond max_wait", took)
	}
	rows := rowsByUser(readCSV(t, filepath.Join(out, "report.csv")))
	for user, ra := range asks {
		r := rows[user]
		asked := httpcall.ParseRetryAfter(ra, time.Now()).Round(time.Second).String()
		if r["outcome"] != "failed" || r["error_code"] != "wait_too_long" {
			t.Errorf("%s (Retry-After: %s): %s/%s, want failed/wait_too_long", user, ra, r["outcome"], r["error_code"])
		}
		text := r["detail"] + " " + r["message"]
		if !strings.Contains(text, asked) || !strings.Contains(text, "5m0s") || !strings.Contains(text, "max_wait") {
			t.Errorf("%s: detail %q message %q: want both %s (asked) and 5m0s (max_wait) named", user, r["detail"], r["message"], asked)
		}
		if strings.Contains(text, "wait -") {
			t.Errorf("%s: a negative wait: %q", user, text)
		}
		if n := counter.requests(user); n != 1 {
			t.Errorf("%s: %d requests, want 1 (a wait past max_wait is not retried)", user, n)
		}
		if e.fakes.kii.Writes(user) != 0 {
			t.Errorf("%s was written", user)
		}
	}
	for _, id := range others {
		if r := rows[id]; r["outcome"] != "applied" {
			t.Errorf("%s: %s (%s), want applied: the target must not pause for a wait it will not honour", id, r["outcome"], r["detail"])
		}
		if u, _ := e.fakes.kii.User(id); !u.Disabled {
			t.Errorf("%s not disabled at the vendor", id)
		}
	}
	recs, _ := hostileRecords(p.stderr.String())
	if n := len(hostileByMessage(recs, "pausing the target")); n != 0 {
		t.Errorf("%d pause records: a Retry-After past max_wait paused the target", n)
	}
	for _, r := range hostileByMessage(recs, "progress") {
		if _, paused := r["paused_apps"]; paused {
			t.Errorf("progress says apps is paused: %v", r)
		}
	}
}

// TestRetryAfterWithinMaxWait: with max_wait: 2s, a Retry-After of 1
// is waited out and the row applied; one of 3 is past it and fails naming
// 3s and 2s.
func TestRetryAfterWithinMaxWait(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	counter := &hostilePathCounter{next: e.fakes.handler()}
	e.serve(counter)
	for _, id := range []string{"k-short", "k-long", "k-ok"} {
		e.fakes.kii.AddUser(id, kiitest.User{})
	}
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: "k-short", Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}})
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: "k-long", Method: http.MethodGet,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3"}})
	cfg := e.write("kii.yaml", e.hostileKiiYAML("    max_wait: 2s\n    concurrency: 1\n"))
	in := e.write("ops.csv", opsCSV("apps,k-short,disable", "apps,k-long,disable", "apps,k-ok,disable"))
	out := filepath.Join(e.dir, "report")
	code, _, p := e.hostileStart("run", "-c", cfg, "-o", out, in)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 1 (k-long fails)\n%s", code, p.stderr.String())
	}
	rows := rowsByUser(readCSV(t, filepath.Join(out, "report.csv")))
	// Attempts: the read answered 429, the read again, the write.
	if r := rows["k-short"]; r["outcome"] != "applied" || r["attempts"] != "3" {
		t.Errorf("k-short: %s after %s attempts (%s %s), want applied after 3", r["outcome"], r["attempts"], r["detail"], r["message"])
	}
	if u, _ := e.fakes.kii.User("k-short"); !u.Disabled || e.fakes.kii.Writes("k-short") != 1 {
		t.Errorf("k-short at the vendor: disabled %v, %d writes; want disabled once", u.Disabled, e.fakes.kii.Writes("k-short"))
	}
	r := rows["k-long"]
	if r["outcome"] != "failed" || r["error_code"] != "wait_too_long" {
		t.Errorf("k-long: %s/%s, want failed/wait_too_long", r["outcome"], r["error_code"])
	}
	if text := r["detail"] + " " + r["message"]; !strings.Contains(text, "3s") || !strings.Contains(text, "2s") {
		t.Errorf("k-long: detail %q message %q: want 3s (asked) and 2s (max_wait) named", r["detail"], r["message"])
	}
	if n := counter.requests("k-long"); n != 1 {
		t.Errorf("k-long: %d requests, want 1", n)
	}
	if rows["k-ok"]["outcome"] != "applied" {
		t.Errorf("k-ok: %s", rows["k-ok"]["outcome"])
	}
	// k-short's 1s is waited out: nothing is sent for a second after its
	// 429. k-long's 3s is not: the next request follows at once.
	reqs := counter.list()
	if gap, ok := hostileGapAfter(reqs, "k-short"); !ok || gap < time.Second {
		t.Errorf("after k-short's 429 (Retry-After: 1) the next request came %v later, want >= 1s", gap)
	}
	if gap, ok := hostileGapAfter(reqs, "k-long"); ok && gap >= 2*time.Second {
		t.Errorf("after k-long's 429 (Retry-After: 3, past max_wait 2s) the target waited %v", gap)
	}
}

// hostileGapAfter is the time from the end of the first 429 answered for
// user to the start of the next request; ok is false when none followed.
func hostileGapAfter(reqs []hostileRequest, user string) (time.Duration, bool) {
	for i, q := range reqs {
		if q.status != http.StatusTooManyRequests || !hostilePathNames(q.path, user) {
			continue
		}
		var next time.Time
		for _, n := range reqs[i+1:] {
			if n.start.After(q.end) && (next.IsZero() || n.start.Before(next)) {
				next = n.start
			}
		}
		if next.IsZero() {
			return 0, false
		}
		return next.Sub(q.end), true
	}
	return 0, false
}

// TestCredentialsCircuitBreaker: a wrong apikey on msgkart stops that
// target after 3 refusals; its 12 other rows end skipped, the kii target
// goes on, and the log says so once, loudly.
func TestCredentialsCircuitBreaker(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	const badKey = "wrongkey0123456789abcdef"
	rows := many(15, "chat,m%02d,disable")
	for i := 0; i < 15; i++ {
		e.fakes.msgkart.AddUser(fmt.Sprintf("m%02d", i), msgkarttest.User{Status: "Busy"})
	}
	for _, id := range []string{"k1", "k2", "k3"} {
		e.fakes.kii.AddUser(id, kiitest.User{})
		rows = append(rows, "apps,"+id+",disable")
	}
	cfg := e.write("bad-chat.yaml", e.hostileBadMsgkartYAML(badKey))
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	code, _, p := e.hostileStart("run", "-c", cfg, "-o", out, in, "--log-format", "json")
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 1\n%s", code, p.stderr.String())
	}
	if n := e.fakes.msgkart.Requests(); n != 3 {
		t.Errorf("msgkart received %d requests with the refused key, want exactly 3", n)
	}
	report := readCSV(t, filepath.Join(out, "report.csv"))
	failed, skipped := 0, 0
	for _, r := range report {
		switch {
		case strings.HasPrefix(r["user"], "k"):
			if r["outcome"] != "applied" {
				t.Errorf("kii %s: %s (%s): another target's refusal stopped it", r["user"], r["outcome"], r["detail"])
			}
		case r["outcome"] == "failed" && r["error_code"] == "unauthorized":
			failed++
		case r["outcome"] == "skipped" && strings.HasPrefix(r["detail"], "credentials refused"):
			skipped++
		default:
			t.Errorf("msgkart %s: %s/%s %q", r["user"], r["outcome"], r["error_code"], r["detail"])
		}
	}
	if failed != 3 || skipped != 12 {
		t.Errorf("msgkart rows: %d failed unauthorized, %d skipped 'credentials refused...'; want 3 and 12", failed, skipped)
	}
	for _, id := range []string{"k1", "k2", "k3"} {
		if u, _ := e.fakes.kii.User(id); !u.Disabled {
			t.Errorf("kii %s not disabled", id)
		}
	}
	recs, other := hostileRecords(p.stderr.String())
	loud := hostileByMessage(recs, "CREDENTIALS REFUSED")
	if len(loud) != 1 {
		t.Fatalf("%d records say CREDENTIALS REFUSED, want exactly 1\n%s", len(loud), p.stderr.String())
	}
	if loud[0]["level"] != "error" || loud[0]["target"] != "chat" || !strings.Contains(loud[0]["message"].(string), "stopped") {
		t.Errorf("the credentials record: %v; want level error, target chat, saying the target stopped", loud[0])
	}
	if strings.Count(p.stderr.String(), "CREDENTIALS REFUSED") != 1 {
		t.Errorf("CREDENTIALS REFUSED appears %d times in stderr", strings.Count(p.stderr.String(), "CREDENTIALS REFUSED"))
	}
	if len(other) != 0 {
		t.Errorf("stderr lines that are not JSON: %q", other)
	}
	hostileNoSecret(t, badKey, p.stderr.String(), p.stdout.String(), out)
}

// TestClearsquareGoneUsersKeepTarget: clearsquare answers the same
// 401 for a bad token and for an unknown user (README, "Targets that stop"). Once this run's
// token has been accepted, three users already deleted in a row (common in
// a mass deactivation) prove nothing about the token: the target must go on
// and apply the rows after them, not skip them as "credentials refused".
func TestClearsquareGoneUsersKeepTarget(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	for _, id := range []string{"c-ok1", "c-ok2", "c-ok3"} {
		e.fakes.clearsquare.AddUser(id, clearsquaretest.User{Active: true})
	}
	cfg := e.write("admin.yaml", "targets:\n  admin:\n    vendor: clearsquare\n    base_url: "+e.srv.URL+
		"/clearsquare\n    token: "+e.fakes.creds.clearsquareToken+"\n    rate: 1000\n    concurrency: 1\n")
	in := e.write("ops.csv", opsCSV("admin,c-ok1,toggle-status", "admin,gone1,toggle-status", "admin,gone2,toggle-status",
		"admin,gone3,toggle-status", "admin,c-ok2,toggle-status", "admin,c-ok3,toggle-status"))
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", cfg, "-o", out, in, "--log-format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want 1 (three unknown users)\n%s", res.code, res.stderr)
	}
	rows := rowsByUser(readCSV(t, filepath.Join(out, "report.csv")))
	if rows["c-ok1"]["outcome"] != "applied" {
		t.Fatalf("c-ok1: %s: the token was not accepted", rows["c-ok1"]["outcome"])
	}
	for _, id := range []string{"c-ok2", "c-ok3"} {
		if r := rows[id]; r["outcome"] != "applied" || e.fakes.clearsquare.Writes(id) != 1 {
			t.Errorf("%s: %s %q (%d writes); want applied: the token that toggled c-ok1 was not refused", id, r["outcome"], r["detail"], e.fakes.clearsquare.Writes(id))
		}
	}
	if strings.Contains(res.stderr, "CREDENTIALS REFUSED") {
		t.Errorf("the log says the credentials were refused, though the token worked on c-ok1")
	}
}
