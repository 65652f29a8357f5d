package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsFile: --metrics-file leaves the run's numbers for
// node_exporter, parsed back with Prometheus's own text parser.
func TestMetricsFile(t *testing.T) {
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
	f, err := os.Open(metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the metrics file does not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		fam, ok := families[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
	next:
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	sum := readSummary(t, filepath.Join(e.dir, "r"))
	byTarget := sum["by_target"].(map[string]any)["shop"].(map[string]any)
	if got := value("userbatch_rows_by_target", map[string]string{"target": "shop", "outcome": "applied"}); got != byTarget["applied"] {
		t.Errorf("rows shop applied = %v, summary says %v", got, byTarget["applied"])
	}
	if got := value("userbatch_requests_total", map[string]string{"target": "shop", "kind": "write"}); got < 7 {
		t.Errorf("writes to shop = %v, want at least one per shop row", got)
	}
	if got := value("userbatch_last_exit_code", nil); got != 1 {
		t.Errorf("last exit code %v", got)
	}
	if _, ok := families["userbatch_last_success_timestamp_seconds"]; !ok {
		t.Error("no last success timestamp after a finished run")
	}
	if strings.Contains(res.stderr, "metrics file could not be written") {
		t.Error(res.stderr)
	}
}
