package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsFile: --metrics-file leaves the run's numbers for
// node_exporter, parsed back with Prometheus's own text parser.
func TestMetricsFile(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	metrics := filepath.Join(e.dir, "textfile", "userbatch.prom")
	if err := os.MkdirAll(filepath.Dir(metrics), 0o755); err != nil {
		t.Fatal(err)
	}
	res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "r"), in, "--metrics-file", metrics)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	m := promFamilies(t, metrics)
	sum := readSummary(t, filepath.Join(e.dir, "r"))
	byTarget := sum["by_target"].(map[string]any)["shop"].(map[string]any)
	if got := m[`userbatch_rows_by_target{outcome="applied",target="shop"}`]; got != byTarget["applied"] {
		t.Errorf("rows shop applied = %v, summary says %v", got, byTarget["applied"])
	}
	if got := m[`userbatch_requests_total{kind="write",target="shop"}`]; got < 7 {
		t.Errorf("writes to shop = %v, want at least one per shop row", got)
	}
	if got, ok := m["userbatch_last_exit_code"]; !ok || got != 1 {
		t.Errorf("last exit code %v", got)
	}
	if _, ok := m["userbatch_last_success_timestamp_seconds"]; !ok {
		t.Error("no last success timestamp after a finished run")
	}
	if strings.Contains(res.stderr, "metrics file could not be written") {
		t.Error(res.stderr)
	}
}
