package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
)

// BenchmarkScale measures what issue 4 asks of the tool and prints a table:
//
//	go test ./cmd/userbatch -run '^$' -bench Scale -benchtime 1x
//
// UB_BENCH_ROWS sets the large file's rows (default 1,000,000);
// UB_BENCH_ONLY=throughput|memory|parse|pacing|workers64|report|rate5000|cpu
// runs one part (report-inprocess: the report part in this process, for
// -cpuprofile; cpu-inprocess: the pipeline of the cpu part in this process,
// for -cpuprofile, against a fake in another process). UB_BENCH_BINS lists
// binaries that rate5000 and cpu run in turn (see eachBinary).
func BenchmarkScale(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("UB_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	only := os.Getenv("UB_BENCH_ONLY") // throughput, memory or pacing
	for b.Loop() {
		var t table
		if only == "" || only == "throughput" {
			benchThroughput(b, &t, 20_000, 8)
		}
		if only == "" || only == "memory" {
			benchMemory(b, &t, rows)
		}
		if only == "" || only == "parse" {
			benchParse(b, &t, rows)
		}
		if only == "" || only == "workers64" {
			benchThroughput(b, &t, 20_000, 8)
			benchThroughput(b, &t, 20_000, 64)
		}
		if only == "" || only == "report" {
			benchDryRunReport(b, &t, rows)
		}
		if only == "report-inprocess" {
			benchDryRunReportInProcess(b, &t, rows)
		}
		if only == "" || only == "pacing" {
			benchPacing(b, &t, 400, 0, 4000)
			benchPacing(b, &t, 400, 50*time.Millisecond, 4000)
		}
		if only == "" || only == "rate5000" {
			eachBinary(&t, func() {
				benchDurableRate(b, &t, 3000, 15_000, true)
				benchDurableRate(b, &t, 5000, 25_000, true)
				benchDurableRate(b, &t, 5000, 25_000, false)
			})
		}
		if only == "" || only == "cpu" {
			eachBinary(&t, func() { benchCPU(b, &t, 20_000, 8) })
		}
		if only == "cpu-inprocess" {
			benchCPUInProcess(b, &t, 20_000, 8)
		}
		t.print(fmt.Sprintf("userbatch bench, %s, %d cores", time.Now().UTC().Format("2006-01-02"), runtimeCPUs()))
	}
}

// eachBinary runs part once with the binary built for this test, or, when
// UB_BENCH_BINS lists binaries (comma-separated: a build of main and one
// of a branch, say), once with each in turn, so that a before and an after
// meet the same load; each line's note then ends with the binary's name.
func eachBinary(t *table, part func()) {
	bins := os.Getenv("UB_BENCH_BINS")
	if bins == "" {
		part()
		return
	}
	built := binPath
	defer func() { binPath = built }()
	for _, bin := range strings.Split(bins, ",") {
		binPath = bin
		from := len(t.rows)
		part()
		for _, r := range t.rows[from:] {
			r[len(r)-1] += "; binary " + bin
		}
	}
}

type table struct{ rows [][]string }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) print(title string) {
	fmt.Println(title)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "measure\trows\tops/s\treference ops/s\tratio\tpeak RSS\tp50\tp99\tnote")
	for _, r := range t.rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(w, "\t")
			}
			fmt.Fprint(w, c)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

// benchFake is an epixel fake that creates users on first touch, on loopback.
func benchFake(b *testing.B, latency time.Duration) (*epixeltest.Server, *httptest.Server, *stamps) {
	fake := epixeltest.New(epixeltest.Options{APIKey: "bench-key", Token: "bench-token", AutoCreate: true})
	fake.Faults.SetLatency(latency)
	st := &stamps{}
	srv := httptest.NewServer(http.StripPrefix("/api", st.wrap(fake)))
	b.Cleanup(srv.Close)
	return fake, srv, st
}

func benchConfig(url string, rate float64, burst int, conc string) string {
	return fmt.Sprintf("targets:\n  shop:\n    vendor: epixel\n    base_url: %s/api\n    apikey: bench-key\n    token: bench-token\n"+
		"    rate: %g\n    burst: %d\n    concurrency: %s\n", url, rate, burst, conc)
}

func benchCSV(b *testing.B, dir string, n int) string {
	path := filepath.Join(dir, fmt.Sprintf("ops-%d.csv", n))
	var buf bytes.Buffer
	buf.WriteString("target,user,action,ticket\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&buf, "shop,user-%07d,disable,T%d\n", i, i)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchThroughput runs the pipeline against a fake with no latency and no
// limit, then vegeta against the same endpoint with the same concurrency,
// each on a fresh fake, three times in turn; it keeps each one's best, so
// that a moment of load on a shared machine does not decide the ratio.
func benchThroughput(b *testing.B, t *table, n, conc int) {
	var best benchSummary
	var ref float64
	for range 3 {
		if s := pipelineOnce(b, n, conc); s.OpsPerS > best.OpsPerS {
			best = s
		}
		ref = max(ref, vegetaOnce(b, n, conc))
	}
	t.add("throughput (fake, no latency, no limit)", strconv.Itoa(n), fmt.Sprintf("%.0f", best.OpsPerS), fmt.Sprintf("%.0f", ref),
		fmt.Sprintf("%.2f", best.OpsPerS/ref), "", ms(best.Latency.P50), ms(best.Latency.P99),
		fmt.Sprintf("concurrency %d, best of 3; vegeta, a new user per request, as reference", conc))
}

func pipelineOnce(b *testing.B, n, conc int) benchSummary {
	_, srv, _ := benchFake(b, 0)
	return runInProcess(b, benchConfig(srv.URL, 1e9, conc, strconv.Itoa(conc)), n)
}

// runInProcess runs n epixel rows through the real pipeline with the given
// targets.yaml and returns the run's summary.
func runInProcess(b *testing.B, targets string, n int) benchSummary {
	dir := b.TempDir()
	cfg, err := config.Parse([]byte(targets), noEnv)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	reportDir := filepath.Join(dir, "r")
	err = job.Run(context.Background(), job.Options{Args: job.Args{Config: cfg, ReportDir: reportDir, Input: benchCSV(b, dir, n),
		Grace: time.Second}, Log: zerolog.Nop(), Stdout: &out, Stderr: &out})
	if err != nil {
		b.Fatalf("%v\n%s", err, out.String())
	}
	return summaryOf(b, reportDir)
}

func vegetaOnce(b *testing.B, n, conc int) float64 {
	_, srv, _ := benchFake(b, 0)
	atk := vegeta.NewAttacker(vegeta.Workers(uint64(conc)), vegeta.MaxWorkers(uint64(conc)), vegeta.Connections(conc))
	start := time.Now()
	sent := 0
	for res := range atk.Attack(blockTargeter(b, srv.URL+"/api/block/user/"), vegeta.Rate{Freq: 0}, 0, "ref") {
		if res.Code != http.StatusOK {
			b.Fatalf("vegeta: HTTP %d %s", res.Code, res.Error)
		}
		if sent++; sent >= n {
			atk.Stop()
		}
	}
	return float64(sent) / time.Since(start).Seconds()
}

// blockTargeter makes vegeta block a new user with each request, as the
// pipeline does, so that the fake does the same work for both.
func blockTargeter(b *testing.B, url string) vegeta.Targeter {
	return blockTargeterFor(b, url, "bench-key", "bench-token")
}

// blockTargeterFor is blockTargeter with the fake's credentials.
func blockTargeterFor(b *testing.B, url, apikey, token string) vegeta.Targeter {
	var mu sync.Mutex
	n := 0
	return func(t *vegeta.Target) error {
		mu.Lock()
		n++
		user := fmt.Sprintf("vegeta-%07d", n)
		mu.Unlock()
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		if err := w.WriteField("unique_id", user); err != nil {
			b.Error(err)
		}
		w.Close()
		t.Method, t.URL, t.Body = "POST", url, buf.Bytes()
		t.Header = http.Header{"Apikey": {apikey}, "Authorization": {"Bearer " + token}, "Content-Type": {w.FormDataContentType()}}
		return nil
	}
}

type benchSummary struct {
	OpsPerS float64 `json:"ops_per_s"`
	Latency struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
	Rows int `json:"rows"`
}

func summaryOf(b *testing.B, dir string) benchSummary {
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		b.Fatal(err)
	}
	var s benchSummary
	if err := json.Unmarshal(raw, &s); err != nil {
		b.Fatal(err)
	}
	return s
}

func ms(v float64) string { return fmt.Sprintf("%.1fms", v) }

// benchMemory runs the built binary over 100k rows and over rows, for
// validate, run --dry-run and run, and reads each one's peak RSS.
func benchMemory(b *testing.B, t *table, rows int) {
	_, srv, _ := benchFake(b, 0)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(cfg, []byte(benchConfig(srv.URL, 1e9, 16, "16")), 0o600); err != nil {
		b.Fatal(err)
	}
	small, large := benchCSV(b, dir, 100_000), benchCSV(b, dir, rows)
	for _, cmd := range [][]string{{"validate"}, {"run", "--dry-run"}, {"run"}} {
		var rss [2]int64
		for i, in := range []string{small, large} {
			args := append(append([]string{}, cmd...), "-c", cfg, in)
			if cmd[0] == "run" {
				args = append(args, "-o", filepath.Join(dir, fmt.Sprintf("%s-%d-%d", cmd[len(cmd)-1], i, rows)))
			}
			start := time.Now()
			rss[i] = peakRSS(b, args...)
			if cmd[0] == "run" && cmd[len(cmd)-1] == "run" && i == 1 {
				s := summaryOf(b, args[len(args)-1])
				t.add("run "+strconv.Itoa(rows), strconv.Itoa(rows), fmt.Sprintf("%.0f", s.OpsPerS), "", "",
					mib(rss[1]), ms(s.Latency.P50), ms(s.Latency.P99), fmt.Sprintf("took %s", time.Since(start).Round(time.Second)))
			}
		}
		note := "ratio = RSS(large)/RSS(100k)"
		if rows >= 1_000_000 && rss[1] > memoryBudget {
			note += fmt.Sprintf("; OVER the %s a million rows may take", mib(memoryBudget))
		}
		t.add("peak RSS: "+joinArgs(cmd), fmt.Sprintf("100000 / %d", rows), "", "", fmt.Sprintf("%.2f", float64(rss[1])/float64(rss[0])),
			mib(rss[0])+" / "+mib(rss[1]), "", "", note)
	}
}

// memoryBudget is the peak RSS a run of a million rows may take, in KiB
// (issue 19: memory stays flat).
const memoryBudget = 64 * 1024

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

// peakRSS runs the binary and returns its peak RSS in KiB, read from its
// own VmHWM while it runs. (wait4's ru_maxrss would count the memory of the
// test process the child was forked from.)
func peakRSS(b *testing.B, args ...string) int64 {
	cmd := exec.Command(binPath, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("%v: %v\n%s", args, err, stderr.String())
			}
			return peak
		case <-tick.C:
			if kb := vmHWM(cmd.Process.Pid); kb > peak {
				peak = kb
			}
		}
	}
}

// vmHWM reads a process's peak resident set size in KiB (0 if gone).
func vmHWM(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// benchDryRunReport runs the binary's run --dry-run over rows epixel rows
// (epixel reads no state in a dry run, so the run is the tool's own work)
// and splits its time: the report phase is from the journal's last write to
// summary.json's, the last file the report writes.
func benchDryRunReport(b *testing.B, t *table, rows int) {
	_, srv, _ := benchFake(b, 0)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(cfg, []byte(benchConfig(srv.URL, 1e9, 16, "16")), 0o600); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "r")
	start := time.Now()
	rss := peakRSS(b, "run", "--dry-run", "-c", cfg, benchCSV(b, dir, rows), "-o", out)
	total := time.Since(start)
	addReportShare(b, t, rows, total, out, mib(rss), "binary, input written before the clock starts")
}

// benchDryRunReportInProcess is benchDryRunReport in this process, so that
// -cpuprofile sees it.
func benchDryRunReportInProcess(b *testing.B, t *table, rows int) {
	_, srv, _ := benchFake(b, 0)
	dir := b.TempDir()
	cfg, err := config.Parse([]byte(benchConfig(srv.URL, 1e9, 16, "16")), noEnv)
	if err != nil {
		b.Fatal(err)
	}
	in, out := benchCSV(b, dir, rows), filepath.Join(dir, "r")
	var log bytes.Buffer
	start := time.Now()
	err = job.Run(context.Background(), job.Options{Args: job.Args{Config: cfg, ReportDir: out, Input: in, DryRun: true,
		Grace: time.Second}, Log: zerolog.Nop(), Stdout: &log, Stderr: &log})
	if err != nil {
		b.Fatalf("%v\n%s", err, log.String())
	}
	addReportShare(b, t, rows, time.Since(start), out, "", "in process")
}

// addReportShare adds the dry run's line: total time, report time and share.
func addReportShare(b *testing.B, t *table, rows int, total time.Duration, out, rss, note string) {
	report := mtime(b, filepath.Join(out, "summary.json")).Sub(mtime(b, filepath.Join(out, batch.JournalName)))
	t.add("run --dry-run, report share", strconv.Itoa(rows), fmt.Sprintf("%.0f", float64(rows)/total.Seconds()), "",
		fmt.Sprintf("%.2f", report.Seconds()/total.Seconds()), rss, "", "",
		fmt.Sprintf("took %v, report %v; %s", total.Round(10*time.Millisecond), report.Round(10*time.Millisecond), note))
}

func mtime(b *testing.B, path string) time.Time {
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return info.ModTime()
}

// benchParse times validating a file (parse and validate every row, as
// `validate` does) against reading it with bare encoding/csv; best of 3 each.
func benchParse(b *testing.B, t *table, rows int) {
	path := benchCSV(b, b.TempDir(), rows)
	bare, ours := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range 3 {
		bare = min(bare, timed(b, path, readBare))
		ours = min(ours, timed(b, path, readValidated))
	}
	perSec := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(rows)/d.Seconds()) }
	t.add("parse+validate vs bare encoding/csv", strconv.Itoa(rows), perSec(ours), perSec(bare),
		fmt.Sprintf("%.2f", float64(bare)/float64(ours)), "", "", "",
		fmt.Sprintf("%v vs %v: validate takes %.1fx the bare read", ours.Round(time.Millisecond), bare.Round(time.Millisecond), float64(ours)/float64(bare)))
}

func timed(b *testing.B, path string, read func(string) error) time.Duration {
	start := time.Now()
	if err := read(path); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func readBare(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	for {
		if _, err := cr.Read(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// readValidated is validate's own loop.
func readValidated(path string) error {
	targets := batch.Targets{"shop": {Vendor: "epixel", Actions: []batch.Action{batch.Disable}}}
	v, err := job.ValidateFile(path, nil, targets, job.ParseOptions{}, io.Discard)
	if err == nil && v.Invalid > 0 {
		err = fmt.Errorf("%d invalid rows", v.Invalid)
	}
	return err
}

// benchPacing runs n rows at rate r against a fake with the given latency,
// with concurrency auto, and checks what the vendor saw.
func benchPacing(b *testing.B, t *table, r float64, latency time.Duration, n int) {
	_, srv, st := benchFake(b, latency)
	s := runInProcess(b, benchConfig(srv.URL, r, 1, "auto"), n)
	achieved, worst := st.rate()
	t.add(fmt.Sprintf("pacing: rate %g, latency %v", r, latency), strconv.Itoa(n), fmt.Sprintf("%.1f", achieved),
		fmt.Sprintf("%g", r), fmt.Sprintf("%.3f", achieved/r), "", ms(s.Latency.P50), ms(s.Latency.P99),
		fmt.Sprintf("busiest 1s window: %d requests (limit %g + burst 1)", worst, r))
}

// stamps records when the vendor saw each request.
type stamps struct {
	mu sync.Mutex
	at []time.Time
}

func (s *stamps) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.at = append(s.at, time.Now())
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// rate returns requests per second over the run and the most requests seen
// in any one-second window.
func (s *stamps) rate() (float64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := append([]time.Time(nil), s.at...)
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	if len(at) < 2 {
		return 0, len(at)
	}
	worst, lo := 0, 0
	for hi := range at {
		for at[hi].Sub(at[lo]) >= time.Second {
			lo++
		}
		worst = max(worst, hi-lo+1)
	}
	return float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds(), worst
}

func runtimeCPUs() int { return runtime.NumCPU() }

// benchDurableRate runs n rows as an operator does (the built binary, the
// journal on, a SQLite ledger, concurrency auto) at rate r against a fake
// that answers in 20 ms, and reports the rate the vendor saw ÷ the rate
// asked (issue 19, point 1), with the busiest one-second window, which must
// stay within rate + burst. Without the ledger (withLedger false) it tells
// the ledger's share.
func benchDurableRate(b *testing.B, t *table, r float64, n int, withLedger bool) {
	const latency = 20 * time.Millisecond
	_, srv, st := benchFake(b, latency)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "targets.yaml")
	yaml, durable := benchConfig(srv.URL, r, 1, "auto"), "journal, no ledger"
	if withLedger {
		yaml, durable = yaml+"ledger: sqlite:"+filepath.Join(dir, "ledger.db")+"\n", "journal + sqlite ledger"
	}
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "r")
	ps := benchBinary(b, "run", "-c", cfg, benchCSV(b, dir, n), "-o", out)
	s := summaryOf(b, out)
	achieved, worst := st.rate()
	cpu := ps.UserTime() + ps.SystemTime()
	note := fmt.Sprintf("binary, %s, latency %v, concurrency auto; busiest 1s window: %d (limit %g + burst 1); %.0f µs CPU a row; load %s",
		durable, latency, worst, r, float64(cpu.Microseconds())/float64(n), loadAvg())
	if float64(worst) > r+1 {
		note += " OVER THE RATE"
	}
	t.add(fmt.Sprintf("durable rate %g, latency %v, %s", r, latency, durable), strconv.Itoa(n), fmt.Sprintf("%.1f", achieved),
		fmt.Sprintf("%g", r), fmt.Sprintf("%.3f", achieved/r), "", ms(s.Latency.P50), ms(s.Latency.P99), note)
}

// benchBinary runs the built binary to its end and returns its state (CPU
// time in it: the child's own rusage).
func benchBinary(b *testing.B, args ...string) *os.ProcessState {
	cmd := exec.Command(binPath, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("%v: %v\n%s", args, err, out.String())
	}
	return cmd.ProcessState
}

// benchCPU compares the CPU time a row costs the pipeline with what a
// request costs vegeta against the same fake endpoint (issue 19, point 2).
// The fake is `userbatch sandbox`, in its own process, so neither side
// counts it; the pipeline is the built binary (its CPU is its rusage as a
// child), vegeta runs here (this process's rusage across the attack). Same
// rows, same concurrency, no rate limit; three rounds, sides alternated.
func benchCPU(b *testing.B, t *table, n, conc int) {
	var ours, ref []time.Duration
	for range 3 {
		ours = append(ours, pipelineCPU(b, n, conc))
		ref = append(ref, vegetaCPU(b, n, conc))
	}
	fixed := pipelineCPU(b, 10, conc)
	ratios := make([]string, len(ours))
	for i := range ours {
		ratios[i] = fmt.Sprintf("%.2f", float64(ours[i])/float64(ref[i]))
	}
	per := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
	mo, mr := median(ours), median(ref)
	t.add("CPU per row vs vegeta's per request", strconv.Itoa(n), "", "", fmt.Sprintf("%.2f", float64(mo)/float64(mr)), "", "", "",
		fmt.Sprintf("µs CPU: pipeline %.1f / vegeta %.1f (medians of 3; ratios %s); concurrency %d, fake in another process; the binary's fixed cost (10 rows): %v; load %s",
			per(mo, n), per(mr, n), strings.Join(ratios, ", "), conc, fixed.Round(time.Millisecond), loadAvg()))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadAvg is the machine's 1-minute load average, for the notes.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(raw))[0]
}

// pipelineCPU runs n rows through the built binary against a fresh sandbox
// and returns the binary's CPU time (user + system).
func pipelineCPU(b *testing.B, n, conc int) time.Duration {
	fake := benchSandbox(b)
	defer fake.stop(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "targets.yaml")
	yaml := fake.config(conc)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	st := benchBinary(b, "run", "-c", cfg, benchCSV(b, dir, n), "-o", filepath.Join(dir, "r"))
	return st.UserTime() + st.SystemTime()
}

// vegetaCPU runs vegeta here, n requests at conc workers against a fresh
// sandbox, and returns the CPU time this process spent meanwhile.
func vegetaCPU(b *testing.B, n, conc int) time.Duration {
	fake := benchSandbox(b)
	defer fake.stop(b)
	before := selfCPU(b)
	atk := vegeta.NewAttacker(vegeta.Workers(uint64(conc)), vegeta.MaxWorkers(uint64(conc)), vegeta.Connections(conc))
	sent := 0
	tgt := blockTargeterFor(b, fake.baseURL+"/block/user/", fake.apikey, fake.token)
	for res := range atk.Attack(tgt, vegeta.Rate{Freq: 0}, 0, "ref") {
		if res.Code != http.StatusOK {
			b.Fatalf("vegeta: HTTP %d %s", res.Code, res.Error)
		}
		if sent++; sent >= n {
			atk.Stop()
		}
	}
	return selfCPU(b) - before
}

// selfCPU is this process's CPU time so far (user + system).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCPUInProcess runs the cpu part's pipeline in this process, against
// the sandbox in its own, so that -cpuprofile sees only the client:
//
//	UB_BENCH_ONLY=cpu-inprocess go test ./cmd/userbatch -run '^$' -bench Scale -benchtime 1x -cpuprofile cpu.out
func benchCPUInProcess(b *testing.B, t *table, n, conc int) {
	var ours []time.Duration
	for range 3 {
		fake := benchSandbox(b)
		yaml := fake.config(conc)
		before := selfCPU(b)
		runInProcess(b, yaml, n)
		ours = append(ours, selfCPU(b)-before)
		fake.stop(b)
	}
	m := median(ours)
	t.add("CPU per row, in process", strconv.Itoa(n), "", "", "", "", "", "",
		fmt.Sprintf("µs CPU: %.1f (median of 3: %v); concurrency %d, fake in another process; load %s",
			float64(m.Microseconds())/float64(n), ours, conc, loadAvg()))
}

// sandboxFake is `userbatch sandbox` running, and its epixel target.
type sandboxFake struct {
	cmd                    *exec.Cmd
	baseURL, apikey, token string
}

// benchSandbox starts the built binary's sandbox on a free port and reads
// the epixel target (shop) from the targets.yaml it prints.
func benchSandbox(b *testing.B) *sandboxFake {
	cmd := exec.Command(binPath, "sandbox", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f := &sandboxFake{cmd: cmd}
	sc := bufio.NewScanner(stdout)
	inShop := false
	for f.token == "" && sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "    ") {
			inShop = line == "  shop:"
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		switch {
		case inShop && k == "base_url":
			f.baseURL = v
		case inShop && k == "apikey":
			f.apikey = v
		case inShop && k == "token":
			f.token = v
		}
	}
	if f.token == "" || f.baseURL == "" {
		f.stop(b)
		b.Fatalf("sandbox printed no epixel target: %v", sc.Err())
	}
	go io.Copy(io.Discard, stdout)
	return f
}

// config is a targets.yaml for the sandbox's epixel, unpaced, conc in
// flight.
func (f *sandboxFake) config(conc int) string {
	return fmt.Sprintf("targets:\n  shop:\n    vendor: epixel\n    base_url: %s\n    apikey: %s\n    token: %s\n"+
		"    rate: 1e9\n    burst: %d\n    concurrency: %d\n", f.baseURL, f.apikey, f.token, conc, conc)
}

func (f *sandboxFake) stop(b *testing.B) {
	if err := f.cmd.Process.Signal(os.Interrupt); err != nil {
		b.Fatal(err)
	}
	if err := f.cmd.Wait(); err != nil {
		b.Fatalf("sandbox: %v", err)
	}
}
