package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// webhookSink counts the POSTs a webhook receives and keeps their bodies.
type webhookSink struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (h *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodPost {
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.mu.Unlock()
	}
}

func (h *webhookSink) posts() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...)
}

// promFamilies parses a metrics file with Prometheus's own parser into
// series → value, a series named as the file writes it:
// name{label="value",...}, labels in name order.
func promFamilies(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	out := map[string]float64{}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			key := name
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[key] = v
		}
	}
	return out
}

// fileLines reads a report file's lines.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestEmptyNightIsAGoodNight: a file with a header and no data rows (no
// leavers tonight) is a finished run of 0 rows: exit 0, every report file
// with its header, the success timestamp set, one webhook POST; validate,
// --dry-run and plan too. A file with no header at all stays an error.
func TestEmptyNightIsAGoodNight(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	hook := &webhookSink{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	cfg := e.write("night.yaml", e.baseYAML()+"notify:\n  webhook: "+hookSrv.URL+"/hooks/night\n")
	in := e.write("leavers.csv", "target,user,action,ticket\r\n")
	metrics := filepath.Join(e.dir, "userbatch.prom")

	res := runBinary(t, nil, "validate", "-c", cfg, in)
	if res.code != exitOK || !strings.Contains(res.stdout+res.stderr, "0 rows") {
		t.Fatalf("validate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	out := filepath.Join(e.dir, "night")
	res = runBinary(t, nil, "run", "-c", cfg, "-o", out, in, "--metrics-file", metrics, "--log-format", "json")
	if res.code != exitOK {
		t.Fatalf("run: exit %d, want 0\n%s", res.code, res.stderr)
	}
	headers := map[string]string{
		"report.csv": "line,target,user,action,outcome,detail,http_status,attempts,error_code,message,duration_ms,finished_at,ticket",
		"failed.csv": "target,user,action,ticket",
		"check.csv":  "target,user,action,ticket,",
		"undo.csv":   "target,user,action,ticket,",
	}
	for name, head := range headers {
		lines := fileLines(t, filepath.Join(out, name))
		if len(lines) != 1 || !strings.HasPrefix(lines[0], head) {
			t.Errorf("%s: %q, want its header alone (%s...)", name, lines, head)
		}
	}
	if b, err := os.ReadFile(filepath.Join(out, "report.html")); err != nil || !strings.Contains(string(b), "</html>") {
		t.Errorf("report.html: %v", err)
	}
	sum := readSummary(t, out)
	if sum["rows"] != 0.0 || sum["exit_code"] != 0.0 || sum["reads"] != 0.0 || sum["writes"] != 0.0 {
		t.Errorf("summary.json: rows %v, exit_code %v, reads %v, writes %v; want all 0", sum["rows"], sum["exit_code"], sum["reads"], sum["writes"])
	}
	m := promFamilies(t, metrics)
	if m["userbatch_last_exit_code"] != 0 || m["userbatch_last_success_timestamp_seconds"] < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("metrics: exit code %v, last success %v; want 0 and now (an empty night is a success)",
			m["userbatch_last_exit_code"], m["userbatch_last_success_timestamp_seconds"])
	}
	posts := hook.posts()
	if len(posts) != 1 {
		t.Fatalf("%d webhook POSTs, want exactly 1", len(posts))
	}
	var note struct {
		Summary struct {
			Rows     *int `json:"rows"`
			ExitCode *int `json:"exit_code"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(posts[0], &note); err != nil || note.Summary.Rows == nil || *note.Summary.Rows != 0 ||
		note.Summary.ExitCode == nil || *note.Summary.ExitCode != 0 {
		t.Errorf("webhook POST: %s (%v)", posts[0], err)
	}

	res = runBinary(t, nil, "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "dry"), "--dry-run", in, "--log-format", "console")
	if res.code != exitOK || !strings.Contains(res.stderr, "Plan: 0 to change, 0 already, 0 unknown state — nothing to send") {
		t.Errorf("--dry-run: exit %d\n%s", res.code, res.stderr)
	}
	plan := filepath.Join(e.dir, "plan")
	res = runBinary(t, nil, "plan", "-c", e.cfg, "-o", plan, in)
	if res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	if lines := fileLines(t, filepath.Join(plan, "plan.csv")); len(lines) != 1 {
		t.Errorf("plan.csv: %q, want its header alone", lines)
	}
	if n := e.fakes.epixel.Requests() + e.fakes.kii.Requests() + e.fakes.clearsquare.Requests() + e.fakes.msgkart.Requests(); n != 0 {
		t.Errorf("an empty night sent %d requests", n)
	}

	// No header at all is still no file to run.
	empty := e.write("empty.csv", "")
	if res := runBinary(t, nil, "validate", "-c", e.cfg, empty); res.code != exitBadInput {
		t.Errorf("validate of an empty file: exit %d, want 2\n%s", res.code, res.stderr)
	}
	if res := runBinary(t, nil, "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "none"), empty); res.code != exitBadInput {
		t.Errorf("run of an empty file: exit %d, want 2\n%s", res.code, res.stderr)
	}
}

// TestCountsMeanWhatTheySay: reads and writes are counted apart on the
// console, in summary.json, in the metrics file and in the progress log; a
// dry run has no write and ends with its plan; a row's latency is its
// time at the vendor, not a Retry-After pause.
func TestCountsMeanWhatTheySay(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	var rows []string
	for i := range 5 { // kii reads: 3 would change, 2 already disabled
		id := fmt.Sprintf("k-%d", i)
		e.fakes.kii.AddUser(id, kiitest.User{Disabled: i >= 3})
		rows = append(rows, "apps,"+id+",disable")
	}
	for i := range 4 { // epixel cannot be read: unknown state, a write each
		id := fmt.Sprintf("e-%d", i)
		e.fakes.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
		rows = append(rows, "shop,"+id+",disable")
	}
	in := e.write("ops.csv", opsCSV(rows...))
	// shop at 0.5/s: its 4 writes would take 8 s; apps' 3 take no time.
	slow := e.write("slow.yaml", setKey(t, e.baseYAML(), "shop", "rate", "0.5"))

	dry := filepath.Join(e.dir, "dry")
	metrics := filepath.Join(e.dir, "dry.prom")
	res := runBinary(t, nil, "run", "-c", slow, "-o", dry, "--dry-run", in, "--log-format", "console", "--metrics-file", metrics)
	if res.code != exitOK {
		t.Fatalf("dry run: exit %d\n%s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
	wantPlan := "Plan: 3 to change, 2 already, 4 unknown state — about 8 seconds at the configured rates"
	if last := lines[len(lines)-1]; last != wantPlan {
		t.Errorf("the dry run ends with %q, want %q\n%s", last, wantPlan, res.stderr)
	}
	if !strings.Contains(res.stderr, "(5 reads, 0 writes in ") || strings.Contains(res.stderr, " sent") {
		t.Errorf("the dry run's console summary does not count 5 reads and 0 writes:\n%s", res.stderr)
	}
	sum := readSummary(t, dry)
	plan, _ := sum["plan"].(map[string]any)
	if sum["reads"] != 5.0 || sum["writes"] != 0.0 || sum["sent"] != 0.0 || plan == nil ||
		plan["would_change"] != 3.0 || plan["no_change"] != 2.0 || plan["unknown_state"] != 4.0 || plan["seconds"] != 8.0 {
		t.Errorf("dry run summary.json: reads %v, writes %v, sent %v, plan %v", sum["reads"], sum["writes"], sum["sent"], sum["plan"])
	}
	m := promFamilies(t, metrics)
	if m[`userbatch_requests_total{kind="read",target="apps"}`] != 5 || m[`userbatch_requests_total{kind="write",target="apps"}`] != 0 {
		t.Errorf("dry run metrics: %v", m)
	}
	planDir := filepath.Join(e.dir, "plan")
	res = runBinary(t, nil, "plan", "-c", slow, "-o", planDir, in, "--log-format", "console")
	if res.code != exitOK || !strings.HasSuffix(strings.TrimSpace(res.stderr), wantPlan) {
		t.Errorf("plan: exit %d; its console does not end with %q:\n%s", res.code, wantPlan, res.stderr)
	}
	if p, _ := readSummary(t, planDir)["plan"].(map[string]any); p == nil || p["would_change"] != 3.0 || p["seconds"] != 8.0 {
		t.Errorf("plan's summary.json plan: %v", p)
	}
	if e.fakes.kii.Writes("k-0")+e.fakes.epixel.Writes("e-0") != 0 {
		t.Fatal("the dry run or the plan wrote")
	}

	// The real run: k-0's read is answered 429 with Retry-After 2 once.
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: "k-0", Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "2"}})
	out := filepath.Join(e.dir, "run")
	metrics = filepath.Join(e.dir, "run.prom")
	res = runBinary(t, nil, "run", "-c", e.cfg, "-o", out, in, "--log-format", "json", "--metrics-file", metrics)
	if res.code != exitOK {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	sum = readSummary(t, out)
	// 6 reads (k-0 twice), 3 kii writes and 4 epixel writes.
	if sum["reads"] != 6.0 || sum["writes"] != 7.0 || sum["sent"] != 7.0 || sum["plan"] != nil {
		t.Errorf("run summary.json: reads %v, writes %v, sent %v, plan %v", sum["reads"], sum["writes"], sum["sent"], sum["plan"])
	}
	m = promFamilies(t, metrics)
	for key, want := range map[string]float64{
		`userbatch_requests_total{kind="read",target="apps"}`:  6,
		`userbatch_requests_total{kind="write",target="apps"}`: 3,
		`userbatch_requests_total{kind="read",target="shop"}`:  0,
		`userbatch_requests_total{kind="write",target="shop"}`: 4,
	} {
		if m[key] != want {
			t.Errorf("%s = %v, want %v", key, m[key], want)
		}
	}
	for _, r := range readCSV(t, filepath.Join(out, "report.csv")) {
		if r["user"] != "k-0" {
			continue
		}
		var ms int
		fmt.Sscan(r["duration_ms"], &ms)
		if r["attempts"] != "3" || ms >= 1500 {
			t.Errorf("k-0: %s attempts, duration_ms %s; want 3 attempts and the time at the vendor, not the 2 s pause", r["attempts"], r["duration_ms"])
		}
	}
	if maxMS := sum["latency_ms"].(map[string]any)["max"].(float64); maxMS >= 1500 {
		t.Errorf("latency max %v ms: the Retry-After pause is counted", maxMS)
	}
	// The pause is said at once in a progress record, which counts reads
	// and writes apart.
	var progress []map[string]any
	sc := bufio.NewScanner(strings.NewReader(res.stderr))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["message"] == "progress" {
			progress = append(progress, rec)
		}
	}
	if len(progress) == 0 {
		t.Fatalf("no progress record while apps was paused:\n%s", res.stderr)
	}
	for _, rec := range progress {
		reads, rok := rec["reads"].(float64)
		writes, wok := rec["writes"].(float64)
		if !rok || !wok || reads > 6 || writes > 7 {
			t.Errorf("progress record without reads and writes apart: %v", rec)
		}
	}
}
