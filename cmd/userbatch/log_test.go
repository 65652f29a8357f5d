package main

// The log of an unattended run (cron, JSON lines) and what it never holds
// (secrets), through the built binary against the fakes on loopback. The
// hostile* helpers are shared with the other feature files.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
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

// TestCronLog runs the binary as cron does (stderr piped, no
// --log-format) and reads the log as an operator would the next morning.
func TestCronLog(t *testing.T) {
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

// TestCronLogInvalidRows: a cron log with an invalid row stays
// JSON. With --skip-invalid the row's problem is a record and "run
// starting" comes first; without it the run ends exit 2, and the one line
// that is not JSON is the CLI's own "userbatch: ..." error line.
func TestCronLogInvalidRows(t *testing.T) {
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
