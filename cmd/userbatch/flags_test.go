package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
)

// These tests drive, through the built binary, the flags whose bad values
// hostile_run_test.go refuses: here, that a good value changes what
// reaches the vendor.

// TestFlagTZ: a bare effective_at date is midnight in --tz. At 23:30 UTC on
// December 1, "2026-12-02" is due in Tokyo (already December 2 there) and
// not yet in UTC.
func TestFlagTZ(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-tz", epixeltest.User{Role: "Customer"})
	in := e.write("ops.csv", "target,user,action,effective_at\nshop,e-tz,disable,2026-12-02\n")
	now := time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC)
	if res := e.runAt(now, "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "utc"), in); res.code != exitOK {
		t.Fatalf("UTC: exit %d\n%s", res.code, res.stderr)
	}
	if r := readCSV(t, filepath.Join(e.dir, "utc", "report.csv"))[0]; r["outcome"] != "not_due" || e.fakes.epixel.Writes("e-tz") != 0 {
		t.Fatalf("UTC: %s, %d writes; want not_due and none", r["outcome"], e.fakes.epixel.Writes("e-tz"))
	}
	if res := e.runAt(now, "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "tokyo"), in, "--tz", "Asia/Tokyo"); res.code != exitOK {
		t.Fatalf("Tokyo: exit %d\n%s", res.code, res.stderr)
	}
	if r := readCSV(t, filepath.Join(e.dir, "tokyo", "report.csv"))[0]; r["outcome"] != "applied" || e.fakes.epixel.Writes("e-tz") != 1 {
		t.Errorf("Tokyo: %s, %d writes; want applied once", r["outcome"], e.fakes.epixel.Writes("e-tz"))
	}
}

// TestFlagCatchUp: a row due six days ago runs by default (late is better
// than never), and is skipped, unsent, with --catch-up 72h.
func TestFlagCatchUp(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	for _, u := range []string{"e-late1", "e-late2"} {
		e.fakes.epixel.AddUser(u, epixeltest.User{Role: "Customer"})
	}
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	strict := e.write("strict.csv", "target,user,action,effective_at\nshop,e-late1,disable,2026-11-25\n")
	res := e.runAt(now, "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "strict"), strict, "--catch-up", "72h")
	if res.code != exitIncomplete {
		t.Fatalf("--catch-up 72h: exit %d, want 1 (a row skipped)\n%s", res.code, res.stderr)
	}
	r := readCSV(t, filepath.Join(e.dir, "strict", "report.csv"))[0]
	if r["outcome"] != "skipped" || !strings.Contains(r["detail"], "--catch-up 72h") || e.fakes.epixel.Writes("e-late1") != 0 {
		t.Errorf("--catch-up 72h: %s %q, %d writes", r["outcome"], r["detail"], e.fakes.epixel.Writes("e-late1"))
	}
	late := e.write("late.csv", "target,user,action,effective_at\nshop,e-late2,disable,2026-11-25\n")
	if res := e.runAt(now, "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "late"), late); res.code != exitOK {
		t.Fatalf("no --catch-up: exit %d\n%s", res.code, res.stderr)
	}
	if e.fakes.epixel.Writes("e-late2") != 1 {
		t.Error("without --catch-up a late row was not sent")
	}
}

// TestFlagDelimiter: --delimiter overrides what the header line suggests.
// A tab file read as comma-separated has no user or action column.
func TestFlagDelimiter(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-tab", epixeltest.User{Role: "Customer"})
	in := e.write("ops.tsv", "target\tuser\taction\nshop\te-tab\tdisable\n")
	res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "comma"), in, "--delimiter", ",")
	if res.code != exitBadInput || e.fakes.epixel.Requests() != 0 {
		t.Fatalf("--delimiter , on a tab file: exit %d, %d requests; want 2 and none\n%s", res.code, e.fakes.epixel.Requests(), res.stderr)
	}
	if res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "tab"), in, "--delimiter", "tab"); res.code != exitOK {
		t.Fatalf("--delimiter tab: exit %d\n%s", res.code, res.stderr)
	}
	if e.fakes.epixel.Writes("e-tab") != 1 {
		t.Error("--delimiter tab: the row was not sent")
	}
}

// TestFlagMaxAge: apply refuses a plan older than --max-age, sending
// nothing; a longer --max-age lets the same plan through.
func TestFlagMaxAge(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(3, 0)
	planned := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	plan := filepath.Join(e.dir, "plan")
	if res := e.runAt(planned, "plan", "-c", e.cfg, "-o", plan, in); res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	later := planned.Add(48 * time.Hour)
	res := e.runAt(later, "apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "stale"), plan)
	if res.code != exitBadInput || !strings.Contains(res.stderr, "longer than --max-age 24h0m0s") || e.kiiWrites(users) != 0 {
		t.Fatalf("a 48h-old plan: exit %d, %d writes\n%s", res.code, e.kiiWrites(users), res.stderr)
	}
	if res := e.runAt(later, "apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "ok"), plan, "--max-age", "72h"); res.code != exitOK {
		t.Fatalf("--max-age 72h: exit %d\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 3 {
		t.Errorf("--max-age 72h: %d writes, want 3", n)
	}
}

// TestFlagShardFullRate: a shard takes rate/N of a target unless
// --shard-full-rate. Shard 0 of 2 at rate 12 (burst 1) sends at 6/s; with
// the flag at 12/s. Lower bounds only, plus the contrast between the two.
func TestFlagShardFullRate(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	st := &stamps{}
	e.serve(st.wrap(e.fakes.handler()))
	var rows []string
	for i := 0; len(rows) < 10; i++ {
		u := fmt.Sprintf("e-shard%02d", i)
		if (batch.Shard{Index: 0, Count: 2}).Includes("shop", u) {
			e.fakes.epixel.AddUser(u, epixeltest.User{Role: "Customer"})
			rows = append(rows, "shop,"+u+",disable")
		}
	}
	in := e.write("ops.csv", opsCSV(rows...))
	cfg := e.write("slow.yaml", strings.ReplaceAll(e.fakes.targetsYAML(e.srv.URL, 12), "burst: 4", "burst: 1"))
	span := func(out string, extra ...string) time.Duration {
		t.Helper()
		st.mu.Lock()
		st.at = nil
		st.mu.Unlock()
		args := append([]string{"run", "-c", cfg, "-o", filepath.Join(e.dir, out), in, "--shard", "0/2"}, extra...)
		if res := e.run(args...); res.code != exitOK {
			t.Fatalf("%v: exit %d\n%s", extra, res.code, res.stderr)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.at[len(st.at)-1].Sub(st.at[0])
	}
	shared := span("shared")
	full := span("full", "--shard-full-rate")
	// 10 requests at 6/s: 9 gaps of 167ms, 1.5s; at the full rate, 0.75s.
	// The bound leaves room for a first request the loaded machine delayed.
	if shared < 1100*time.Millisecond {
		t.Errorf("shard 0/2 at rate 12 sent 10 requests in %v: faster than its share (6/s)", shared)
	}
	if full >= shared {
		t.Errorf("--shard-full-rate took %v, no faster than the shared rate's %v", full, shared)
	}
}

// TestFlagsThatCannotWork: each refused with exit 2 naming the flag,
// before anything is sent or the report directory is made.
func TestFlagsThatCannotWork(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	cases := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"negative grace", []string{"--grace", "-5s"}, []string{"--grace"}},
		{"shard-full-rate alone", []string{"--shard-full-rate"}, []string{"--shard-full-rate", "--shard"}},
		{"negative max-changes", []string{"--max-changes", "-1"}, []string{"--max-changes"}},
		{"negative canary", []string{"--canary", "-1"}, []string{"--canary"}},
		{"negative catch-up", []string{"--catch-up", "-1h"}, []string{"--catch-up"}},
		{"negative workers", []string{"--workers", "-1"}, []string{"--workers"}},
		{"unknown zone", []string{"--tz", "Mars/Olympus"}, []string{"--tz", "Mars/Olympus"}},
		{"bad delimiter", []string{"--delimiter", "x"}, []string{"delimiter", `"x"`}},
		{"shard out of range", []string{"--shard", "3/2"}, []string{"3/2"}},
	}
	for i, c := range cases {
		out := filepath.Join(e.dir, fmt.Sprintf("report-%d", i))
		res := e.run(append([]string{"run", "-c", e.cfg, "-o", out, in}, c.flags...)...)
		if res.code != exitBadInput {
			t.Errorf("%s: exit %d, want 2\n%s", c.name, res.code, res.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("%s: stderr lacks %q: %s", c.name, w, res.stderr)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: the report directory was created for a refused run (stat: %v)", c.name, err)
		}
	}
	if n := e.hostileAllRequests(); n != 0 {
		t.Errorf("refused runs sent %d requests", n)
	}
}
