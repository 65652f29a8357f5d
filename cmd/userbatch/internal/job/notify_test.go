package job

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// webhookPath looks like a Slack webhook: the token is the secret part.
const webhookPath = "/services/T0001/B0002/s3cr3tT0k3n"

// fastNotify is a run's timing with a millisecond's backoff; timeout
// and total bound them (generous where timing is not the point: tests run
// in parallel, and a slow handshake must not read as a timeout).
func fastNotify(timeout, total time.Duration) NotifyTiming {
	tm := DefaultNotifyTiming()
	tm.Backoff, tm.Timeout, tm.Total = time.Millisecond, timeout, total
	return tm
}

// hook is a webhook on loopback that answers with statuses in turn (the
// last one from then on) and records what it received.
type hook struct {
	srv      *httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	types    []string
	statuses []int
}

func newHook(t *testing.T, statuses ...int) *hook {
	t.Helper()
	h := &hook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := len(h.bodies)
		h.bodies = append(h.bodies, body)
		h.types = append(h.types, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		status := h.statuses[min(n, len(h.statuses)-1)]
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) url() string { return h.srv.URL + webhookPath }

func (h *hook) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// capture is a logger into a buffer, and the buffer.
func capture() (zerolog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return zerolog.New(&buf).Level(zerolog.DebugLevel), &buf
}

// assertNoSecret fails if the log holds any part of the webhook URL.
func assertNoSecret(t *testing.T, logged string, webhook string) {
	t.Helper()
	u, err := url.Parse(webhook)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{webhook, u.Host, u.Hostname(), u.Port(), u.Path, "s3cr3tT0k3n", "services"} {
		if part != "" && strings.Contains(logged, part) {
			t.Errorf("the log holds %q of the webhook URL: %s", part, logged)
		}
	}
}

func warns(t *testing.T, logged string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logged), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "warn" {
			out = append(out, m)
		}
	}
	return out
}

func TestNotifySendsTheSummary(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	h := newHook(t, http.StatusOK)
	log, buf := capture()
	sum := sampleSummary()
	tm.Notify(context.Background(), log, h.url(), "userbatch: done", sum)
	if h.requests() != 1 {
		t.Fatalf("%d requests, want 1", h.requests())
	}
	if want := "POST " + webhookPath + " application/json"; h.types[0] != want {
		t.Errorf("request %q, want %q", h.types[0], want)
	}
	var got struct {
		Text    string          `json:"text"`
		Summary reports.Summary `json:"summary"`
	}
	if err := json.Unmarshal(h.bodies[0], &got); err != nil {
		t.Fatalf("body %s: %v", h.bodies[0], err)
	}
	if got.Text != "userbatch: done" {
		t.Errorf("text %q", got.Text)
	}
	s := got.Summary
	if s.Rows != sum.Rows || s.ExitCode != sum.ExitCode || s.Outcomes[batch.Applied] != 4 ||
		s.ByTarget["admin"][batch.Failed] != 1 || s.ByAction["disable"][batch.NotDue] != 1 {
		t.Errorf("summary received %+v, sent %+v", s, *sum)
	}
	if w := warns(t, buf.String()); len(w) != 0 {
		t.Errorf("warnings on success: %v", w)
	}
}

func TestNotifyRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	h := newHook(t, 500, 503, 200)
	log, buf := capture()
	tm.Notify(context.Background(), log, h.url(), "x", nil)
	if h.requests() != 3 {
		t.Errorf("%d requests, want 3", h.requests())
	}
	if w := warns(t, buf.String()); len(w) != 0 {
		t.Errorf("warnings after a success: %v", w)
	}
	if !strings.Contains(string(h.bodies[2]), `"summary":null`) {
		t.Errorf("a nil summary: body %s", h.bodies[2])
	}
}

func TestNotifyGivesUpAndLogsNoSecret(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	h := newHook(t, http.StatusInternalServerError)
	log, buf := capture()
	tm.Notify(context.Background(), log, h.url(), "x", sampleSummary())
	if h.requests() != 3 {
		t.Errorf("%d requests, want 3", h.requests())
	}
	w := warns(t, buf.String())
	if len(w) != 1 || w[0]["reason"] != "HTTP 500" || w[0]["attempts"] != 3.0 ||
		!strings.Contains(w[0]["message"].(string), "the notify webhook") {
		t.Errorf("want one warning naming the notify webhook, HTTP 500 and 3 attempts: %s", buf)
	}
	assertNoSecret(t, buf.String(), h.url())
}

func TestNotifyStopsOnARefusal(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	h := newHook(t, http.StatusNotFound)
	log, buf := capture()
	tm.Notify(context.Background(), log, h.url(), "x", nil)
	if h.requests() != 1 {
		t.Errorf("%d requests for a 404, want 1 (it will not heal)", h.requests())
	}
	if w := warns(t, buf.String()); len(w) != 1 || w[0]["reason"] != "HTTP 404" {
		t.Errorf("want a warning with HTTP 404: %s", buf)
	}
}

// hang is a webhook that never answers until the test ends.
func hang(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, &n
}

func TestNotifyTimesOutEachAttempt(t *testing.T) {
	t.Parallel()
	tm := fastNotify(50*time.Millisecond, 5*time.Second)
	srv, n := hang(t)
	log, buf := capture()
	start := time.Now()
	tm.Notify(context.Background(), log, srv.URL+webhookPath, "x", nil)
	took := time.Since(start)
	if n.Load() != 3 {
		t.Errorf("%d attempts, want 3", n.Load())
	}
	if took > 2*time.Second {
		t.Errorf("took %v for 3 attempts of 50ms", took)
	}
	if w := warns(t, buf.String()); len(w) != 1 || w[0]["reason"] != "timed out" {
		t.Errorf("want a warning saying timed out: %s", buf)
	}
	assertNoSecret(t, buf.String(), srv.URL+webhookPath)
}

func TestNotifyIsBoundedAsAWhole(t *testing.T) {
	t.Parallel()
	tm := fastNotify(10*time.Second, 100*time.Millisecond)
	srv, _ := hang(t)
	log, buf := capture()
	start := time.Now()
	tm.Notify(context.Background(), log, srv.URL+webhookPath, "x", nil)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v: the total bound of 100ms did not hold (an attempt may take 10s)", took)
	}
	if len(warns(t, buf.String())) != 1 {
		t.Errorf("no warning: %s", buf)
	}
}

func TestNotifyRedirects(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	elsewhere := newHook(t, http.StatusOK)
	var moved atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, elsewhere.url(), http.StatusTemporaryRedirect)
		case "/moved":
			moved.Add(1)
			http.Redirect(w, r, "/here", http.StatusPermanentRedirect)
		case "/here":
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"text":"same host"`) {
				w.WriteHeader(http.StatusBadRequest)
			}
		}
	}))
	t.Cleanup(srv.Close)

	log, buf := capture()
	tm.Notify(context.Background(), log, srv.URL+"/away", "x", sampleSummary())
	if elsewhere.requests() != 0 {
		t.Errorf("the summary followed a redirect to another host")
	}
	if w := warns(t, buf.String()); len(w) != 1 || !strings.Contains(w[0]["reason"].(string), "HTTP 307") {
		t.Errorf("want a warning about the redirect: %s", buf)
	}
	assertNoSecret(t, buf.String(), elsewhere.url())

	log, buf = capture()
	tm.Notify(context.Background(), log, srv.URL+"/moved", "same host", nil)
	if moved.Load() != 1 || len(warns(t, buf.String())) != 0 {
		t.Errorf("a redirect on the same host, with its body: %d calls, log %s", moved.Load(), buf)
	}
}

func TestNotifyConnectionRefused(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	srv := httptest.NewServer(http.NotFoundHandler())
	webhook := srv.URL + webhookPath
	srv.Close()
	log, buf := capture()
	tm.Notify(context.Background(), log, webhook, "x", nil)
	if w := warns(t, buf.String()); len(w) != 1 || w[0]["reason"] != "connection refused" || w[0]["attempts"] != 3.0 {
		t.Errorf("want one warning, connection refused after 3 attempts: %s", buf)
	}
	assertNoSecret(t, buf.String(), webhook)
}

func TestNotifyNothingToCall(t *testing.T) {
	t.Parallel()
	log, buf := capture()
	DefaultNotifyTiming().Notify(context.Background(), log, "", "x", nil)
	if buf.Len() != 0 {
		t.Errorf("an empty webhook logged: %s", buf)
	}
	for _, bad := range []string{"ftp://hooks.example/s3cr3tT0k3n", "hooks.example/services/s3cr3tT0k3n", "https:///services/s3cr3tT0k3n"} {
		buf.Reset()
		DefaultNotifyTiming().Notify(context.Background(), log, bad, "x", nil)
		if w := warns(t, buf.String()); len(w) != 1 {
			t.Errorf("%q: want one warning: %s", bad, buf)
		}
		if strings.Contains(buf.String(), "s3cr3tT0k3n") || strings.Contains(buf.String(), "hooks.example") {
			t.Errorf("the log holds the webhook: %s", buf)
		}
	}
}

func TestNotifyHonoursACancelledContext(t *testing.T) {
	t.Parallel()
	tm := fastNotify(10*time.Second, 10*time.Second)
	srv, _ := hang(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	log, buf := capture()
	start := time.Now()
	tm.Notify(ctx, log, srv.URL+webhookPath, "x", nil)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v with a cancelled context", took)
	}
	if len(warns(t, buf.String())) != 1 {
		t.Errorf("want a warning: %s", buf)
	}
}

func TestNotifyText(t *testing.T) {
	t.Parallel()
	sum := sampleSummary()
	dry := *sum
	dry.DryRun = true
	cases := []struct {
		name string
		sum  *reports.Summary
		code reports.ExitCode
		held bool
		dir  string
		want string
	}{
		{"finished", sum, reports.ExitIncomplete, false, "/var/reports/2026-11-30",
			"userbatch: 9 rows (4 applied, 1 already, 1 not_due, 2 invalid, 1 failed); exit 1: finished, but some rows need attention; report: /var/reports/2026-11-30"},
		{"held", &reports.Summary{Rows: 2, Outcomes: reports.Counts{batch.Skipped: 2}}, reports.ExitHeld, true, "r",
			"userbatch held by a guard: 2 rows (2 skipped); exit 4: held by a guard, nothing was sent: see the counts and raise the limit or split the file; report: r"},
		{"no report", nil, reports.ExitStopped, false, "",
			"userbatch: exit 3: stopped before finishing, resumable with --resume"},
		{"dry run", &dry, reports.ExitOK, false, "d",
			"userbatch dry run: 9 rows (4 applied, 1 already, 1 not_due, 2 invalid, 1 failed); exit 0: done; report: d"},
		{"empty", &reports.Summary{}, reports.ExitBadInput, false, "",
			"userbatch: 0 rows (none); exit 2: bad input or config, nothing was sent"},
		{"unknown outcome", &reports.Summary{Rows: 1, Outcomes: reports.Counts{"zapped": 1}}, 9, false, "",
			"userbatch: 1 row (1 zapped); exit 9: unexpected"},
	}
	for _, c := range cases {
		if got := NotifyText(c.sum, c.code, c.held, c.dir); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestNotifyRefusedCertificateIsNotRetried: the webhook's failures are
// classified as a vendor's are (httpcall): a certificate the client does
// not trust is permanent, so one attempt is made, not three.
func TestNotifyRefusedCertificateIsNotRetried(t *testing.T) {
	t.Parallel()
	tm := fastNotify(5*time.Second, 15*time.Second)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	log, buf := capture()
	tm.Notify(context.Background(), log, srv.URL+webhookPath, "x", nil)
	w := warns(t, buf.String())
	if len(w) != 1 || w[0]["reason"] != "the server's TLS certificate was refused" || w[0]["attempts"] != 1.0 {
		t.Errorf("want one warning, the certificate refused after 1 attempt: %s", buf)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a refused certificate is not retried", n)
	}
	assertNoSecret(t, buf.String(), srv.URL+webhookPath)
}
