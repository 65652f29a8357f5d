package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
)

// TestShardsAndMerge: three shards of one file send every row exactly once
// between them, and their merged report equals the report of one run.
func TestShardsAndMerge(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	var dirs []string
	for k := 0; k < 3; k++ {
		dir := filepath.Join(e.dir, fmt.Sprintf("shard-%d", k))
		dirs = append(dirs, dir)
		res := e.run("run", "-c", e.cfg, "-o", dir, "--shard", fmt.Sprintf("%d/3", k), in)
		if res.code != exitOK && res.code != exitIncomplete {
			t.Fatalf("shard %d: exit %d\n%s", k, res.code, res.stderr)
		}
	}
	merged := filepath.Join(e.dir, "merged")
	if res := e.run(append([]string{"report", "merge", "-o", merged}, dirs...)...); res.code != exitOK {
		t.Fatalf("merge: exit %d\n%s", res.code, res.stderr)
	}
	e.assertVendorState() // every row applied once, whichever shard had it
	rows := readCSV(t, filepath.Join(merged, "report.csv"))
	if len(rows) != 17 {
		t.Fatalf("merged report has %d rows, want 17", len(rows))
	}
	for i, r := range rows {
		if r["line"] != itoa(i+2) {
			t.Errorf("merged row %d has line %s", i, r["line"])
		}
	}
	if n := len(readCSV(t, filepath.Join(merged, "failed.csv"))); n != 3 {
		t.Errorf("merged failed.csv has %d rows, want 3", n)
	}
	if n := len(readCSV(t, filepath.Join(merged, "check.csv"))); n != 2 {
		t.Errorf("merged check.csv has %d rows, want 2", n)
	}
	undo := readCSV(t, filepath.Join(merged, "undo.csv"))
	if len(undo) != 10 { // 9 applied rows, one of them a downgrade that also blocked
		t.Errorf("merged undo.csv has %d rows, want 10", len(undo))
	}
	sum := readSummary(t, merged)
	if sum["rows"].(float64) != 17 {
		t.Errorf("merged summary rows = %v", sum["rows"])
	}
	// A shard's journal is its own: resuming it as another shard is refused.
	res := e.run("run", "-c", e.cfg, "-o", dirs[0], "--shard", "1/3", in, "--resume")
	if res.code != exitBadInput || !strings.Contains(res.stderr, "shard") {
		t.Errorf("resume as another shard: exit %d %s", res.code, res.stderr)
	}
}

// seamLimit answers 429 (Retry-After: 1) to any request beyond limit in
// the last second, as a vendor enforcing its rate does, and keeps every
// arrival time.
type seamLimit struct {
	next     http.Handler
	limit    int
	mu       sync.Mutex
	arrivals []time.Time
	refused  int
}

func (l *seamLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.admit(time.Now()) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	l.next.ServeHTTP(w, r)
}

func (l *seamLimit) admit(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.arrivals = append(l.arrivals, now)
	if seamInLastSecond(l.arrivals, now) > l.limit {
		l.refused++
		return false
	}
	return true
}

func seamInLastSecond(ts []time.Time, now time.Time) int {
	n := 0
	for i := len(ts) - 1; i >= 0 && now.Sub(ts[i]) < time.Second; i-- {
		n++
	}
	return n
}

// seamBusiestSecond is the most arrivals any one-second window holds.
func seamBusiestSecond(ts []time.Time) int {
	ts = append([]time.Time(nil), ts...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	most, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// seamShardUsers makes per users for each of n shards of target.
func seamShardUsers(target string, n, per int) []string {
	var users []string
	count := make([]int, n)
	for i := 0; len(users) < n*per; i++ {
		u := fmt.Sprintf("r-%04d", i)
		for k := 0; k < n; k++ {
			if (batch.Shard{Index: k, Count: n}).Includes(target, u) && count[k] < per {
				count[k]++
				users = append(users, u)
			}
		}
	}
	return users
}

// TestShardsShareTheRate: three shard processes of one file, started
// together against a target of rate R, split R between them: a vendor
// enforcing R (+ N of slack) in any second never has to answer 429. Each
// shard alone at R would send 3R a second; the run lasts two seconds, so
// two full windows are judged.
func TestShardsShareTheRate(t *testing.T) {
	t.Parallel()
	const (
		rate     = 30
		slack    = 9
		shards   = 3
		perShard = 20
	)
	e := newE2E(t)
	lim := &seamLimit{next: e.fakes.handler(), limit: rate + slack}
	e.serve(lim)
	users := seamShardUsers("shop", shards, perShard)
	var rows []string
	for _, u := range users {
		e.fakes.epixel.AddUser(u, epixeltest.User{Role: "Customer"})
		rows = append(rows, "shop,"+u+",disable")
	}
	cfg := e.write("rated.yaml", fmt.Sprintf("targets:\n  shop:\n    vendor: epixel\n    base_url: %s/epixel/api/v2\n"+
		"    apikey: %s\n    token: %s\n    rate: %d\n    burst: 1\n    concurrency: 4\n    timeout: 10s\n",
		e.srv.URL, e.fakes.creds.epixelKey, e.fakes.creds.epixelToken, rate))
	in := e.write("ops.csv", opsCSV(rows...))
	var ps []*process
	for k := 0; k < shards; k++ {
		ps = append(ps, e.seamStart("run", "-c", cfg, "-o", filepath.Join(e.dir, fmt.Sprintf("shard-%d", k)),
			"--shard", fmt.Sprintf("%d/%d", k, shards), in))
	}
	for k, p := range ps {
		if code := seamWaitWithin(t, p, 2*time.Minute); code != exitOK {
			t.Errorf("shard %d: exit %d\n%s", k, code, p.stderr.String())
		}
	}
	lim.mu.Lock()
	refused, arrivals := lim.refused, append([]time.Time(nil), lim.arrivals...)
	lim.mu.Unlock()
	busiest := seamBusiestSecond(arrivals)
	t.Logf("%d requests over %v, busiest second %d, refused %d", len(arrivals),
		arrivals[len(arrivals)-1].Sub(arrivals[0]).Round(time.Millisecond), busiest, refused)
	if refused != 0 {
		t.Errorf("the vendor answered 429 %d times: the shards together exceeded rate %d + %d", refused, rate, slack)
	}
	if busiest > rate+slack {
		t.Errorf("one second saw %d requests, want at most %d", busiest, rate+slack)
	}
	for _, u := range users {
		if n := e.fakes.epixel.Writes(u); n != 1 {
			t.Errorf("%s written %d times, want 1", u, n)
		}
	}
}

// TestMergeRefusals: `report merge` exits 2 and writes nothing for a
// shard missing, a shard given twice, shards of two inputs, and an -o that
// holds files, whose content stays as it was.
func TestMergeRefusals(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	dirs := e.seamShardReports(filepath.Join(e.dir, "shard"), e.write("ops.csv", allVendorsCSV))
	other := e.seamShardReports(filepath.Join(e.dir, "other"), e.write("other.csv", allVendorsCSV+"shop,e-new,disable,,,,T18\n"))
	copyOf0 := filepath.Join(e.dir, "copy-of-0")
	seamCopyDir(t, dirs[0], copyOf0)
	shardsBefore := map[string]map[string]string{}
	for _, d := range append(append([]string{}, dirs...), other...) {
		shardsBefore[d] = seamSnapshot(t, d)
	}

	cases := []struct {
		name string
		dirs []string
		says string
	}{
		{"a shard missing", dirs[:2], "missing"},
		{"a shard copied and given twice", []string{dirs[0], dirs[1], dirs[2], copyOf0}, "given twice"},
		{"shards of two inputs", []string{dirs[0], dirs[1], other[2]}, "different input"},
	}
	for _, c := range cases {
		out := filepath.Join(e.dir, "merged-"+strings.ReplaceAll(c.name, " ", "-"))
		res := e.run(append([]string{"report", "merge", "-o", out}, c.dirs...)...)
		if res.code != exitBadInput || !strings.Contains(res.stderr, c.says) {
			t.Errorf("%s: exit %d, stderr %q; want 2 saying %q", c.name, res.code, strings.TrimSpace(res.stderr), c.says)
		}
		if snap := seamSnapshot(t, out); len(snap) != 0 {
			t.Errorf("%s: a refused merge wrote %d files into -o", c.name, len(snap))
		}
	}

	full := filepath.Join(e.dir, "full")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	undo := "target,user,action\nshop,e-disable,enable\n"
	if err := os.WriteFile(filepath.Join(full, "undo.csv"), []byte(undo), 0o600); err != nil {
		t.Fatal(err)
	}
	before := seamSnapshot(t, full)
	res := e.run(append([]string{"report", "merge", "-o", full}, dirs...)...)
	if res.code != exitBadInput || !strings.Contains(res.stderr, "not empty") {
		t.Errorf("-o holding undo.csv: exit %d, stderr %q; want 2 saying not empty", res.code, strings.TrimSpace(res.stderr))
	}
	if after := seamSnapshot(t, full); !seamSameSnapshot(before, after) {
		t.Errorf("a refused merge changed the -o that held files: %v", after)
	}
	for d, snap := range shardsBefore {
		if !seamSameSnapshot(snap, seamSnapshot(t, d)) {
			t.Errorf("a merge changed shard directory %s", d)
		}
	}
	// The same shards, each once, into a new -o: merged (so the refusals
	// above were for the reasons named, not broken shards).
	res = e.run(append([]string{"report", "merge", "-o", filepath.Join(e.dir, "merged")}, dirs...)...)
	if res.code != exitOK {
		t.Fatalf("merge of the three shards: exit %d\n%s", res.code, res.stderr)
	}
	if n := len(readCSV(t, filepath.Join(e.dir, "merged", "report.csv"))); n != 17 {
		t.Errorf("merged report has %d rows, want 17", n)
	}
}

// TestMergeSameDirTwice: a shard directory typed twice on the command
// line is refused as a repeated shard, not blamed on another process.
func TestMergeSameDirTwice(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	dirs := e.seamShardReports(filepath.Join(e.dir, "shard"), e.write("ops.csv", allVendorsCSV))
	out := filepath.Join(e.dir, "merged")
	res := e.run("report", "merge", "-o", out, dirs[0], dirs[1], dirs[2], dirs[1])
	if res.code != exitBadInput {
		t.Errorf("exit %d, want 2", res.code)
	}
	if !strings.Contains(res.stderr, "given twice") || strings.Contains(res.stderr, "another userbatch process") {
		t.Errorf("stderr %q; want it to say the shard is given twice, not that another process holds it", strings.TrimSpace(res.stderr))
	}
	if snap := seamSnapshot(t, out); len(snap) != 0 {
		t.Errorf("a refused merge wrote %d files into -o", len(snap))
	}
}

// TestResumeAsAnotherShard: a resume names the journal's shard and
// its own, and sends nothing.
func TestResumeAsAnotherShard(t *testing.T) {
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
