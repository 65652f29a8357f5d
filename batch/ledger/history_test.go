package ledger

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

func historyEntries() []Entry {
	a := entry("alice", batch.ToggleStatus, "run-1")
	a.State, a.Outcome, a.At = Done, batch.Applied, time.Date(2026, 11, 30, 22, 0, 1, 500_000_000, time.UTC)
	a.Actor = "jdoe@ops1"
	b := entry("=HYPERLINK(\"x\")", batch.DowngradeRole, "run-2")
	b.Role, b.EffectiveAt = "Preferred Customer", time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	b.State, b.Line = Pending, 1234
	return []Entry{a, b}
}

func TestHistoryCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHistory(&buf, "csv", historyEntries()...); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"at", "run_id", "actor", "target", "user", "action", "role", "effective_at", "outcome", "state", "input_sha256", "line"},
		{"2026-11-30T22:00:01.5Z", "run-1", "jdoe@ops1", "shop-eu", "alice", "toggle-status", "", "", "applied", "done", strings.Repeat("ab", 32), "7"},
		{"2026-11-30T22:00:00Z", "run-2", "", "shop-eu", "'=HYPERLINK(\"x\")", "downgrade-role", "Preferred Customer", "2026-11-30T23:00:00Z", "", "pending", strings.Repeat("ab", 32), "1234"},
	}
	if !slices.EqualFunc(recs, want, slices.Equal) {
		t.Errorf("csv:\n got %q\nwant %q", recs, want)
	}
}

func TestHistoryJSONLines(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHistory(&buf, "json", historyEntries()...); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("json: %d lines, want one per entry:\n%s", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	if want := slices.Sorted(slices.Values(HistoryColumns)); !slices.Equal(slices.Sorted(slices.Values(keys)), want) {
		t.Errorf("json keys %v, want %v", keys, want)
	}
	if got["user"] != "=HYPERLINK(\"x\")" || got["effective_at"] != "2026-11-30T23:00:00Z" || got["line"] != 1234.0 || got["outcome"] != "" {
		t.Errorf("json line: %v", got)
	}
}

// TestHistoryTable: columns line up, and a cell cannot break its row or
// send a terminal escape.
func TestHistoryTable(t *testing.T) {
	es := historyEntries()
	es[0].User = "mallory\x1b[2J\n"
	var buf bytes.Buffer
	if err := WriteHistory(&buf, "table", es...); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("table passes an escape through:\n%s", out)
	}
	var rows []string
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		rows = append(rows, sc.Text())
	}
	if len(rows) != 3 {
		t.Fatalf("table: %d lines, want header and 2 rows:\n%s", len(rows), out)
	}
	col := strings.Index(rows[0], "ACTION")
	for i, want := range []string{"toggle-status", "downgrade-role"} {
		if got := strings.Index(rows[i+1], want); got != col {
			t.Errorf("row %d: %s at column %d, want %d:\n%s", i+1, want, got, col, out)
		}
	}
	for _, want := range []string{`"mallory\x1b[2J\n"`, "abababababab ", "jdoe@ops1", "2026-11-30T22:00:01Z", "Preferred Customer"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.Repeat("ab", 7)) {
		t.Errorf("table shows the whole input SHA-256:\n%s", out)
	}
}

func TestHistoryUnknownFormat(t *testing.T) {
	_, err := NewHistoryWriter(&bytes.Buffer{}, "xml")
	if err == nil || !strings.Contains(err.Error(), "table, csv, json") {
		t.Fatalf("unknown format: %v, want an error listing the formats", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestHistoryWriteErrors(t *testing.T) {
	for _, f := range HistoryFormats {
		if err := WriteHistory(failingWriter{}, f, historyEntries()...); err == nil {
			t.Errorf("%s: a failing writer gave no error", f)
		}
	}
}

// TestHistoryStreamsFromLedger: the writer's Write is History's fn.
func TestHistoryStreamsFromLedger(t *testing.T) {
	l := mustOpen(t, sqliteStore(t))
	for _, u := range []string{"u1", "u2"} {
		mustClaim(t, l, entry(u, batch.Disable, "run-a"))
	}
	var buf bytes.Buffer
	h, err := NewHistoryWriter(&buf, "csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.History(t.Context(), Filter{User: "u2"}, h.Write); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1][4] != "u2" {
		t.Fatalf("csv from History: %q", recs)
	}
}

func TestNeutralize(t *testing.T) {
	cases := map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A)": "'@SUM(A)", "\tx": "'\tx", "\rx": "'\rx",
		"": "", "a=b": "a=b", "'=x": "'=x", " =x": " =x", "alice": "alice",
	}
	for in, want := range cases {
		if got := neutralize(in); got != want {
			t.Errorf("neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}
