package job

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// RunMetrics is what one userbatch process reports to Prometheus.
type RunMetrics struct {
	// Summary may be nil when the run ended before a report (then only the
	// exit code, duration and timestamps are written).
	Summary *reports.Summary
	// Reads and Writes count the requests this process sent, by target:
	// reads of a user's state, and writes that ask for a change.
	Reads, Writes map[string]int
	// Retries counts this process's retries, by target.
	Retries  map[string]int
	ExitCode reports.ExitCode
	// Duration is how long this process ran.
	Duration time.Duration
	// Finished is when this process ended: the run and success timestamps
	// (zero: now).
	Finished time.Time
	// Labels are added to every metric, such as {"shard": "1/4"}: node_exporter
	// refuses the same series from two files of its directory, so processes
	// that write one file each into it need a label that tells them apart.
	// Optional; names must not be target, kind, action or outcome.
	Labels map[string]string
}

// The metric names WriteMetrics writes.
const (
	// MetricRowsByTarget is rows by target and outcome (a gauge). The summary
	// counts by target and by action separately, not their cross product, so
	// there are two row metrics rather than one rows{target,action,outcome}.
	MetricRowsByTarget = "userbatch_rows_by_target"
	// MetricRowsByAction is rows by action and outcome (a gauge). Rows whose
	// action is not a canonical one (invalid rows) count as "(invalid)".
	MetricRowsByAction = "userbatch_rows_by_action"
	// MetricRequests is the requests this process sent in its run, by
	// target and kind ("read" or "write": a dry run has no write). A
	// counter, since requests only add up within a run; each run's file
	// starts again from its own count, which Prometheus reads as a reset.
	MetricRequests = "userbatch_requests_total"
	// MetricRetries is this process's retries, by target (a counter, as MetricRequests).
	MetricRetries = "userbatch_retries_total"
	// MetricDuration is how long the run took, in seconds.
	MetricDuration = "userbatch_run_duration_seconds"
	// MetricExitCode is the exit code of the last run.
	MetricExitCode = "userbatch_last_exit_code"
	// MetricLastRun is when the last run ended, in Unix seconds.
	MetricLastRun = "userbatch_last_run_timestamp_seconds"
	// MetricLastSuccess is when the last successful run ended, in Unix
	// seconds. Success means the run finished: exit code 0 or 1 (some rows
	// failed, but every row was tried and reported; a row-level failure is
	// the report's business, not a broken schedule's). A run that did not
	// succeed (2, 3, 4) carries the previous file's value forward, so an
	// alert on `time() - userbatch_last_success_timestamp_seconds` fires
	// when runs keep failing.
	MetricLastSuccess = "userbatch_last_success_timestamp_seconds"
)

// Label bounds: a file of garbage must not make thousands of series.
const (
	maxTargetLabels = 100
	maxLabelLen     = 128
	otherLabel      = "(other)"
	invalidAction   = "(invalid)"
	// maxMetricsFile bounds how much of the previous file is read.
	maxMetricsFile = 4 << 20
)

// WriteMetrics writes m to path in Prometheus text format, for
// node_exporter's textfile collector (name the file *.prom in its
// directory). It writes a temporary file beside path and renames it, so a
// reader never sees half a file, and leaves it mode 0644: node_exporter
// usually runs as another user, and the file holds counts only, no user id.
// Give each process its own path (and a distinguishing label, see Labels).
// An error means the file was not replaced.
func WriteMetrics(path string, m RunMetrics) error {
	if path == "" {
		return errors.New("metrics: no file named")
	}
	if err := checkLabels(m.Labels); err != nil {
		return err
	}
	lastSuccess, haveSuccess := previousSuccess(path)
	if succeeded(m.ExitCode) {
		lastSuccess, haveSuccess = unixSeconds(m.Finished), true
	}
	reg := prometheus.NewRegistry()
	w := metricWriter{reg: reg, labels: m.Labels}
	w.gauge(MetricExitCode, "Exit code of the last userbatch run (0 all done, 1 some rows not done, 2 bad input, 3 stopped, 4 held by a guard).", float64(m.ExitCode))
	w.gauge(MetricDuration, "How long the last userbatch run took, in seconds.", m.Duration.Seconds())
	w.gauge(MetricLastRun, "When the last userbatch run ended, in Unix seconds.", unixSeconds(m.Finished))
	if haveSuccess {
		w.gauge(MetricLastSuccess, "When the last userbatch run that finished (exit code 0 or 1) ended, in Unix seconds.", lastSuccess)
	}
	w.requests(m.Reads, m.Writes)
	w.perTarget(MetricRetries, "Retries in the last userbatch run, by target.", m.Retries)
	if m.Summary != nil {
		w.rows(MetricRowsByTarget, "Rows of the last userbatch run by target and outcome.", "target", m.Summary.ByTarget, targetLabel)
		w.rows(MetricRowsByAction, "Rows of the last userbatch run by action and outcome.", "action", m.Summary.ByAction, actionLabel)
	}
	if w.err != nil {
		return fmt.Errorf("metrics: %w", w.err)
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing the metrics file: %w", err)
	}
	return nil
}

// succeeded reports whether a run with this exit code finished.
func succeeded(c reports.ExitCode) bool { return c == reports.ExitOK || c == reports.ExitIncomplete }

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		t = time.Now()
	}
	return float64(t.UnixMicro()) / 1e6
}

func checkLabels(labels map[string]string) error {
	for name := range labels {
		switch {
		case name == "target", name == "kind", name == "action", name == "outcome":
			return fmt.Errorf("metrics: label %q is userbatch's own", name)
		case !model.LegacyValidation.IsValidLabelName(name):
			return fmt.Errorf("metrics: %q is not a label name (letters, digits and _, not first a digit)", name)
		}
	}
	return nil
}

// previousSuccess reads the success timestamp from the file a previous run
// left at path. A missing or unreadable file, or one without the metric,
// gives none.
func previousSuccess(path string) (float64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(f, maxMetricsFile))
	if err != nil {
		return 0, false
	}
	mf := families[MetricLastSuccess]
	if mf == nil || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetGauge() == nil {
		return 0, false
	}
	v := mf.GetMetric()[0].GetGauge().GetValue()
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return 0, false
	}
	return v, true
}

// metricWriter registers metrics on one registry and keeps the first error.
type metricWriter struct {
	reg    *prometheus.Registry
	labels map[string]string
	err    error
}

func (w *metricWriter) register(c prometheus.Collector) {
	if w.err == nil {
		w.err = w.reg.Register(c)
	}
}

func (w *metricWriter) gauge(name, help string, v float64) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: w.labels})
	g.Set(v)
	w.register(g)
}

func (w *metricWriter) perTarget(name, help string, counts map[string]int) {
	if len(counts) == 0 {
		return
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: w.labels}, []string{"target"})
	for i, target := range slices.Sorted(maps.Keys(counts)) {
		if w.err == nil {
			var m prometheus.Counter
			m, w.err = c.GetMetricWithLabelValues(targetLabel(i, target))
			if w.err == nil {
				m.Add(float64(counts[target]))
			}
		}
	}
	w.register(c)
}

// requests writes the requests by target and kind. A target that was sent
// anything has both series, a zero included, so "writes" of a dry run
// reads 0 rather than missing.
func (w *metricWriter) requests(reads, writes map[string]int) {
	targets := map[string]bool{}
	for t := range reads {
		targets[t] = true
	}
	for t := range writes {
		targets[t] = true
	}
	if len(targets) == 0 {
		return
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests, ConstLabels: w.labels,
		Help: "Requests the last userbatch run sent, by target and kind (read, write)."}, []string{"target", "kind"})
	for i, target := range slices.Sorted(maps.Keys(targets)) {
		for kind, n := range map[string]int{"read": reads[target], "write": writes[target]} {
			if w.err == nil {
				var m prometheus.Counter
				m, w.err = c.GetMetricWithLabelValues(targetLabel(i, target), kind)
				if w.err == nil {
					m.Add(float64(n))
				}
			}
		}
	}
	w.register(c)
}

// rows writes one series per key and outcome, zeros included, so a series
// does not vanish from a run that had none of an outcome. Keys that share
// a label (see label) are summed.
func (w *metricWriter) rows(name, help, keyLabel string, byKey map[string]reports.Counts, label func(int, string) string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: w.labels}, []string{keyLabel, "outcome"})
	for i, key := range slices.Sorted(maps.Keys(byKey)) {
		for outcome, n := range byKey[key] {
			if w.err != nil {
				return
			}
			var m prometheus.Gauge
			m, w.err = g.GetMetricWithLabelValues(label(i, key), labelValue(string(outcome)))
			if w.err == nil {
				m.Add(float64(n))
			}
		}
	}
	w.register(g)
}

// targetLabel is the label value of the i-th target name in name order:
// valid UTF-8, not too long, and "(other)" past maxTargetLabels. Target
// names come from the input for invalid rows, so a file of garbage could
// otherwise make thousands of series.
func targetLabel(i int, name string) string {
	if i >= maxTargetLabels {
		return otherLabel
	}
	return labelValue(name)
}

// actionLabel is a canonical action as it is, and "(invalid)" for any
// other key (an invalid row's cell as written).
func actionLabel(_ int, name string) string {
	if slices.Contains(batch.Actions, batch.Action(name)) {
		return name
	}
	return invalidAction
}

// labelValue is s as a label value: valid UTF-8, at most maxLabelLen bytes.
func labelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxLabelLen {
		s = strings.ToValidUTF8(s[:maxLabelLen], "")
	}
	return s
}

// MetricsFile writes a run's metrics to a file at its end, whatever the
// exit code (README "Scheduling"). It counts the requests of every row the
// run recorded; a file that cannot be written is logged, never fails the run.
type MetricsFile struct {
	Unobserved
	path   string
	labels map[string]string
	log    zerolog.Logger

	mu                     sync.Mutex
	reads, writes, retries map[string]int
}

// NewMetricsFile writes to path, every metric labelled with labels (nil: none).
func NewMetricsFile(path string, labels map[string]string, log zerolog.Logger) *MetricsFile {
	return &MetricsFile{path: path, labels: labels, log: log, reads: map[string]int{}, writes: map[string]int{}, retries: map[string]int{}}
}

func (m *MetricsFile) RowDone(res batch.Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[res.Target] += res.Attempts - res.Writes
	m.writes[res.Target] += res.Writes
	m.retries[res.Target] += res.Retries
}

func (m *MetricsFile) Finished(e End) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := RunMetrics{Summary: e.Summary, Reads: m.reads, Writes: m.writes, Retries: m.retries,
		ExitCode: e.ExitCode, Duration: e.Duration, Finished: e.At, Labels: m.labels}
	if err := WriteMetrics(m.path, rm); err != nil {
		m.log.Warn().Err(err).Str("metrics_file", m.path).Msg("the metrics file could not be written")
	}
}
