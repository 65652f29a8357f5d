package job

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// readMetrics parses a metrics file with Prometheus' own text parser.
func readMetrics(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	return families
}

// value is the value of name's series whose labels include want; it fails
// the test unless exactly one series matches.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf := families[name]
	if mf == nil {
		t.Fatalf("no %s in the file", name)
	}
	var found []float64
	for _, m := range mf.GetMetric() {
		if hasLabels(m, want) {
			switch {
			case m.GetGauge() != nil:
				found = append(found, m.GetGauge().GetValue())
			case m.GetCounter() != nil:
				found = append(found, m.GetCounter().GetValue())
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0]
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func sampleSummary() *reports.Summary {
	counts := func(pairs ...any) reports.Counts {
		c := reports.Counts{}
		for _, o := range batch.Outcomes {
			c[o] = 0
		}
		for i := 0; i < len(pairs); i += 2 {
			c[pairs[i].(batch.Outcome)] = pairs[i+1].(int)
		}
		return c
	}
	return &reports.Summary{
		Rows:     9,
		Outcomes: counts(batch.Applied, 4, batch.Already, 1, batch.Failed, 1, batch.Invalid, 2, batch.NotDue, 1),
		ByTarget: map[string]reports.Counts{
			"apps":     counts(batch.Applied, 3, batch.Already, 1, batch.NotDue, 1),
			"admin":    counts(batch.Applied, 1, batch.Failed, 1),
			"typo\xff": counts(batch.Invalid, 2),
		},
		ByAction: map[string]reports.Counts{
			"disable":       counts(batch.Applied, 3, batch.Already, 1, batch.NotDue, 1),
			"toggle-status": counts(batch.Applied, 1, batch.Failed, 1),
			"explode":       counts(batch.Invalid, 1),
			"=cmd()":        counts(batch.Invalid, 1),
		},
		ExitCode: 1,
	}
}

func TestWriteMetricsParsesBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "userbatch.prom")
	finished := time.Date(2026, 11, 30, 2, 0, 0, 500_000_000, time.UTC)
	err := WriteMetrics(path, RunMetrics{
		Summary:  sampleSummary(),
		Reads:    map[string]int{"apps": 5},
		Writes:   map[string]int{"apps": 2, "admin": 3},
		Retries:  map[string]int{"apps": 2, "admin": 0},
		ExitCode: reports.ExitIncomplete,
		Duration: 1500 * time.Millisecond,
		Finished: finished,
	})
	if err != nil {
		t.Fatal(err)
	}
	fs := readMetrics(t, path)
	ts := float64(finished.UnixMicro()) / 1e6
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{MetricExitCode, nil, 1},
		{MetricDuration, nil, 1.5},
		{MetricLastRun, nil, ts},
		{MetricLastSuccess, nil, ts}, // exit 1 finished: a success
		{MetricRequests, map[string]string{"target": "apps", "kind": "read"}, 5},
		{MetricRequests, map[string]string{"target": "apps", "kind": "write"}, 2},
		{MetricRequests, map[string]string{"target": "admin", "kind": "read"}, 0},
		{MetricRequests, map[string]string{"target": "admin", "kind": "write"}, 3},
		{MetricRetries, map[string]string{"target": "apps"}, 2},
		{MetricRetries, map[string]string{"target": "admin"}, 0},
		{MetricRowsByTarget, map[string]string{"target": "apps", "outcome": "applied"}, 3},
		{MetricRowsByTarget, map[string]string{"target": "apps", "outcome": "not_due"}, 1},
		{MetricRowsByTarget, map[string]string{"target": "apps", "outcome": "failed"}, 0},
		{MetricRowsByTarget, map[string]string{"target": "admin", "outcome": "failed"}, 1},
		{MetricRowsByTarget, map[string]string{"target": "typo\uFFFD", "outcome": "invalid"}, 2},
		{MetricRowsByAction, map[string]string{"action": "disable", "outcome": "already"}, 1},
		{MetricRowsByAction, map[string]string{"action": "toggle-status", "outcome": "applied"}, 1},
		{MetricRowsByAction, map[string]string{"action": "(invalid)", "outcome": "invalid"}, 2},
	}
	for _, c := range checks {
		if got := value(t, fs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every outcome is a series for every target: none vanishes between runs.
	if n, want := len(fs[MetricRowsByTarget].GetMetric()), 3*len(batch.Outcomes); n != want {
		t.Errorf("%d %s series, want %d", n, MetricRowsByTarget, want)
	}
	if n, want := len(fs[MetricRowsByAction].GetMetric()), 3*len(batch.Outcomes); n != want {
		t.Errorf("%d %s series, want %d (invalid actions summed)", n, MetricRowsByAction, want)
	}
	if fs[MetricRequests].GetType() != dto.MetricType_COUNTER || fs[MetricExitCode].GetType() != dto.MetricType_GAUGE {
		t.Errorf("types: requests %v, exit code %v", fs[MetricRequests].GetType(), fs[MetricExitCode].GetType())
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (node_exporter reads it as another user)", st.Mode().Perm())
	}
}

func TestWriteMetricsKeepsLastSuccessThroughFailures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "userbatch.prom")
	day := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
	write := func(code reports.ExitCode, finished time.Time) map[string]*dto.MetricFamily {
		t.Helper()
		if err := WriteMetrics(path, RunMetrics{ExitCode: code, Duration: time.Second, Finished: finished}); err != nil {
			t.Fatal(err)
		}
		return readMetrics(t, path)
	}
	write(reports.ExitOK, day)
	for i, code := range []reports.ExitCode{reports.ExitStopped, reports.ExitBadInput, reports.ExitHeld} {
		finished := day.Add(time.Duration(i+1) * time.Hour)
		fs := write(code, finished)
		if got, want := value(t, fs, MetricLastSuccess, nil), float64(day.Unix()); got != want {
			t.Errorf("after exit %d: last success %v, want the earlier run's %v", code, got, want)
		}
		if got := value(t, fs, MetricLastRun, nil); got != float64(finished.Unix()) {
			t.Errorf("after exit %d: last run %v, want %v", code, got, finished.Unix())
		}
		if got := value(t, fs, MetricExitCode, nil); got != float64(code) {
			t.Errorf("exit code %v, want %d", got, code)
		}
		if _, ok := fs[MetricRowsByTarget]; ok {
			t.Errorf("rows written without a summary")
		}
	}
	later := day.Add(24 * time.Hour)
	fs := write(reports.ExitIncomplete, later)
	if got := value(t, fs, MetricLastSuccess, nil); got != float64(later.Unix()) {
		t.Errorf("a finished run with failed rows: last success %v, want %v", got, later.Unix())
	}
}

func TestWriteMetricsOmitsUnknownLastSuccess(t *testing.T) {
	dir := t.TempDir()
	for name, previous := range map[string]string{
		"none":        "",
		"unparsable":  "userbatch_last_success_timestamp_seconds{ 12\n",
		"without it":  "# TYPE userbatch_last_exit_code gauge\nuserbatch_last_exit_code 0\n",
		"not a gauge": "# TYPE userbatch_last_success_timestamp_seconds counter\nuserbatch_last_success_timestamp_seconds 12\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".prom")
		if previous != "" {
			if err := os.WriteFile(path, []byte(previous), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := WriteMetrics(path, RunMetrics{ExitCode: reports.ExitStopped, Finished: time.Now()}); err != nil {
			t.Fatal(err)
		}
		fs := readMetrics(t, path)
		if _, ok := fs[MetricLastSuccess]; ok {
			t.Errorf("%s: a last success was made up: %v", name, fs[MetricLastSuccess])
		}
		if got := value(t, fs, MetricExitCode, nil); got != 3 {
			t.Errorf("%s: exit code %v", name, got)
		}
	}
}

// A reader (node_exporter) never sees half a file: every read while runs
// rewrite it parses whole.
func TestWriteMetricsIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "userbatch.prom")
	sum := sampleSummary()
	write := func(i int) error {
		return WriteMetrics(path, RunMetrics{Summary: sum, ExitCode: reports.ExitOK, Finished: time.Unix(int64(1e9+i), 0),
			Writes: map[string]int{"apps": i}})
	}
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var reads atomic.Int64
	var bad error // the reader's; read after wg.Wait
	var failed atomic.Bool
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			f, err := os.Open(path)
			if err != nil {
				bad = err
				failed.Store(true)
				return
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			fs, err := p.TextToMetricFamilies(f)
			f.Close()
			if err == nil && (fs[MetricLastSuccess] == nil || fs[MetricRowsByAction] == nil) {
				err = fmt.Errorf("a metric is missing: %d families", len(fs))
			}
			if err != nil {
				bad = err
				failed.Store(true)
				return
			}
			reads.Add(1)
		}
	}()
	// Write on until the reader has read often enough to have met writes.
	last := 0
	for i := 1; i <= 200 || reads.Load() < 50 && !failed.Load(); i++ {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
		last = i
	}
	close(done)
	wg.Wait()
	if bad != nil {
		t.Fatalf("after %d whole reads, a reader saw a broken file: %v", reads.Load(), bad)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if got := value(t, readMetrics(t, path), MetricRequests, map[string]string{"target": "apps", "kind": "write"}); got != float64(last) {
		t.Errorf("the last write is not the file: requests %v, want %d", got, last)
	}
}

func TestWriteMetricsBoundsTargets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "userbatch.prom")
	byTarget := map[string]reports.Counts{}
	for i := range maxTargetLabels + 50 {
		byTarget[fmt.Sprintf("t%03d", i)] = reports.Counts{batch.Invalid: 1}
	}
	byTarget[strings.Repeat("x", 1000)] = reports.Counts{batch.Invalid: 1}
	sum := &reports.Summary{ByTarget: byTarget, ByAction: map[string]reports.Counts{"disable": {batch.Invalid: 151}}}
	if err := WriteMetrics(path, RunMetrics{Summary: sum, ExitCode: reports.ExitBadInput, Finished: time.Now()}); err != nil {
		t.Fatal(err)
	}
	fs := readMetrics(t, path)
	if n := len(fs[MetricRowsByTarget].GetMetric()); n != maxTargetLabels+1 {
		t.Errorf("%d target series, want %d and one (other)", n, maxTargetLabels)
	}
	if got := value(t, fs, MetricRowsByTarget, map[string]string{"target": "(other)"}); got != 51 {
		t.Errorf("(other) = %v, want 51", got)
	}
	total := 0.0
	for _, m := range fs[MetricRowsByTarget].GetMetric() {
		total += m.GetGauge().GetValue()
		for _, lp := range m.GetLabel() {
			if len(lp.GetValue()) > maxLabelLen {
				t.Errorf("a label of %d bytes", len(lp.GetValue()))
			}
		}
	}
	if total != 151 {
		t.Errorf("rows add up to %v, want 151", total)
	}
}

func TestWriteMetricsLabels(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shard1.prom")
	labels := map[string]string{"shard": "1/2"}
	if err := WriteMetrics(path, RunMetrics{Summary: sampleSummary(), Writes: map[string]int{"apps": 1},
		ExitCode: reports.ExitOK, Finished: time.Now(), Labels: labels}); err != nil {
		t.Fatal(err)
	}
	fs := readMetrics(t, path)
	for name, mf := range fs {
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				t.Errorf("%s: no shard label: %v", name, m.GetLabel())
			}
		}
	}
	for _, bad := range []map[string]string{{"target": "x"}, {"1shard": "x"}, {"a-b": "x"}} {
		p := filepath.Join(dir, "bad.prom")
		if err := WriteMetrics(p, RunMetrics{ExitCode: reports.ExitOK, Labels: bad}); err == nil {
			t.Errorf("labels %v accepted", bad)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("labels %v: a file was written", bad)
		}
	}
}

func TestWriteMetricsMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "userbatch.prom")
	if err := WriteMetrics(path, RunMetrics{ExitCode: reports.ExitOK}); err == nil {
		t.Fatal("no error for a directory that does not exist")
	}
}
