package main

// Operator-level tests for issue 8: hostile vendors, hostile input and
// unattended runs, driven through the command line (runMain or the built
// binary) against the fakes on loopback.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
)

// hostileLimit bounds every run of the binary here: a run that waits out a
// vendor's Retry-After would take minutes or days; it is killed and failed.
const hostileLimit = 90 * time.Second

// hostileStart runs the binary to its end, killing it past hostileLimit.
// It returns the exit code, how long the run took, and the process.
func (e *e2e) hostileStart(args ...string) (int, time.Duration, *process) {
	e.t.Helper()
	t0 := time.Now()
	p := e.start(args...)
	var killed atomic.Bool
	timer := time.AfterFunc(hostileLimit, func() {
		killed.Store(true)
		_ = p.cmd.Process.Kill()
	})
	code := p.wait()
	timer.Stop()
	took := time.Since(t0)
	if killed.Load() {
		e.t.Fatalf("the run did not end within %v: killed\n%s", hostileLimit, p.stderr.String())
	}
	return code, took, p
}

// hostileRecords parses a JSON log, one record per line. A line that is
// not a JSON object is returned in other.
func hostileRecords(stderr string) (recs []map[string]any, other []string) {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			other = append(other, line)
			continue
		}
		recs = append(recs, m)
	}
	return recs, other
}

// hostileDuplicateKeys lists the top-level keys a JSON object line holds
// more than once; nil for a line that is not a JSON object.
func hostileDuplicateKeys(line string) []string {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	var dup []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dup
		}
		key, _ := tok.(string)
		if seen[key] {
			dup = append(dup, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return dup
		}
	}
	return dup
}

// hostileByMessage returns the records whose message holds substr.
func hostileByMessage(recs []map[string]any, substr string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if msg, _ := r["message"].(string); strings.Contains(msg, substr) {
			out = append(out, r)
		}
	}
	return out
}

// hostilePathCounter notes every request: its path, when it started and
// ended, and its status.
type hostilePathCounter struct {
	next http.Handler
	mu   sync.Mutex
	reqs []hostileRequest
}

type hostileRequest struct {
	path       string // escaped
	start, end time.Time
	status     int
}

func (c *hostilePathCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	c.next.ServeHTTP(sw, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, hostileRequest{path: r.URL.EscapedPath(), start: start, end: time.Now(), status: sw.status})
}

func (c *hostilePathCounter) list() []hostileRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]hostileRequest(nil), c.reqs...)
}

// requests is how many requests named user in their path.
func (c *hostilePathCounter) requests(user string) int {
	n := 0
	for _, q := range c.list() {
		if hostilePathNames(q.path, user) {
			n++
		}
	}
	return n
}

// hostilePathNames reports whether path has user as one of its segments.
func hostilePathNames(path, user string) bool {
	return strings.Contains(path+"/", "/"+user+"/")
}

func (e *e2e) hostileAllRequests() int {
	f := e.fakes
	return f.epixel.Requests() + f.clearsquare.Requests() + f.kii.Requests() + f.msgkart.Requests() + f.scim.Requests()
}

// hostileKiiYAML is a config with the one kii target "apps" and extra keys
// (concurrency among them: the default is auto).
func (e *e2e) hostileKiiYAML(extra string) string {
	return "targets:\n  apps:\n    vendor: kii\n    base_url: " + e.srv.URL + "/kii\n" +
		"    app_id: " + fakeKiiApp + "\n    token: " + e.fakes.creds.kiiToken + "\n    rate: 1000\n" + extra
}

// TestHostileRetryAfterPastMaxWait: a vendor asking to wait longer than the
// target's max_wait (default 5m) fails that row at once with
// wait_too_long, names both durations, and pauses nothing: the other rows
// of the same target are applied and the run ends in seconds. A Retry-After
// past int64 is clamped, not a negative wait.
func TestHostileRetryAfterPastMaxWait(t *testing.T) {
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

// TestHostileRetryAfterWithinMaxWait: with max_wait: 2s, a Retry-After of 1
// is waited out and the row applied; one of 3 is past it and fails naming
// 3s and 2s.
func TestHostileRetryAfterWithinMaxWait(t *testing.T) {
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

// hostileBadMsgkartYAML is a config with msgkart ("chat") holding a wrong
// apikey and good kii ("apps") and clearsquare ("admin") targets.
func (e *e2e) hostileBadMsgkartYAML(badKey string) string {
	c := e.fakes.creds
	return "targets:\n" +
		"  chat:\n    vendor: msgkart\n    base_url: " + e.srv.URL + "/msgkart\n    apikey: " + badKey +
		"\n    email: " + fakeMsgkartEmail + "\n    rate: 1000\n    concurrency: 1\n" +
		"  apps:\n    vendor: kii\n    base_url: " + e.srv.URL + "/kii\n    app_id: " + fakeKiiApp +
		"\n    token: " + c.kiiToken + "\n    rate: 1000\n    concurrency: 4\n" +
		"  admin:\n    vendor: clearsquare\n    base_url: " + e.srv.URL + "/clearsquare\n    token: " + c.clearsquareToken +
		"\n    rate: 1000\n    concurrency: 4\n"
}

// TestHostileCredentialsCircuitBreaker: a wrong apikey on msgkart stops that
// target after 3 refusals; its 12 other rows end skipped, the kii target
// goes on, and the log says so once, loudly.
func TestHostileCredentialsCircuitBreaker(t *testing.T) {
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

// TestHostileClearsquareGoneUsersKeepTarget: clearsquare answers the same
// 401 for a bad token and for an unknown user (README, "Targets that stop"). Once this run's
// token has been accepted, three users already deleted in a row (common in
// a mass deactivation) prove nothing about the token: the target must go on
// and apply the rows after them, not skip them as "credentials refused".
func TestHostileClearsquareGoneUsersKeepTarget(t *testing.T) {
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

// hostileNoSecret fails when secret is in any text given or any file in dir.
func hostileNoSecret(t *testing.T, secret, stderr, stdout, dir string) {
	t.Helper()
	texts := map[string]string{"stderr": stderr, "stdout": stdout}
	entries, _ := os.ReadDir(dir)
	for _, ent := range entries {
		if b, err := os.ReadFile(filepath.Join(dir, ent.Name())); err == nil {
			texts[ent.Name()] = string(b)
		}
	}
	for name, text := range texts {
		if strings.Contains(text, secret) {
			t.Errorf("%s holds the apikey", name)
		}
	}
}

// hostileCronSetup seeds a run with every kind of row a cron log must show:
// msgkart with a wrong apikey (3 failed, 1 skipped), a kii user whose read
// gets 429 Retry-After: 2 once (the target pauses, then applied), an unknown
// kii user (failed), and a clearsquare toggle answered 503 (unknown).
func (e *e2e) hostileCronSetup() (cfg string, rows []string) {
	for i := 0; i < 4; i++ {
		e.fakes.msgkart.AddUser(fmt.Sprintf("m%d", i), msgkarttest.User{Status: "Busy"})
	}
	e.fakes.kii.AddUser("k-pause", kiitest.User{})
	e.fakes.kii.AddUser("k1", kiitest.User{})
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: "k-pause", Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "2"}})
	e.fakes.clearsquare.AddUser("c-503", clearsquaretest.User{Active: true})
	e.fakes.clearsquare.Faults.Add(fakehttp.Rule{User: "c-503", Fault: fakehttp.Fault{Status: http.StatusServiceUnavailable}})
	cfg = e.write("cron.yaml", e.hostileBadMsgkartYAML("wrongkey0123456789abcdef"))
	rows = append(many(4, "chat,m%d,disable"), "apps,k-pause,disable", "apps,k-nobody,disable",
		"apps,k1,disable", "admin,c-503,toggle-status")
	return cfg, rows
}

// TestHostileCronLog runs the binary as cron does (stderr piped, no
// --log-format) and reads the log as an operator would the next morning.
func TestHostileCronLog(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	cfg, rows := e.hostileCronSetup()
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	code, _, p := e.hostileStart("run", "-c", cfg, "-o", out, in)
	stderr := p.stderr.String()
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	recs, other := hostileRecords(stderr)
	for _, line := range strings.Split(stderr, "\n") {
		if dup := hostileDuplicateKeys(line); len(dup) > 0 {
			t.Errorf("a log record holds %v twice (a JSON reader keeps only the last): %s", dup, line)
		}
	}
	// (c) JSON only: an exit-1 run prints no "userbatch:" error line, and
	// no summary table.
	if len(other) != 0 {
		t.Errorf("%d stderr lines are not JSON records (a table or plain text mixed into the log): %q", len(other), other)
	}
	if len(recs) == 0 {
		t.Fatalf("no JSON records in stderr:\n%s", stderr)
	}
	hostileCheckStart(t, recs[0], in, cfg, len(rows))
	report := readCSV(t, filepath.Join(out, "report.csv"))
	hostileCheckRowWarnings(t, recs, report)
	hostileCheckFinished(t, recs, out)
	hostileCheckProgress(t, recs)
}

// hostileCheckStart: (a) the first record says what the run is over.
func hostileCheckStart(t *testing.T, first map[string]any, in, cfg string, rows int) {
	t.Helper()
	if first["message"] != "run starting" {
		t.Fatalf("first record %v, want \"run starting\"", first)
	}
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := map[string]any{"input": in, "input_sha256": hex.EncodeToString(sum[:]), "config": cfg,
		"rows": float64(rows), "dry_run": false, "resume": false, "shard": ""}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("run starting: %s = %v, want %v", k, first[k], v)
		}
	}
	if got := fmt.Sprint(first["targets"]); got != "[admin apps chat]" {
		t.Errorf("run starting: targets %s, want [admin apps chat]", got)
	}
	rates, ok := first["rate_per_s"].(map[string]any)
	if !ok || len(rates) != 3 || rates["chat"] != float64(1000) {
		t.Errorf("run starting: rate_per_s %v, want each target's rate (chat 1000)", first["rate_per_s"])
	}
}

// hostileCheckRowWarnings: (b) one warn record per row that ends failed or
// unknown, with the report's line, target, user, error code and message.
func hostileCheckRowWarnings(t *testing.T, recs []map[string]any, report []map[string]string) {
	t.Helper()
	warned := map[string]int{}
	for _, r := range recs {
		if o, _ := r["outcome"].(string); r["level"] == "warn" && (o == "failed" || o == "unknown") {
			warned[fmt.Sprint(r["line"])]++
			for _, row := range report {
				if row["line"] != fmt.Sprint(r["line"]) {
					continue
				}
				for _, k := range []string{"target", "user", "error_code", "message"} {
					if fmt.Sprint(r[k]) != row[k] {
						t.Errorf("line %s: warn record %s = %v, report says %q", row["line"], k, r[k], row[k])
					}
				}
			}
		}
	}
	want := 0
	for _, row := range report {
		if row["outcome"] != "failed" && row["outcome"] != "unknown" {
			continue
		}
		want++
		if warned[row["line"]] != 1 {
			t.Errorf("line %s (%s %s): %d warn records, want 1", row["line"], row["user"], row["outcome"], warned[row["line"]])
		}
	}
	if want != 5 { // 3 refused msgkart rows, k-nobody, c-503
		t.Errorf("the report has %d failed or unknown rows, want 5", want)
	}
	if len(warned) != want {
		t.Errorf("warn records for %d lines, the report has %d failed or unknown rows", len(warned), want)
	}
}

// hostileCheckFinished: (c) the summary is one structured record.
func hostileCheckFinished(t *testing.T, recs []map[string]any, out string) {
	t.Helper()
	fin := hostileByMessage(recs, "run finished")
	if len(fin) != 1 {
		t.Fatalf("%d \"run finished\" records, want 1", len(fin))
	}
	sum, ok := fin[0]["summary"].(map[string]any)
	if !ok {
		t.Fatalf("run finished: summary is %T, want an object", fin[0]["summary"])
	}
	file := readSummary(t, out)
	if sum["rows"] != file["rows"] || fmt.Sprint(sum["outcomes"]) != fmt.Sprint(file["outcomes"]) {
		t.Errorf("run finished: rows %v outcomes %v; summary.json says %v %v", sum["rows"], sum["outcomes"], file["rows"], file["outcomes"])
	}
}

// hostileCheckProgress: (d) a pause is logged while it lasts, and eta has
// units.
func hostileCheckProgress(t *testing.T, recs []map[string]any) {
	t.Helper()
	progress := hostileByMessage(recs, "progress")
	pausedSeen := false
	for _, r := range progress {
		if eta, ok := r["eta"]; ok {
			s, _ := eta.(string)
			if _, err := time.ParseDuration(s); err != nil || !strings.ContainsAny(s, "hms") {
				t.Errorf("progress eta %v: want a duration with units such as 2m30s", eta)
			}
		}
		v, ok := r["paused_apps"].(string)
		if !ok {
			continue
		}
		pausedSeen = true
		left, err := time.ParseDuration(strings.TrimPrefix(v, "resumes in "))
		if err != nil || left <= 0 || left > 2*time.Second {
			t.Errorf("progress paused_apps %q: want \"resumes in\" 1s or 2s, logged while the 2s pause lasts", v)
		}
	}
	if !pausedSeen {
		t.Errorf("no progress record names the paused target (paused_apps) during a 2s Retry-After pause: %v", progress)
	}
}

// TestHostileCronLogInvalidRows: a cron log with an invalid row stays
// JSON. With --skip-invalid the row's problem is a record and "run
// starting" comes first; without it the run ends exit 2, and the one line
// that is not JSON is the CLI's own "userbatch: ..." error line.
func TestHostileCronLogInvalidRows(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	cfg, rows := e.hostileCronSetup()
	rows = append(rows, "apps,,disable")
	in := e.write("ops.csv", opsCSV(rows...))
	code, _, p := e.hostileStart("run", "-c", cfg, "-o", filepath.Join(e.dir, "skip"), in, "--skip-invalid")
	stderr := p.stderr.String()
	if code != exitIncomplete {
		t.Fatalf("--skip-invalid: exit %d, want 1\n%s", code, stderr)
	}
	recs, other := hostileRecords(stderr)
	if len(other) != 0 {
		t.Errorf("--skip-invalid: %d stderr lines are not JSON records in a JSON log: %q", len(other), other)
	}
	if len(recs) == 0 || recs[0]["message"] != "run starting" {
		t.Errorf("--skip-invalid: the first record is not \"run starting\":\n%s", stderr)
	}

	sent := e.hostileAllRequests()
	code, _, p = e.hostileStart("run", "-c", cfg, "-o", filepath.Join(e.dir, "refused"), in)
	stderr = p.stderr.String()
	if code != exitBadInput || e.hostileAllRequests() != sent {
		t.Fatalf("an invalid row: exit %d, %d requests; want 2 and none\n%s", code, e.hostileAllRequests()-sent, stderr)
	}
	_, other = hostileRecords(stderr)
	if len(other) != 1 || !strings.HasPrefix(other[0], "userbatch: ") || !strings.Contains(other[0], "nothing was sent") {
		t.Errorf("an invalid row: the lines that are not JSON are %q; want only the CLI's one \"userbatch: ... nothing was sent ...\" line", other)
	}
}

// hostileHold answers reads at once and holds every write after the fake
// has processed it, until the client goes away or release is closed: the
// vendor has the change, the client has no answer yet.
type hostileHold struct {
	next    http.Handler
	held    chan string
	release chan struct{}
}

func (h *hostileHold) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	select {
	case <-h.release:
		write = false
	default:
	}
	if !write {
		h.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	h.held <- r.URL.Path
	select {
	case <-r.Context().Done():
		return
	case <-h.release:
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// hostileWaitFor polls text until it holds want, or fails past limit.
func hostileWaitFor(t *testing.T, text func() string, want string, limit time.Duration) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !strings.Contains(text(), want) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no %q within %v:\n%s", want, limit, text())
		}
	}
}

// TestHostileSecondInterrupt: with writes in flight (the vendor has them,
// the client has no answer), SIGINT, then SIGINT again once "stopping" is
// logged: exit 3, one line after the second signal naming the exact resume
// command, nothing logged after it; the resume finishes with no user
// written twice.
func TestHostileSecondInterrupt(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken, AutoCreate: true})
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	hold := &hostileHold{next: e.fakes.handler(), held: make(chan string, 64), release: make(chan struct{})}
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(hold.release) }) }
	t.Cleanup(releaseAll) // before the server closes: no handler left blocked
	e.serve(hold)
	rows := append(many(8, "apps,k%d,disable"), many(8, "admin,c%d,toggle-status")...)
	in := e.write("ops.csv", opsCSV(rows...))
	out := filepath.Join(e.dir, "report")
	args := []string{"run", "-c", e.cfg, "-o", out, in, "--grace", "1h", "--log-format", "json"}
	p := e.start(args...)
	var killed atomic.Bool
	timer := time.AfterFunc(hostileLimit, func() { killed.Store(true); _ = p.cmd.Process.Kill() })
	defer timer.Stop()
	for i := 0; i < 4; i++ { // writes in flight at the vendor
		select {
		case <-hold.held:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Fatalf("only %d writes reached the vendor\n%s", i, p.stderr.String())
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	hostileWaitFor(t, p.stderr.String, "stopping", 30*time.Second)
	before := len(p.stderr.String())
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	code := p.wait()
	if killed.Load() {
		t.Fatalf("the second SIGINT did not stop the run within %v\n%s", hostileLimit, p.stderr.String())
	}
	stderr := p.stderr.String()
	if code != exitStopped {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	after := strings.Split(strings.TrimRight(stderr[before:], "\n"), "\n")
	resume := "userbatch " + strings.Join(args, " ") + " --resume"
	if len(after) != 1 {
		t.Fatalf("%d lines after the second SIGINT, want exactly 1:\n%s", len(after), strings.Join(after, "\n"))
	}
	line := after[0]
	for _, want := range []string{"cut off", "journal is consistent"} {
		if !strings.Contains(line, want) {
			t.Errorf("the line after the second SIGINT lacks %q: %s", want, line)
		}
	}
	if !strings.HasSuffix(line, resume) {
		t.Errorf("the line does not end with the exact resume command %q:\n%s", resume, line)
	}
	for _, bad := range []string{"retrying", "context canceled", "fix the cause"} {
		if strings.Contains(stderr[before:], bad) {
			t.Errorf("stderr holds %q after the second SIGINT:\n%s", bad, stderr[before:])
		}
	}
	for _, bad := range []string{"context canceled", "fix the cause"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr holds %q:\n%s", bad, stderr)
		}
	}
	hostileResumeAfterCut(t, e, releaseAll, strings.Fields(resume)[1:], out, len(rows))
}

// hostileResumeAfterCut runs the printed resume command and checks that
// every row ends settled with no user written twice.
func hostileResumeAfterCut(t *testing.T, e *e2e, releaseAll func(), args []string, out string, n int) {
	t.Helper()
	releaseAll()
	code, _, p := e.hostileStart(args...)
	report := readCSV(t, filepath.Join(out, "report.csv"))
	if len(report) != n {
		t.Fatalf("report after resume has %d rows, want %d", len(report), n)
	}
	unknown := 0
	for _, r := range report {
		user := r["user"]
		if user[0] == 'k' {
			u, _ := e.fakes.kii.User(user)
			if w := e.fakes.kii.Writes(user); w != 1 || !u.Disabled || r["outcome"] != "applied" {
				t.Errorf("kii %s: %d writes, disabled %v, outcome %s; want one write, applied", user, w, u.Disabled, r["outcome"])
			}
			continue
		}
		w := e.fakes.clearsquare.Writes(user)
		switch {
		case w > 1:
			t.Errorf("toggle %s sent %d times", user, w)
		case r["outcome"] == "applied" && w != 1:
			t.Errorf("toggle %s applied but the vendor saw %d", user, w)
		case r["outcome"] == "unknown":
			unknown++ // cut off in flight: never sent again, checked by hand
		case r["outcome"] != "applied":
			t.Errorf("toggle %s: %s", user, r["outcome"])
		}
	}
	want := exitOK
	if unknown > 0 {
		want = exitIncomplete
	}
	if code != want {
		t.Errorf("resume: exit %d, want %d (%d toggles cut off in flight)\n%s", code, want, unknown, p.stderr.String())
	}
}

// TestHostileFlagsThatCannotWork: each refused with exit 2 naming the flag,
// before anything is sent or the report directory is made.
func TestHostileFlagsThatCannotWork(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	cases := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"negative grace", []string{"--grace", "-5s"}, []string{"--grace"}},
		{"shard-full-rate alone", []string{"--shard-full-rate"}, []string{"--shard-full-rate", "--shard"}},
		{"negative max-changes", []string{"--max-changes", "-1"}, []string{"--max-changes"}},
		{"negative canary", []string{"--canary", "-1"}, []string{"--canary"}},
		{"negative catch-up", []string{"--catch-up", "-1h"}, []string{"--catch-up"}},
		{"negative workers", []string{"--workers", "-1"}, []string{"--workers"}},
		{"unknown zone", []string{"--tz", "Mars/Olympus"}, []string{"--tz", "Mars/Olympus"}},
		{"bad delimiter", []string{"--delimiter", "x"}, []string{"delimiter", `"x"`}},
		{"shard out of range", []string{"--shard", "3/2"}, []string{"3/2"}},
	}
	for i, c := range cases {
		out := filepath.Join(e.dir, fmt.Sprintf("report-%d", i))
		res := e.run(append([]string{"run", "-c", e.cfg, "-o", out, in}, c.flags...)...)
		if res.code != exitBadInput {
			t.Errorf("%s: exit %d, want 2\n%s", c.name, res.code, res.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("%s: stderr lacks %q: %s", c.name, w, res.stderr)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: the report directory was created for a refused run (stat: %v)", c.name, err)
		}
	}
	if n := e.hostileAllRequests(); n != 0 {
		t.Errorf("refused runs sent %d requests", n)
	}
}

// TestHostileResumeAsAnotherShard: a resume names the journal's shard and
// its own, and sends nothing.
func TestHostileResumeAsAnotherShard(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	out := filepath.Join(e.dir, "report")
	if res := e.run("run", "-c", e.cfg, "-o", out, in, "--shard", "0/2"); res.code != exitOK && res.code != exitIncomplete {
		t.Fatalf("shard 0/2: exit %d\n%s", res.code, res.stderr)
	}
	sent := e.hostileAllRequests()
	for _, c := range []struct {
		flags []string
		want  []string
	}{
		{[]string{"--shard", "1/2"}, []string{"shard 0/2", "shard 1/2"}},
		{nil, []string{"shard 0/2", "no --shard"}},
	} {
		res := e.run(append([]string{"run", "-c", e.cfg, "-o", out, in, "--resume"}, c.flags...)...)
		if res.code != exitBadInput {
			t.Errorf("resume %v: exit %d, want 2\n%s", c.flags, res.code, res.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("resume %v: stderr lacks %q: %s", c.flags, w, res.stderr)
			}
		}
	}
	if n := e.hostileAllRequests(); n != sent {
		t.Errorf("refused resumes sent %d requests", n-sent)
	}
}

// TestHostileCSVRecords: a record of 2 MB, a row of 100,000 fields and a
// quote never closed stop the run before anything is sent, naming the line.
func TestHostileCSVRecords(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.kii.AddUser("k1", kiitest.User{})
	e.fakes.kii.AddUser("k2", kiitest.User{})
	head := "target,user,action,ticket\napps,k1,disable,T1\napps,k2,disable,T2\n"
	cases := map[string]struct {
		row  string
		want string
	}{
		"2 MB record":    {"apps,k3,disable," + strings.Repeat("a", 2<<20) + "\n", "line 4: a record longer than 1 MiB"},
		"100k fields":    {"apps,k3,disable" + strings.Repeat(",x", 100_000-3) + "\n", "line 4: a record of more than 1000"},
		"unclosed quote": {"apps,k3,disable,\"" + strings.Repeat("b\n", 1<<20) + "\n", "line 4: a record longer than 1 MiB"},
	}
	for name, c := range cases {
		in := e.write("hostile.csv", head+c.row)
		out := filepath.Join(e.dir, "report-"+strings.ReplaceAll(name, " ", "-"))
		res := e.run("run", "-c", e.cfg, "-o", out, in)
		if res.code != exitBadInput || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", name, res.code, hostileShort(res.stderr), c.want)
		}
	}
	if n := e.hostileAllRequests(); n != 0 {
		t.Errorf("hostile files sent %d requests", n)
	}
}

func hostileShort(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// TestHostileInvisibleUserIDs: a user id holding a bidi control, a zero
// width space or a line separator is invalid, the code point is named, and
// nothing is sent.
func TestHostileInvisibleUserIDs(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.kii.AddUser("k1", kiitest.User{})
	for _, c := range []struct {
		r    rune
		code string
	}{{'\u202E', "U+202E"}, {'\u200B', "U+200B"}, {'\u2028', "U+2028"}} {
		user := "evil" + string(c.r) + "gpj.exe"
		in := e.write("ops.csv", opsCSV("apps,k1,disable", "apps,"+user+",disable"))
		out := filepath.Join(e.dir, "report-"+c.code)
		res := e.run("run", "-c", e.cfg, "-o", out, in)
		if res.code != exitBadInput {
			t.Errorf("%s: exit %d, want 2\n%s", c.code, res.code, res.stderr)
		}
		if !strings.Contains(res.stderr, "line 3") || !strings.Contains(res.stderr, c.code) {
			t.Errorf("%s: stderr does not name line 3 and the code point: %s", c.code, res.stderr)
		}
		rows := readCSV(t, filepath.Join(out, "report.csv"))
		if len(rows) != 2 || rows[1]["outcome"] != "invalid" || !strings.Contains(rows[1]["detail"]+rows[1]["message"], c.code) {
			t.Errorf("%s: report %v; want row 2 invalid naming the code point", c.code, rows)
		}
	}
	if n := e.hostileAllRequests(); n != 0 {
		t.Errorf("files with invisible user ids sent %d requests", n)
	}
}
