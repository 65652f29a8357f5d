package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

func TestInvalidFileSendsNothing(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV+"shop,,disable,,,,T18\nnowhere,u1,disable,,,,T19\n")
	out := filepath.Join(e.dir, "report")
	// A person at a console reads the problems as lines (a JSON log has
	// them as records: TestCronLogInvalidRows).
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--log-format", "console")
	if res.code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"line 19, column user: user is empty", `line 20, column target: unknown target "nowhere"`} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	if n := e.fakes.epixel.Requests() + e.fakes.kii.Requests() + e.fakes.clearsquare.Requests() + e.fakes.msgkart.Requests(); n != 0 {
		t.Errorf("an invalid file sent %d requests", n)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 19 || rows[17]["outcome"] != "invalid" || rows[0]["outcome"] != "skipped" {
		t.Errorf("report of an invalid file: %d rows, row 18 %q, row 1 %q", len(rows), rows[17]["outcome"], rows[0]["outcome"])
	}

	res = e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "report2"), "--skip-invalid", in)
	if res.code != exitIncomplete {
		t.Fatalf("--skip-invalid: exit %d\n%s", res.code, res.stderr)
	}
	rows = readCSV(t, filepath.Join(e.dir, "report2", "report.csv"))
	if rows[17]["outcome"] != "invalid" || rows[18]["outcome"] != "invalid" || rows[0]["outcome"] != "applied" {
		t.Errorf("--skip-invalid outcomes: %q %q %q", rows[0]["outcome"], rows[17]["outcome"], rows[18]["outcome"])
	}
}

// TestInvalidFileSummaryExitCode: a file with invalid rows exits 2 and
// its summary.json says so.
func TestInvalidFileSummaryExitCode(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV+"shop,,disable,,,,T18\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
	}
	if n := seamRequests(e); n != 0 {
		t.Errorf("an invalid file sent %d requests", n)
	}
	if got := readSummary(t, out)["exit_code"]; got != float64(exitBadInput) {
		t.Errorf("summary.json exit_code %v, want %d (the process's)", got, exitBadInput)
	}
}

// TestCSVRecords: a record of 2 MB, a row of 100,000 fields and a
// quote never closed stop the run before anything is sent, naming the line.
func TestCSVRecords(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.kii.AddUser("k1", kiitest.User{})
	e.fakes.kii.AddUser("k2", kiitest.User{})
	head := "target,user,action,ticket\napps,k1,disable,T1\napps,k2,disable,T2\n"
	cases := map[string]struct {
		row  string
		want string
	}{
		"2 MB record":    {"apps,k3,disable," + strings.Repeat("a", 2<<20) + "\n", "line 4: a record longer than 1 MiB"},
		"100k fields":    {"apps,k3,disable" + strings.Repeat(",x", 100_000-3) + "\n", "line 4: a record of more than 1000"},
		"unclosed quote": {"apps,k3,disable,\"" + strings.Repeat("b\n", 1<<20) + "\n", "line 4: a record longer than 1 MiB"},
	}
	for name, c := range cases {
		in := e.write("hostile.csv", head+c.row)
		out := filepath.Join(e.dir, "report-"+strings.ReplaceAll(name, " ", "-"))
		res := e.run("run", "-c", e.cfg, "-o", out, in)
		if res.code != exitBadInput || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", name, res.code, hostileShort(res.stderr), c.want)
		}
	}
	if n := e.hostileAllRequests(); n != 0 {
		t.Errorf("hostile files sent %d requests", n)
	}
}

func hostileShort(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// TestInvisibleUserIDs: a user id holding a bidi control, a zero
// width space or a line separator is invalid, the code point is named, and
// nothing is sent.
func TestInvisibleUserIDs(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.kii.AddUser("k1", kiitest.User{})
	for _, c := range []struct {
		r    rune
		code string
	}{{'\u202E', "U+202E"}, {'\u200B', "U+200B"}, {'\u2028', "U+2028"}} {
		user := "evil" + string(c.r) + "gpj.exe"
		in := e.write("ops.csv", opsCSV("apps,k1,disable", "apps,"+user+",disable"))
		out := filepath.Join(e.dir, "report-"+c.code)
		res := e.run("run", "-c", e.cfg, "-o", out, in)
		if res.code != exitBadInput {
			t.Errorf("%s: exit %d, want 2\n%s", c.code, res.code, res.stderr)
		}
		if !strings.Contains(res.stderr, "line 3") || !strings.Contains(res.stderr, c.code) {
			t.Errorf("%s: stderr does not name line 3 and the code point: %s", c.code, res.stderr)
		}
		rows := readCSV(t, filepath.Join(out, "report.csv"))
		if len(rows) != 2 || rows[1]["outcome"] != "invalid" || !strings.Contains(rows[1]["detail"]+rows[1]["message"], c.code) {
			t.Errorf("%s: report %v; want row 2 invalid naming the code point", c.code, rows)
		}
	}
	if n := e.hostileAllRequests(); n != 0 {
		t.Errorf("files with invisible user ids sent %d requests", n)
	}
}
