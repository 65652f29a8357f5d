package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
)

// historyFixture is a SQLite ledger with four entries and a targets.yaml
// that names it.
type historyFixture struct {
	e      *e2e
	cfg    string
	ledger string
}

var historySHA = strings.Repeat("5e", 32)

func day(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }

func newHistoryFixture(t *testing.T) *historyFixture {
	t.Helper()
	e := &e2e{t: t, dir: t.TempDir(), now: func() time.Time { return day(30, 12) }}
	path := filepath.Join(e.dir, "state", "ledger.db")
	ctx := context.Background()
	l, err := ledger.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	done := func(target, user string, a batch.Action, o batch.Outcome, run string, at time.Time, line int, due time.Time) {
		t.Helper()
		en := ledger.Entry{Key: ledger.Key{Target: target, User: user, Action: a, EffectiveAt: due},
			RunID: run, At: at, InputSHA256: historySHA, Line: line}
		if prev, err := l.Claim(ctx, en); err != nil || prev != nil {
			t.Fatalf("Claim %s: %v %v", user, prev, err)
		}
		if o == "" {
			return // left pending: the run never learned the outcome
		}
		en.Outcome = o
		if err := l.Done(ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	done("apps", "alice", batch.Disable, batch.Applied, "run-1", day(28, 10), 2, time.Time{})
	done("apps", "bob, jr", batch.Disable, batch.Already, "run-1", day(29, 10), 3, time.Time{})
	done("admin", "alice", batch.ToggleStatus, batch.Applied, "run-2", day(30, 9), 4, day(30, 0))
	done("apps", "carol", batch.Enable, "", "run-2", day(30, 11), 5, time.Time{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f := &historyFixture{e: e, ledger: path}
	f.cfg = f.config("ledger: sqlite:" + path + "\n")
	return f
}

// config writes a targets.yaml with one target and extra top-level lines.
func (f *historyFixture) config(extra string) string {
	return f.e.write("targets-"+strings.Fields(extra + " none")[0]+".yaml", `targets:
  apps:
    vendor: kii
    base_url: http://127.0.0.1:9/api
    app_id: app1
    token: made-up
`+extra)
}

// entries runs history --format json and returns who each line names, as
// target/user/action.
func (f *historyFixture) entries(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	r := f.e.inProcess(append([]string{"history", "-c", f.cfg, "--format", "json"}, args...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("history %v: exit %d, stderr %s", args, r.code, r.stderr)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func names(entries []map[string]any) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e["target"].(string)+"/"+e["user"].(string))
	}
	return out
}

func TestHistoryJSON(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	got := f.entries(t)
	if want := []string{"apps/alice", "apps/bob, jr", "admin/alice", "apps/carol"}; !slices.Equal(names(got), want) {
		t.Fatalf("entries %v, want %v (oldest first)", names(got), want)
	}
	toggle := got[2]
	want := map[string]any{"at": "2026-11-30T09:00:00Z", "run_id": "run-2", "action": "toggle-status",
		"effective_at": "2026-11-30T00:00:00Z", "outcome": "applied", "state": "done",
		"input_sha256": historySHA, "line": 4.0, "role": ""}
	for k, v := range want {
		if toggle[k] != v {
			t.Errorf("%s = %v, want %v", k, toggle[k], v)
		}
	}
	if got[1]["outcome"] != "already" || got[3]["state"] != "pending" || got[3]["outcome"] != "" {
		t.Errorf("outcomes and states: %v / %v", got[1], got[3])
	}
}

func TestHistoryFilters(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--user", "alice"}, []string{"apps/alice", "admin/alice"}},
		{[]string{"--target", "apps"}, []string{"apps/alice", "apps/bob, jr", "apps/carol"}},
		{[]string{"--target", "apps", "--user", "alice"}, []string{"apps/alice"}},
		{[]string{"--user", "nobody"}, nil},
		{[]string{"--since", "2026-11-29"}, []string{"apps/bob, jr", "admin/alice", "apps/carol"}},
		{[]string{"--since", "2026-11-29T10:00:00Z"}, []string{"apps/bob, jr", "admin/alice", "apps/carol"}},
		{[]string{"--since", "2026-11-29T11:00:00+01:00"}, []string{"apps/bob, jr", "admin/alice", "apps/carol"}},
		{[]string{"--since", "2026-11-29T10:00:00.000001Z"}, []string{"admin/alice", "apps/carol"}},
		{[]string{"--since", "24h"}, []string{"admin/alice", "apps/carol"}},
		{[]string{"--since", "90m"}, []string{"apps/carol"}},
		{[]string{"--since", "2d"}, []string{"apps/bob, jr", "admin/alice", "apps/carol"}},
		{[]string{"--since", "7d", "--user", "alice"}, []string{"apps/alice", "admin/alice"}},
		{[]string{"--since", "2026-11-30", "--user", "alice"}, []string{"admin/alice"}},
	}
	for _, c := range cases {
		if got := names(f.entries(t, c.args...)); !slices.Equal(got, c.want) {
			t.Errorf("history %v: %v, want %v", c.args, got, c.want)
		}
	}
}

func TestHistoryCSV(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	r := f.e.inProcess("history", "-c", f.cfg, "--format", "csv", "--user", "bob, jr")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("%q: %v", r.stdout, err)
	}
	if len(recs) != 2 || !slices.Equal(recs[0], ledger.HistoryColumns) {
		t.Fatalf("csv %q", recs)
	}
	row := map[string]string{}
	for i, name := range recs[0] {
		row[name] = recs[1][i]
	}
	if row["user"] != "bob, jr" || row["outcome"] != "already" || row["line"] != "3" || row["run_id"] != "run-1" {
		t.Errorf("row %v", row)
	}
}

func TestHistoryTable(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	for _, args := range [][]string{{}, {"--format", "table"}} {
		r := f.e.inProcess(append([]string{"history", "-c", f.cfg}, args...)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "AT") || !strings.Contains(lines[0], "OUTCOME") {
			t.Fatalf("table %v:\n%s", args, r.stdout)
		}
		if !strings.Contains(lines[3], "admin") || !strings.Contains(lines[3], "toggle-status") ||
			!strings.Contains(lines[4], "pending") {
			t.Errorf("rows out of order or incomplete:\n%s", r.stdout)
		}
	}
}

func TestHistoryRefusals(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	missing := filepath.Join(f.e.dir, "typo", "ledger.db")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no config flag", []string{"history"}, "config"},
		{"no ledger", []string{"history", "-c", f.config("")}, "has no ledger"},
		{"missing ledger file", []string{"history", "-c", f.config("ledger: sqlite:" + missing + "\n")}, "does not exist"},
		{"bad config", []string{"history", "-c", filepath.Join(f.e.dir, "nope.yaml")}, "reading the config"},
		{"bad since", []string{"history", "-c", f.cfg, "--since", "yesterday"}, `--since "yesterday"`},
		{"negative since", []string{"history", "-c", f.cfg, "--since", "-24h"}, "--since"},
		{"bad format", []string{"history", "-c", f.cfg, "--format", "xml"}, "--format"},
		{"an argument", []string{"history", "-c", f.cfg, "alice"}, "unknown command"},
	}
	for _, c := range cases {
		r := f.e.inProcess(c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want 2 and %q", c.name, r.code, r.stderr, r.stdout, c.want)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Errorf("history created the mistyped ledger's directory: %v", err)
	}
}

func TestHistoryHidesThePassword(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	// Nothing listens on port 9 of loopback: the open fails fast.
	cfg := f.config("ledger: postgres://auditor:hunter2secret@127.0.0.1:9/ledger?connect_timeout=2\n")
	r := f.e.inProcess("history", "-c", cfg)
	if r.code != 2 || strings.Contains(r.stderr, "hunter2secret") || !strings.Contains(r.stderr, "opening the ledger") {
		t.Errorf("exit %d, stderr %q: want 2, no password", r.code, r.stderr)
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := day(30, 12)
	cases := map[string]time.Time{
		"":                     {},
		"2026-11-30T08:00:00Z": day(30, 8),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"1h":                   day(30, 11),
		"1.5h":                 now.Add(-90 * time.Minute),
		"0s":                   now,
		"3d":                   day(27, 12),
	}
	for in, want := range cases {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1h", "d", "1w", "2026-13-01", "30/11/2026", "999999999d", " 1h"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

// brokenPipe fails every write after the first n bytes.
type brokenPipe struct{ n int }

func (b *brokenPipe) Write(p []byte) (int, error) {
	if len(p) > b.n {
		k := b.n
		b.n = 0
		return k, errors.New("broken pipe")
	}
	b.n -= len(p)
	return len(p), nil
}

func TestHistoryStoppedPartWay(t *testing.T) {
	t.Parallel()
	f := newHistoryFixture(t)
	var errb strings.Builder
	code := runMain([]string{"history", "-c", f.cfg, "--format", "json"}, strings.NewReader(""), &brokenPipe{n: 100}, &errb)
	if code != 3 || !strings.Contains(errb.String(), "incomplete") {
		t.Errorf("exit %d, stderr %q: want 3 and a word that the list is incomplete", code, errb.String())
	}
}

// TestHistoryNeedsOnlyTheLedgersVariables: an auditor listing history is
// not asked for every vendor's credentials, only the ledger's.
func TestHistoryNeedsOnlyTheLedgersVariables(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	db := filepath.Join(e.dir, "audit.db")
	cfg := e.write("audit.yaml", "targets:\n  shop:\n    vendor: epixel\n    base_url: https://shop.example.com\n"+
		"    apikey: ${UB_TEST_UNSET_APIKEY}\n    token: ${UB_TEST_UNSET_TOKEN}\nledger: sqlite:"+db+"\n")
	if res := e.run("run", "-c", cfg, "-o", filepath.Join(e.dir, "r"), e.write("ops.csv", "target,user,action\nshop,u1,disable\n")); res.code != exitBadInput {
		t.Fatalf("a run with unset credentials: exit %d, want 2", res.code)
	}
	l, err := ledger.Open(context.Background(), "sqlite:"+db)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if res := e.run("history", "-c", cfg); res.code != exitOK {
		t.Errorf("history: exit %d\n%s", res.code, res.stderr)
	}
}
