package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
)

// TestDemoSCIMAndNotDue: the built-in demo runs its SCIM rows against the
// SCIM fake (a userName lookup and an id disabled, an active user enabled
// ends already), ends its future-dated row not_due, counts both in
// summary.json, and records the SCIM changes, not the row not due, in the
// ledger it keeps in its report directory.
func TestDemoSCIMAndNotDue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := runMain([]string{"demo", "-o", dir, "--log-format", "console"}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("demo exit %d\n%s", code, errb.String())
	}
	rows := readCSV(t, filepath.Join(dir, "report.csv"))
	byKey := map[string]map[string]string{}
	for _, r := range rows {
		byKey[r["target"]+"/"+r["user"]] = r
	}
	want := map[string]string{
		"saas/userName:bjensen@example.com": "applied",
		"saas/" + demoSCIMSmith:             "applied",
		"saas/" + demoSCIMRoe:               "already",
		"shop/u1008":                        "not_due",
	}
	for key, outcome := range want {
		r, ok := byKey[key]
		if !ok {
			t.Errorf("report.csv has no row %s", key)
			continue
		}
		if r["outcome"] != outcome {
			t.Errorf("%s: outcome %q (%s %s), want %q", key, r["outcome"], r["detail"], r["message"], outcome)
		}
	}
	if d := byKey["shop/u1008"]["detail"]; !strings.Contains(d, "not due") || !strings.Contains(d, "2099-01-01") {
		t.Errorf("the not_due row's detail %q does not say when it is due", d)
	}
	if n := countRows(demoInputRows(t), "saas"); n != 3 || countRows(rows, "saas") != n {
		t.Errorf("demo.csv has %d saas rows and report.csv %d, want 3 in both", n, countRows(rows, "saas"))
	}

	sum := readSummary(t, dir)
	outcomes := sum["outcomes"].(map[string]any)
	for _, o := range batch.Outcomes {
		if got, n := outcomes[string(o)], countOutcome(rows, "", o); got != float64(n) {
			t.Errorf("summary.json %s = %v, report.csv has %d", o, got, n)
		}
	}
	saas, ok := sum["by_target"].(map[string]any)["saas"].(map[string]any)
	if !ok {
		t.Fatalf("summary.json by_target has no saas: %v", sum["by_target"])
	}
	for _, o := range []batch.Outcome{batch.Applied, batch.Already} {
		if got := saas[string(o)]; got != float64(countOutcome(rows, "saas", o)) || got == float64(0) {
			t.Errorf("summary.json by_target.saas.%s = %v, report.csv has %d", o, got, countOutcome(rows, "saas", o))
		}
	}
	checkSummaryTable(t, errb.String(), countOutcome(rows, "", batch.NotDue))
	checkDemoLedger(t, filepath.Join(dir, demoLedger), rows)
}

// checkSummaryTable: the table the demo prints has a saas column and a
// not_due line counting notDue rows.
func checkSummaryTable(t *testing.T, printed string, notDue int) {
	t.Helper()
	var header, line []string
	for _, l := range strings.Split(printed, "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 1 && f[0] == "outcome" && f[1] == "rows":
			header = f
		case len(f) > 1 && f[0] == string(batch.NotDue):
			line = f
		}
	}
	if !slices.Contains(header, "saas") || len(line) < 2 || line[1] != fmt.Sprint(notDue) || notDue == 0 {
		t.Errorf("the printed summary has header %q and not_due line %q, want a saas column and %d not_due\n%s",
			header, line, notDue, printed)
	}
}

// checkDemoLedger: every row the demo applied or found already is in the
// ledger, done with that outcome; the not_due and failed rows are not.
func checkDemoLedger(t *testing.T, path string, rows []map[string]string) {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatalf("the demo's ledger: %v", err)
	}
	defer l.Close()
	held := map[string]ledger.Entry{}
	err = l.History(ctx, ledger.Filter{}, func(e ledger.Entry) error {
		held[e.Target+"/"+e.User] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		key := r["target"] + "/" + r["user"]
		e, ok := held[key]
		switch o := batch.Outcome(r["outcome"]); o {
		case batch.Applied, batch.Already:
			if !ok || e.State != ledger.Done || e.Outcome != o {
				t.Errorf("ledger entry for %s (%s): %+v, held %t; want done %s", key, o, e, ok, o)
			}
		default:
			if ok {
				t.Errorf("ledger holds %s, which ended %s: %+v", key, o, e)
			}
		}
	}
}

// demoInputRows reads the embedded demo.csv as report rows are read.
func demoInputRows(t *testing.T) []map[string]string {
	t.Helper()
	return parseCSV(t, demoCSV, ',')
}

func countRows(rows []map[string]string, target string) int {
	n := 0
	for _, r := range rows {
		if r["target"] == target {
			n++
		}
	}
	return n
}

// countOutcome counts rows ending o, of target ("" for every target).
func countOutcome(rows []map[string]string, target string, o batch.Outcome) int {
	n := 0
	for _, r := range rows {
		if r["outcome"] == string(o) && (target == "" || r["target"] == target) {
			n++
		}
	}
	return n
}

// TestDemoInputHasFutureRow: demo.csv's effective_at column is blank but
// for one row, which stays in the future for as long as the demo is run.
func TestDemoInputHasFutureRow(t *testing.T) {
	t.Parallel()
	future := 0
	for _, r := range demoInputRows(t) {
		at := r["effective_at"]
		if at == "" {
			continue
		}
		d, err := time.Parse("2006-01-02", at)
		if err != nil || d.Before(time.Now().AddDate(50, 0, 0)) {
			t.Errorf("%s/%s: effective_at %q, want a date far in the future", r["target"], r["user"], at)
		}
		future++
	}
	if future != 1 {
		t.Errorf("demo.csv has %d rows with an effective_at, want 1", future)
	}
}

// TestSandboxServesSCIM: the targets.yaml the sandbox prints has a saas
// target of vendor scim under the address it serves, and a run through it
// reaches the SCIM fake: a demo user by id and by userName, a user created
// on first use, and an active user enabled (already).
func TestSandboxServesSCIM(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o := &sandboxOptions{globalOptions: &globalOptions{stdout: &out, stderr: &errb}, listen: "127.0.0.1:0"}
	go func() { done <- sandboxRun(ctx, o, ready) }()
	addr := <-ready
	yaml := out.String()

	cfg, err := config.Parse([]byte(yaml), noEnv)
	if err != nil {
		t.Fatalf("the sandbox's YAML: %v\n%s", err, yaml)
	}
	saas := cfg.Targets["saas"]
	if saas == nil || saas.Vendor != "scim" || saas.BaseURL != "http://"+addr+"/scim/v2" || saas.Token == "" {
		t.Fatalf("the sandbox's saas target: %+v\n%s", saas, yaml)
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "targets.yaml")
	in := filepath.Join(dir, "ops.csv")
	ops := fmt.Sprintf("target,user,action\nsaas,%s,disable\nsaas,userName:jsmith@example.com,disable\nsaas,new-scim-user,disable\nsaas,%s,enable\n",
		demoSCIMJensen, demoSCIMRoe)
	for p, content := range map[string]string{cfgPath: yaml, in: ops} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	report := filepath.Join(dir, "r")
	var rout, rerr bytes.Buffer
	code := runMain([]string{"run", "-c", cfgPath, "-o", report, in}, strings.NewReader(""), &rout, &rerr)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sandbox: %v", err)
	}
	if code != exitOK {
		t.Fatalf("run against the sandbox: exit %d\n%s", code, rerr.String())
	}
	want := map[string]string{demoSCIMJensen: "applied", "userName:jsmith@example.com": "applied",
		"new-scim-user": "applied", demoSCIMRoe: "already"}
	rows := readCSV(t, filepath.Join(report, "report.csv"))
	if len(rows) != len(want) {
		t.Errorf("report has %d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		if r["target"] != "saas" || r["outcome"] != want[r["user"]] {
			t.Errorf("%s/%s: %s (%s), want %s", r["target"], r["user"], r["outcome"], r["message"], want[r["user"]])
		}
	}
	if token := saas.Token; strings.Contains(rerr.String(), token) || strings.Contains(errb.String(), token) {
		t.Error("the SCIM token reached a log")
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
