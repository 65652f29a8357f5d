package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
)

// fixture is a file of the repository's testdata (Excel's exports).
func fixture(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExcelExportsRun is issue 11's acceptance: Excel's "Unicode Text"
// (UTF-16 with tabs), a semicolon CSV, and a file with empty rows at the
// bottom run right, with the lines of the file in the report; a user id
// Excel mangled into scientific notation is refused with its line, and the
// refused file sends nothing.
func TestExcelExportsRun(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.epixel = epixeltest.New(epixeltest.Options{APIKey: c.epixelKey, Token: c.epixelToken, AutoCreate: true})
	e.serve(e.fakes.handler())
	for _, tc := range []struct {
		file  string
		lines []string
		users []string
	}{
		{"excel-utf16le.txt", []string{"2", "3", "4", "5", "7"}, []string{"jürgen.müller", "u5005"}},
		{"excel-semicolon.csv", []string{"2", "3", "4", "5", "6"}, []string{"u3001", "Zoë.Ünal"}},
		{"excel-trailing-empty.csv", []string{"2", "3", "5"}, []string{"u4001", "u4003"}},
	} {
		out := filepath.Join(e.dir, tc.file)
		// Exit 1 is fine: a role row may conflict with the fake's default
		// role. What matters is that every row was read and sent.
		res := e.run("run", "-c", e.cfg, "-o", out, fixture(t, tc.file), "--excel")
		if res.code != exitOK && res.code != exitIncomplete {
			t.Errorf("%s: exit %d\n%s", tc.file, res.code, res.stderr)
			continue
		}
		rows := readReportBOM(t, filepath.Join(out, "report.csv"))
		for _, r := range rows {
			if r["outcome"] == "invalid" || r["outcome"] == "skipped" {
				t.Errorf("%s line %s: %s %q", tc.file, r["line"], r["outcome"], r["message"])
			}
		}
		var lines []string
		for _, r := range rows {
			lines = append(lines, r["line"])
		}
		if strings.Join(lines, ",") != strings.Join(tc.lines, ",") {
			t.Errorf("%s: report lines %v, want %v", tc.file, lines, tc.lines)
		}
		for _, u := range tc.users {
			if e.fakes.epixel.Writes(u) != 1 {
				t.Errorf("%s: %s written %d times", tc.file, u, e.fakes.epixel.Writes(u))
			}
		}
	}

	requests := e.fakes.epixel.Requests()
	res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "sci"), fixture(t, "excel-scientific.csv"))
	if res.code != exitBadInput {
		t.Fatalf("scientific ids: exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"line 3, column user", "line 5, column user", "Excel", "Text"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, res.stderr)
		}
	}
	if e.fakes.epixel.Requests() != requests {
		t.Error("a refused file sent requests")
	}
}

// readReportBOM reads a CSV report written with --excel: it starts with a
// UTF-8 byte order mark, for Excel.
func readReportBOM(t *testing.T, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		t.Errorf("%s has no byte order mark", path)
	}
	return parseCSV(t, bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), batch.SniffDelimiter(b))
}

// parseCSV reads CSV text separated by comma into maps keyed by column name.
func parseCSV(t *testing.T, b []byte, comma rune) []map[string]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma = comma
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, name := range recs[0] {
			m[name] = rec[i]
		}
		rows = append(rows, m)
	}
	return rows
}

// TestExcelBothWays is issue 16's "Excel both ways": with --excel every
// report CSV uses the input's delimiter (';' or tab) after a byte order
// mark; an old Mac file with CR-only line endings runs, with its physical
// line numbers in the report; a zoneless effective_at is refused naming the
// accepted forms; a not-due row says when it is due in days; counts of one
// row say "1 row".
func TestExcelBothWays(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e1", epixeltest.User{Role: "Customer"})
	e.fakes.epixel.AddUser("e2", epixeltest.User{Role: "Customer"})
	for _, d := range []string{";", "\t"} {
		in := e.write("ops"+map[string]string{";": "-semicolon", "\t": "-tab"}[d]+".csv",
			strings.Join([]string{"target", "user", "action", "note"}, d)+"\r\n"+
				strings.Join([]string{"shop", "e1", "disable", "a, b"}, d)+"\r\n"+
				strings.Join([]string{"shop", "ghost", "disable", "c"}, d)+"\r\n")
		out := filepath.Join(e.dir, "report"+map[string]string{";": "-semicolon", "\t": "-tab"}[d])
		res := e.run("run", "-c", e.cfg, "-o", out, in, "--excel")
		if res.code != exitIncomplete {
			t.Fatalf("%q: exit %d, want 1 (the ghost fails)\n%s", d, res.code, res.stderr)
		}
		want := map[string]string{"report.csv": "line" + d + "target" + d, "failed.csv": "target" + d + "user" + d,
			"check.csv": "target" + d + "user" + d, "undo.csv": "target" + d + "user" + d}
		for name, head := range want {
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("\xef\xbb\xbf"+head)) {
				t.Errorf("%q: %s starts %q, want a byte order mark and %q", d, name, b[:min(len(b), 40)], head)
			}
		}
		rows := parseCSV(t, bytes.TrimPrefix(mustRead(t, filepath.Join(out, "report.csv")), []byte("\xef\xbb\xbf")), rune(d[0]))
		if len(rows) != 2 || rows[0]["outcome"] != "applied" || rows[0]["note"] != "a, b" || rows[1]["outcome"] != "failed" {
			t.Errorf("%q: report.csv read with its delimiter: %v", d, rows)
		}
		undo := parseCSV(t, bytes.TrimPrefix(mustRead(t, filepath.Join(out, "undo.csv")), []byte("\xef\xbb\xbf")), rune(d[0]))
		if len(undo) != 1 || undo[0]["user"] != "e1" || undo[0]["action"] != "enable" {
			t.Errorf("%q: undo.csv %v", d, undo)
		}
		// failed.csv runs again as it is.
		if res := e.run("validate", "-c", e.cfg, filepath.Join(out, "failed.csv")); res.code != exitOK || !strings.Contains(res.stdout, "1 row: 1 valid, 0 invalid") {
			t.Errorf("%q: failed.csv does not validate: exit %d\n%s%s", d, res.code, res.stdout, res.stderr)
		}
	}

	// Old Mac "CSV": CR alone ends each line; a blank line still counts.
	mac := e.write("mac.csv", "target,user,action\rshop,e2,disable\r\rshop,e1,enable\r")
	out := filepath.Join(e.dir, "mac")
	if res := e.run("run", "-c", e.cfg, "-o", out, mac); res.code != exitOK {
		t.Fatalf("CR-only file: exit %d\n%s", res.code, res.stderr)
	}
	var lines []string
	for _, r := range readCSV(t, filepath.Join(out, "report.csv")) {
		lines = append(lines, r["line"]+":"+r["user"]+":"+r["outcome"])
	}
	if got := strings.Join(lines, " "); got != "2:e2:applied 4:e1:applied" {
		t.Errorf("CR-only file: report %s, want 2:e2:applied 4:e1:applied", got)
	}
	if u, _ := e.fakes.epixel.User("e2"); !u.Blocked {
		t.Error("e2 not blocked by the CR-only file")
	}

	// A date and time with a space and no zone: refused, naming the forms.
	requests := e.fakes.epixel.Requests()
	zoneless := e.write("zoneless.csv", "target,user,action,effective_at\nshop,e1,disable,2026-12-31 18:00\n")
	res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "zoneless"), zoneless)
	if res.code != exitBadInput {
		t.Fatalf("zoneless effective_at: exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"line 2, column effective_at", "without a time zone", "write 2026-12-31T18:00:00Z",
		"RFC 3339 time like 2026-12-31T18:00:00+01:00", "a date like 2026-12-31", "1 of 1 row is invalid", "the 0 valid rows"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("zoneless effective_at: stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	if e.fakes.epixel.Requests() != requests {
		t.Error("a refused file sent requests")
	}

	// Not due: when, in days.
	later := e.write("later.csv", "target,user,action,effective_at\nshop,e1,disable,2099-01-01\n")
	out = filepath.Join(e.dir, "later")
	if res := e.runAt(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "run", "-c", e.cfg, "-o", out, later); res.code != exitOK {
		t.Fatalf("not due: exit %d\n%s", res.code, res.stderr)
	}
	if r := readCSV(t, filepath.Join(out, "report.csv"))[0]; r["outcome"] != "not_due" || r["detail"] != "not due: due 2099-01-01T00:00:00Z (in 26,298 days)" {
		t.Errorf("not due: %s %q", r["outcome"], r["detail"])
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
