package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
