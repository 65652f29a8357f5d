package reports

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// header builds a batch.Header the way the parser does.
func header(names ...string) batch.Header {
	h := batch.Header{Names: names, Known: map[string]int{}}
	for i, n := range names {
		k := strings.ToLower(strings.TrimSpace(n))
		if slices.Contains(batch.KnownColumns, k) {
			h.Known[k] = i
		} else {
			h.Passthrough = append(h.Passthrough, i)
		}
	}
	return h
}

func create(t testing.TB, h batch.Header) (*Writer, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := Create(dir, h)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w, dir
}

func write(t testing.TB, w *Writer, row batch.Row, res batch.Result) {
	t.Helper()
	if err := w.Write(row, res); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func closeRun(t testing.TB, w *Writer) *Summary {
	t.Helper()
	start := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	s, err := w.Close(Run{StartedAt: start, FinishedAt: start.Add(2 * time.Second)})
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return s
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestReportLines(t *testing.T) {
	h := header("target", "user", "action", "ticket", "Owner")
	w, dir := create(t, h)
	finished := time.Date(2024, 3, 1, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	write(t, w,
		batch.Row{Line: 2, Record: []string{"kii", "alice", "block", "T-1", "bob, jr"}},
		batch.Result{Target: "kii", User: "alice", Action: batch.Disable, Outcome: batch.Applied,
			HTTPStatus: 204, Attempts: 2, Retries: 1, Duration: 1234600 * time.Microsecond, FinishedAt: finished})
	write(t, w,
		batch.Row{Line: 3, Record: []string{"kii", "", "fly", "T2", "x"}, Problems: []batch.Problem{{}}},
		batch.Result{Target: "kii", Action: "fly", Outcome: batch.Invalid, ErrorCode: "invalid",
			Message: "line 3, column user: user is empty; line 3, column action: unknown action \"fly\""})
	// A row with the wrong field count: the parser gives it no cells.
	write(t, w,
		batch.Row{Line: 5, Record: []string{}, Problems: []batch.Problem{{}}},
		batch.Result{Outcome: batch.Invalid, ErrorCode: "invalid", Message: "wrong field count"})
	write(t, w,
		batch.Row{Line: 6, Record: []string{"kii", "carol", "enable", "T3", "dan"}},
		batch.Result{Target: "kii", User: "carol", Action: batch.Enable, Outcome: batch.Failed,
			HTTPStatus: 404, Attempts: 1, ErrorCode: batch.CodeNotFound, Message: "user not found,\nreally",
			Duration: 300 * time.Microsecond, FinishedAt: finished})
	closeRun(t, w)

	got := readCSV(t, filepath.Join(dir, ReportFile))
	want := [][]string{
		{"line", "target", "user", "action", "outcome", "detail", "http_status", "attempts", "error_code",
			"message", "duration_ms", "finished_at", "ticket", "Owner"},
		{"2", "kii", "alice", "disable", "applied", "", "204", "2", "", "", "1235", "2024-03-01T10:00:00.123Z", "T-1", "bob, jr"},
		{"3", "kii", "", "fly", "invalid", "", "", "0", "invalid",
			"line 3, column user: user is empty; line 3, column action: unknown action \"fly\"", "", "", "T2", "x"},
		{"5", "", "", "", "invalid", "", "", "0", "invalid", "wrong field count", "", "", "", ""},
		{"6", "kii", "carol", "enable", "failed", "", "404", "1", "not_found", "user not found,\nreally",
			"0", "2024-03-01T10:00:00.123Z", "T3", "dan"},
	}
	if len(got) != len(want) {
		t.Fatalf("report.csv has %d lines, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		equal(t, "report.csv line "+want[i][0], got[i], want[i])
	}
	raw, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")) || bytes.Contains(raw, []byte("\r\n")) {
		t.Errorf("report.csv must be plain UTF-8 with \\n line ends: %q", raw)
	}
}

func TestFailedHoldsFailedUnknownSkipped(t *testing.T) {
	h := header("Target", "USER", "action", "note")
	w, dir := create(t, h)
	want := [][]string{h.Names}
	for i, o := range batch.Outcomes {
		rec := []string{"t", "u" + string(o), " Block ", "a \"quoted\", note"}
		write(t, w, batch.Row{Line: i + 2, Record: rec}, batch.Result{Outcome: o})
		if o == batch.Failed || o == batch.Unknown || o == batch.Skipped {
			want = append(want, rec)
		}
	}
	closeRun(t, w)
	got := readCSV(t, filepath.Join(dir, FailedFile))
	if len(got) != len(want) {
		t.Fatalf("failed.csv = %q, want %q", got, want)
	}
	for i := range want {
		equal(t, "failed.csv", got[i], want[i])
	}
}

func TestUndoRules(t *testing.T) {
	h := header("target", "user", "action", "role", "place_genealogy", "block_user", "email", "ticket")
	type undoLine struct{ action, role, pg, bu, note string }
	cases := []struct {
		name string
		op   batch.Op
		want []undoLine
	}{
		{"disable", batch.Op{Action: batch.Disable}, []undoLine{{action: "enable"}}},
		{"enable", batch.Op{Action: batch.Enable}, []undoLine{{action: "disable"}}},
		{"toggle", batch.Op{Action: batch.ToggleStatus}, []undoLine{{action: "toggle-status"}}},
		{"upgrade to preferred", batch.Op{Action: batch.UpgradeRole, Role: batch.RolePreferredCustomer, PlaceGenealogy: true},
			[]undoLine{{action: "downgrade-role", role: "Customer", bu: "false"}}},
		{"upgrade to member", batch.Op{Action: batch.UpgradeRole, Role: batch.RoleMember},
			[]undoLine{{action: "downgrade-role", bu: "false", note: noteUpgrade}}},
		{"downgrade to preferred", batch.Op{Action: batch.DowngradeRole, Role: batch.RolePreferredCustomer},
			[]undoLine{{action: "upgrade-role", role: "Member"}}},
		{"downgrade to customer", batch.Op{Action: batch.DowngradeRole, Role: batch.RoleCustomer},
			[]undoLine{{action: "upgrade-role", note: noteDowngrade}}},
		{"downgrade to preferred and block", batch.Op{Action: batch.DowngradeRole, Role: batch.RolePreferredCustomer, BlockUser: true},
			[]undoLine{{action: "upgrade-role", role: "Member"}, {action: "enable"}}},
		{"downgrade to customer and block", batch.Op{Action: batch.DowngradeRole, Role: batch.RoleCustomer, BlockUser: true},
			[]undoLine{{action: "upgrade-role", note: noteDowngrade}, {action: "enable"}}},
	}
	w, dir := create(t, h)
	var groups [][][]string // the undo rows of each applied row, in input order
	for i, c := range cases {
		user := "user" + string(rune('a'+i))
		// The record's cells are the input's, deliberately unlike the
		// canonical values: the undo must set them, not copy them.
		rec := []string{"shop", user, "whatever", "someRole", "yes", "TRUE", "ops@example.com", c.name}
		op := c.op
		op.Target, op.User = "shop", user
		// Rows that did not end applied get no undo line.
		write(t, w, batch.Row{Line: 2 * i, Record: rec, Op: op}, batch.Result{Outcome: batch.Already})
		write(t, w, batch.Row{Line: 2*i + 1, Record: rec, Op: op}, batch.Result{Outcome: batch.Applied})
		var group [][]string
		for _, u := range c.want {
			group = append(group, []string{"shop", user, u.action, u.role, u.pg, u.bu, "ops@example.com", c.name, UndoNote(2*i+1, u.note)})
		}
		groups = append(groups, group)
	}
	closeRun(t, w)
	// undo.csv lists the rows last first; a row's own undo rows keep their order.
	var want [][]string
	for _, g := range slices.Backward(groups) {
		want = append(want, g...)
	}

	got := readCSV(t, filepath.Join(dir, UndoFile))
	equal(t, "undo.csv header", got[0], append(slices.Clone(h.Names), "undo_note"))
	got = got[1:]
	if len(got) != len(want) {
		t.Fatalf("undo.csv has %d rows, want %d:\n%q", len(got), len(want), got)
	}
	for i := range want {
		equal(t, "undo.csv row for "+want[i][7], got[i], want[i])
	}
}

// An undo row whose role is not known must not pass validation unfixed.
func TestUndoOfUnknownRoleLeavesRoleEmpty(t *testing.T) {
	for _, op := range []batch.Op{
		{Action: batch.UpgradeRole, Role: batch.RoleMember},
		{Action: batch.DowngradeRole, Role: batch.RoleCustomer},
	} {
		ops := undoOps(nil, op)
		if ops[0].role != "" || ops[0].note == "" {
			t.Errorf("undo of %s %s = %+v, want an empty role and a note", op.Action, op.Role, ops[0])
		}
	}
}

func TestUndoColumns(t *testing.T) {
	cases := []struct {
		input, want []string
	}{
		// No role column: no role action can be valid, so none is added.
		{[]string{"user", "action"}, []string{"user", "action", "undo_note"}},
		// Role actions are possible: place_genealogy lets the operator answer a note with Preferred Customer.
		{[]string{"user", "Action", "role"}, []string{"user", "Action", "role", "place_genealogy", "undo_note"}},
		// An undo.csv being undone keeps its own undo_note column.
		{[]string{"user", "action", " Undo_Note ", "x"}, []string{"user", "action", " Undo_Note ", "x"}},
	}
	for _, c := range cases {
		w, dir := create(t, header(c.input...))
		rec := make([]string, len(c.input))
		rec[0], rec[1] = "u1", "upgrade-role"
		for i := 2; i < len(rec); i++ {
			rec[i] = "old"
		}
		op := batch.Op{User: "u1", Action: batch.UpgradeRole, Role: batch.RoleMember}
		write(t, w, batch.Row{Line: 2, Record: rec, Op: op}, batch.Result{Outcome: batch.Applied})
		closeRun(t, w)
		got := readCSV(t, filepath.Join(dir, UndoFile))
		equal(t, "undo.csv header", got[0], c.want)
		note := slices.IndexFunc(c.want, func(n string) bool { return strings.TrimSpace(strings.ToLower(n)) == "undo_note" })
		if got[1][1] != "downgrade-role" || got[1][note] != UndoNote(2, noteUpgrade) {
			t.Errorf("undo.csv row for %q = %q: want downgrade-role with the note in column %d", c.input, got[1], note)
		}
	}
}

func TestUndoNoteRoundTrip(t *testing.T) {
	for _, c := range []struct {
		line int
		note string
	}{{7, ""}, {1234567, noteUpgrade}} {
		if got := UndoLine(UndoNote(c.line, c.note)); got != c.line {
			t.Errorf("UndoLine(UndoNote(%d, %q)) = %d", c.line, c.note, got)
		}
	}
	if UndoLine("something else") != 0 {
		t.Errorf("a note without a line must read as 0")
	}
}

func TestNeutralize(t *testing.T) {
	cases := map[string]string{
		"=1+1":    "'=1+1",
		"+1":      "'+1",
		"-1":      "'-1",
		"@SUM(A)": "'@SUM(A)",
		"\tx":     "'\tx",
		"\rx":     "'\rx",
		"":        "",
		"a=b":     "a=b",
		"'=x":     "'=x", // already neutral: the parser strips one quote
		" =x":     " =x",
		"alice":   "alice",
	}
	for in, want := range cases {
		if got := Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNeutralizedInEveryFile(t *testing.T) {
	triggers := []string{"=cmd()", "+1", "-2", "@x", "\tt", "\rr"}
	names := []string{"target", "user", "action", "=a", "+b", "-c", "@d", "\te", "\rf"}
	h := header(names...)
	w, dir := create(t, h)
	rec := append([]string{"shop", "=HYPERLINK(\"x\")", "-disable"}, triggers...)
	op := batch.Op{Target: "shop", User: rec[1], Action: batch.Disable}
	write(t, w, batch.Row{Line: 2, Record: rec, Op: op},
		batch.Result{Target: "shop", User: rec[1], Action: batch.Disable, Outcome: batch.Failed, Message: "-1 is not allowed"})
	write(t, w, batch.Row{Line: 3, Record: rec, Op: op},
		batch.Result{Target: "shop", User: rec[1], Action: batch.Disable, Outcome: batch.Applied})
	closeRun(t, w)

	quoted := func(cells []string) []string {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = "'" + c
		}
		return out
	}
	report := readCSV(t, filepath.Join(dir, ReportFile))
	equal(t, "report.csv header names", report[0][len(reportColumns):], quoted(names[3:]))
	equal(t, "report.csv passthrough", report[1][len(reportColumns):], quoted(triggers))
	if report[1][2] != "'"+rec[1] || report[1][9] != "'-1 is not allowed" {
		t.Errorf("report.csv user and message not neutralised: %q", report[1])
	}
	failed := readCSV(t, filepath.Join(dir, FailedFile))
	equal(t, "failed.csv header", failed[0][3:], quoted(names[3:]))
	equal(t, "failed.csv row", failed[1], append([]string{"shop", "'" + rec[1], "'-disable"}, quoted(triggers)...))
	undo := readCSV(t, filepath.Join(dir, UndoFile))
	equal(t, "undo.csv header", undo[0][3:len(names)], quoted(names[3:]))
	equal(t, "undo.csv row", undo[1], append(append([]string{"shop", "'" + rec[1], "enable"}, quoted(triggers)...), UndoNote(3, "")))
}

func TestSummary(t *testing.T) {
	h := header("target", "user", "action")
	w, dir := create(t, h)
	results := []batch.Result{
		{Target: "a", Action: batch.Disable, Outcome: batch.Applied, Attempts: 1, Writes: 1, Duration: time.Millisecond},
		{Target: "a", Action: batch.Disable, Outcome: batch.Applied, Attempts: 3, Writes: 3, Retries: 2, Duration: time.Second},
		{Target: "b", Action: batch.Enable, Outcome: batch.Already, Attempts: 1, Duration: time.Millisecond},
		{Target: "b", Action: batch.Enable, Outcome: batch.Failed, Attempts: 4, Retries: 3, Duration: time.Second},
		{Target: "nope", Action: "fly", Outcome: batch.Invalid},
		{Target: "a", Action: batch.ToggleStatus, Outcome: batch.Skipped},
	}
	for i, res := range results {
		write(t, w, batch.Row{Line: i + 2, Record: []string{res.Target, "u", string(res.Action)}}, res)
	}
	start := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	s, err := w.Close(Run{StartedAt: start, FinishedAt: start.Add(2 * time.Second), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows      int                       `json:"rows"`
		Outcomes  map[string]int            `json:"outcomes"`
		ByTarget  map[string]map[string]int `json:"by_target"`
		ByAction  map[string]map[string]int `json:"by_action"`
		StartedAt time.Time                 `json:"started_at"`
		Duration  float64                   `json:"duration_s"`
		OpsPerS   float64                   `json:"ops_per_s"`
		Latency   map[string]float64        `json:"latency_ms"`
		Retries   int                       `json:"retries"`
		Attempts  int                       `json:"attempts"`
		Reads     int                       `json:"reads"`
		Writes    int                       `json:"writes"`
		Sent      int                       `json:"sent"`
		ExitCode  int                       `json:"exit_code"`
		DryRun    bool                      `json:"dry_run"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("summary.json: %v\n%s", err, raw)
	}
	if got.Rows != len(results) || s.Rows != len(results) {
		t.Errorf("rows = %d (returned %d), want %d", got.Rows, s.Rows, len(results))
	}
	sum := func(c map[string]int) int {
		n := 0
		for _, v := range c {
			n += v
		}
		return n
	}
	for _, o := range batch.Outcomes {
		if _, ok := got.Outcomes[string(o)]; !ok {
			t.Errorf("outcomes lacks %s: %v", o, got.Outcomes)
		}
	}
	if sum(got.Outcomes) != got.Rows {
		t.Errorf("outcomes %v do not add up to %d rows", got.Outcomes, got.Rows)
	}
	for name, m := range map[string]map[string]map[string]int{"by_target": got.ByTarget, "by_action": got.ByAction} {
		total := 0
		for _, c := range m {
			total += sum(c)
		}
		if total != got.Rows {
			t.Errorf("%s %v adds up to %d, want %d", name, m, total, got.Rows)
		}
	}
	if got.ByTarget["a"]["applied"] != 2 || got.ByTarget["b"]["failed"] != 1 || got.ByAction["fly"]["invalid"] != 1 {
		t.Errorf("by_target %v, by_action %v", got.ByTarget, got.ByAction)
	}
	if got.Retries != 5 || got.Attempts != 9 {
		t.Errorf("retries %d, attempts %d; want 5, 9", got.Retries, got.Attempts)
	}
	if got.Reads != 5 || got.Writes != 4 || got.Sent != 4 {
		t.Errorf("reads %d, writes %d, sent %d; want 5, 4 and sent the writes", got.Reads, got.Writes, got.Sent)
	}
	if got.Duration != 2 || got.OpsPerS != 4.5 { // 9 requests in 2 s
		t.Errorf("duration_s %v, ops_per_s %v; want 2, 4.5", got.Duration, got.OpsPerS)
	}
	if !got.StartedAt.Equal(start) || !got.DryRun || got.ExitCode != int(ExitIncomplete) {
		t.Errorf("started_at %v, dry_run %v, exit_code %d", got.StartedAt, got.DryRun, got.ExitCode)
	}
	if math.Abs(got.Latency["p50"]-1) > 0.01 || got.Latency["p99"] != 1000 {
		t.Errorf("latency_ms %v: want p50 1 ±1%%, p99 1000 (the largest value, exact)", got.Latency)
	}
}

func TestSummaryBoundsDistinctKeys(t *testing.T) {
	w, _ := create(t, header("target", "user", "action"))
	for i := range maxKeys + 10 {
		res := batch.Result{Target: "garbage" + string(rune(0x4e00+i)), Action: "x", Outcome: batch.Invalid}
		write(t, w, batch.Row{Line: i + 2}, res)
	}
	s := closeRun(t, w)
	if len(s.ByTarget) != maxKeys+1 || s.ByTarget[otherKey][batch.Invalid] != 10 {
		t.Errorf("by_target has %d keys, %d rows under %s; want %d and 10",
			len(s.ByTarget), s.ByTarget[otherKey][batch.Invalid], otherKey, maxKeys+1)
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		outcomes map[batch.Outcome]int
		stopped  bool
		want     ExitCode
	}{
		{nil, false, ExitOK},
		{map[batch.Outcome]int{batch.Applied: 3, batch.Already: 1, batch.Planned: 2, batch.Failed: 0}, false, ExitOK},
		{map[batch.Outcome]int{batch.Applied: 3, batch.Failed: 1}, false, ExitIncomplete},
		{map[batch.Outcome]int{batch.Unknown: 1}, false, ExitIncomplete},
		{map[batch.Outcome]int{batch.Skipped: 1}, false, ExitIncomplete},
		{map[batch.Outcome]int{batch.Invalid: 1}, false, ExitIncomplete},
		{map[batch.Outcome]int{"": 1}, false, ExitIncomplete},
		{map[batch.Outcome]int{batch.Applied: 1}, true, ExitStopped},
		{map[batch.Outcome]int{batch.Failed: 1}, true, ExitStopped},
	}
	for _, c := range cases {
		if got := ExitFor(c.outcomes, c.stopped); got != c.want {
			t.Errorf("ExitFor(%v, %v) = %d, want %d", c.outcomes, c.stopped, got, c.want)
		}
	}
}

func TestLatencyPercentiles(t *testing.T) {
	w, _ := create(t, header("target", "user", "action"))
	for i := 1; i <= 1000; i++ {
		res := batch.Result{Outcome: batch.Applied, Attempts: 1, Duration: time.Duration(i) * time.Millisecond}
		write(t, w, batch.Row{Line: i + 1}, res)
	}
	// Rows never sent do not count, whatever their duration.
	write(t, w, batch.Row{Line: 1002}, batch.Result{Outcome: batch.Skipped, Duration: time.Hour})
	s := closeRun(t, w)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", s.LatencyMS.P50, 500}, {"p95", s.LatencyMS.P95, 950}, {"p99", s.LatencyMS.P99, 990}, {"max", s.LatencyMS.Max, 1000}} {
		if math.Abs(c.got-c.want)/c.want > 0.01 {
			t.Errorf("%s = %v ms, want %v ±1%%", c.name, c.got, c.want)
		}
	}
}

func TestHistogramRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	values := make([]time.Duration, 20000)
	for i := range values {
		// Log-uniform from 1 ns to about 3 hours.
		values[i] = time.Duration(math.Exp(rng.Float64() * math.Log(1e13)))
		h.add(values[i])
	}
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
		want := values[int(math.Ceil(q*float64(len(values))))-1]
		got := h.quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v (error %.3f%%)", q, got, want, rel*100)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1e6, 1e9, 1e15, math.MaxInt64, math.MaxUint64} {
		b := bucketOf(v)
		if b < prev || b >= histBuckets {
			t.Errorf("bucketOf(%d) = %d: out of order or range", v, b)
		}
		if bucketOf(bucketMid(b)) != b {
			t.Errorf("bucketMid(%d) = %d lies outside the bucket of %d", b, bucketMid(b), v)
		}
		prev = b
	}
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Error("an empty histogram must report 0")
	}
}

func TestFilesAppearUnderFinalNamesOnlyOnClose(t *testing.T) {
	w, dir := create(t, header("target", "user", "action"))
	write(t, w, batch.Row{Line: 2, Record: []string{"t", "u", "disable"}, Op: batch.Op{Action: batch.Disable}},
		batch.Result{Outcome: batch.Applied})
	for _, name := range list(t, dir) {
		if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".partial") {
			t.Errorf("before Close the directory holds %q: want only hidden partial files", name)
		}
	}
	closeRun(t, w)
	if got := list(t, dir); !slices.Equal(got, []string{CheckFile, FailedFile, ReportFile, HTMLFile, SummaryFile, UndoFile}) {
		t.Errorf("after Close the directory holds %q, want the final names only", got)
	}
}

func list(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCreateInUnwritableDirectory(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Create(filepath.Join(parent, "report"), header("user", "action"))
	if err == nil || !strings.Contains(err.Error(), ReportFile) {
		t.Errorf("Create under a regular file: error %v, want one naming %s", err, ReportFile)
	}
}

func TestCreateInReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestCreateInUnwritableDirectory covers the error")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, header("user", "action")); err == nil {
		t.Error("Create in a read-only directory succeeded")
	}
}

func TestCloseReportsLostDirectory(t *testing.T) {
	w, dir := create(t, header("target", "user", "action"))
	write(t, w, batch.Row{Line: 2}, batch.Result{Outcome: batch.Failed})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s, err := w.Close(Run{})
	if err == nil {
		t.Fatal("Close succeeded after the report directory was removed")
	}
	if s == nil || s.Rows != 1 || s.ExitCode != ExitIncomplete {
		t.Errorf("Close must still return the summary: %+v", s)
	}
}

// A write error (a full disk) is kept: every later Write and Close return it,
// rows are still counted, and nothing is renamed into place.
func TestWriteErrorIsSticky(t *testing.T) {
	w, dir := create(t, header("target", "user", "action"))
	w.report.f.Close() // the next flush of the buffer fails
	var first error
	rows := 0
	for first == nil && rows < 100000 {
		rows++
		first = w.Write(batch.Row{Line: rows + 1}, batch.Result{Outcome: batch.Applied, Message: strings.Repeat("x", 100)})
	}
	if first == nil || !strings.Contains(first.Error(), ReportFile) {
		t.Fatalf("Write: error %v, want one naming %s", first, ReportFile)
	}
	if err := w.Write(batch.Row{Line: rows + 2}, batch.Result{Outcome: batch.Failed}); err != first {
		t.Errorf("the next Write returned %v, want the first error %v", err, first)
	}
	s, err := w.Close(Run{})
	if err != first {
		t.Errorf("Close returned %v, want the first error %v", err, first)
	}
	if s == nil || s.Rows != rows+1 {
		t.Errorf("summary %+v, want %d rows counted", s, rows+1)
	}
	if names := list(t, dir); len(names) != 0 {
		t.Errorf("after a write error the directory holds %q: want no report file, partial or final", names)
	}
}

func TestCloseStopsAtFailedRename(t *testing.T) {
	w, dir := create(t, header("target", "user", "action"))
	write(t, w, batch.Row{Line: 2}, batch.Result{Outcome: batch.Failed})
	// A non-empty directory under report.csv's name: no rename replaces it,
	// not even as root.
	if err := os.MkdirAll(filepath.Join(dir, ReportFile, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := w.Close(Run{})
	if err == nil || !strings.Contains(err.Error(), ReportFile) {
		t.Fatalf("Close: error %v, want one naming %s", err, ReportFile)
	}
	if names := list(t, dir); !slices.Equal(names, []string{ReportFile}) {
		t.Errorf("the directory holds %q: want only the directory in report.csv's way, no other file partial or final", names)
	}
}

func TestWriterUseAfterClose(t *testing.T) {
	w, _ := create(t, header("user", "action"))
	closeRun(t, w)
	if err := w.Write(batch.Row{}, batch.Result{Outcome: batch.Applied}); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := w.Close(Run{}); err == nil {
		t.Error("a second Close succeeded")
	}
}

func TestWriteTable(t *testing.T) {
	one := &Summary{Rows: 3, Outcomes: Counts{batch.Applied: 2, batch.Failed: 1},
		ByTarget:  map[string]Counts{"shop": {batch.Applied: 2, batch.Failed: 1}},
		DurationS: 1.5, Sent: 3, Reads: 1, Writes: 3, OpsPerS: 2, Retries: 4, Attempts: 7,
		LatencyMS: Latency{P50: 12, P95: 40.25, P99: 80}}
	var b strings.Builder
	one.WriteTable(&b)
	out := b.String()
	for _, want := range []string{"applied  2", "failed   1", "total    3", "2.0 requests/s (1 read, 3 writes in 1.5s)", "p50 12.0ms", "p95 40.2ms", "p99 80.0ms", "retries     4 (7 attempts)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "shop") {
		t.Errorf("a single target needs no column of its own:\n%s", out)
	}
	if strings.Contains(out, CheckFile) {
		t.Errorf("no row to check, yet the table names %s:\n%s", CheckFile, out)
	}
	withCheck := *one
	withCheck.FileRows.Check = 2
	b.Reset()
	withCheck.WriteTable(&b)
	if !strings.Contains(b.String(), "2 rows to check by hand") || !strings.Contains(b.String(), CheckFile) {
		t.Errorf("the table does not point at check.csv:\n%s", b.String())
	}
	withCheck.FileRows.Check = 1
	b.Reset()
	withCheck.WriteTable(&b)
	if !strings.Contains(b.String(), "1 row to check by hand") {
		t.Errorf("one row to check:\n%s", b.String())
	}

	two := *one
	two.ByTarget = map[string]Counts{"shop": {batch.Applied: 2}, "kii": {batch.Failed: 1}}
	b.Reset()
	two.WriteTable(&b)
	lines := strings.Split(b.String(), "\n")
	if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"outcome", "rows", "kii", "shop"}) {
		t.Errorf("header %q, want a column per target", lines[0])
	}
	if f := strings.Fields(lines[1]); !slices.Equal(f, []string{"applied", "2", "0", "2"}) {
		t.Errorf("applied line %q, want counts per target", lines[1])
	}
}

func BenchmarkWrite(b *testing.B) {
	h := header("target", "user", "action", "role", "ticket", "owner")
	w, err := Create(b.TempDir(), h)
	if err != nil {
		b.Fatal(err)
	}
	rec := []string{"shop-eu", "user-123456", "disable", "", "T-42", "ops team"}
	row := batch.Row{Line: 2, Record: rec, Op: batch.Op{Target: "shop-eu", User: "user-123456", Action: batch.Disable}}
	res := batch.Result{Target: "shop-eu", User: "user-123456", Action: batch.Disable, Outcome: batch.Applied,
		HTTPStatus: 200, Attempts: 1, Duration: 42 * time.Millisecond, FinishedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		row.Line++
		if err := w.Write(row, res); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Close(Run{}); err != nil {
		b.Fatal(err)
	}
}
