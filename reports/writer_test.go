package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

func createWith(t testing.TB, h batch.Header, opt Options) (*Writer, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := CreateWith(dir, h, opt)
	if err != nil {
		t.Fatalf("CreateWith: %v", err)
	}
	return w, dir
}

// failed.csv takes only what can run again as it is; an unknown toggle goes
// to check.csv with its reason and line.
func TestUnknownTogglesGoToCheck(t *testing.T) {
	h := header("target", "user", "action", "ticket")
	w, dir := create(t, h)
	rows := []struct {
		rec []string
		res batch.Result
	}{
		{[]string{"cs", "t1", "toggle-status", "A"}, batch.Result{Action: batch.ToggleStatus, Outcome: batch.Unknown,
			Detail: "may have been applied", Message: "no answer in time"}},
		{[]string{"cs", "d1", "disable", "B"}, batch.Result{Action: batch.Disable, Outcome: batch.Unknown, Message: "no answer in time"}},
		{[]string{"cs", "t2", "toggle-status", "C"}, batch.Result{Action: batch.ToggleStatus, Outcome: batch.Failed, Message: "404"}},
		{[]string{"cs", "t3", "toggle-status", "D"}, batch.Result{Action: batch.ToggleStatus, Outcome: batch.Skipped, Detail: "protected"}},
		{[]string{"cs", "=t4"}, batch.Result{Action: batch.ToggleStatus, Outcome: batch.Unknown, Message: "-connection dropped"}},
		{[]string{"cs", "t5", "toggle-status", "F"}, batch.Result{Action: batch.ToggleStatus, Outcome: batch.Applied}},
	}
	for i, r := range rows {
		r.res.Target = "cs"
		write(t, w, batch.Row{Line: i + 2, Record: r.rec, Op: batch.Op{Action: r.res.Action}}, r.res)
	}
	s := closeRun(t, w)

	failed := readCSV(t, filepath.Join(dir, FailedFile))
	equal(t, "failed.csv header", failed[0], h.Names)
	var users []string
	for _, rec := range failed[1:] {
		users = append(users, rec[1])
	}
	equal(t, "failed.csv users", users, []string{"d1", "t2", "t3"})

	check := readCSV(t, filepath.Join(dir, CheckFile))
	equal(t, "check.csv header", check[0], append(slices.Clone(h.Names), ColCheckReason))
	if len(check) != 3 {
		t.Fatalf("check.csv = %q, want the two unknown toggles", check)
	}
	equal(t, "check.csv row", check[1][:4], rows[0].rec)
	// A short record is padded to the header; cells stay neutralised.
	equal(t, "check.csv short row", check[2][:4], []string{"cs", "'=t4", "", ""})
	for i, want := range []struct {
		line int
		says string
	}{{2, "may have been applied: no answer in time"}, {6, "-connection dropped"}} {
		reason := check[i+1][4]
		if CheckLine(reason) != want.line || !strings.Contains(reason, want.says) || !strings.Contains(reason, "by hand") {
			t.Errorf("reason %q: want line %d, %q and what to do", reason, want.line, want.says)
		}
	}
	if s.FileRows != (FileRows{Failed: 3, Check: 2, Undo: 1}) {
		t.Errorf("file_rows = %+v, want failed 3, check 2, undo 1", s.FileRows)
	}
	var onDisk struct {
		FileRows map[string]int `json:"file_rows"`
	}
	readJSON(t, filepath.Join(dir, SummaryFile), &onDisk)
	if onDisk.FileRows["check.csv"] != 2 || onDisk.FileRows["failed.csv"] != 3 || onDisk.FileRows["undo.csv"] != 1 {
		t.Errorf("summary.json file_rows = %v", onDisk.FileRows)
	}
}

func TestRepeatableOption(t *testing.T) {
	h := header("target", "user", "action")
	calls := 0
	opt := Options{Repeatable: func(target string, a batch.Action) bool {
		calls++
		return target == "idem" // this vendor's toggle is safe to repeat; the other's disable is not
	}}
	w, dir := createWith(t, h, opt)
	write(t, w, batch.Row{Line: 2, Record: []string{"idem", "u1", "toggle-status"}},
		batch.Result{Target: "idem", Action: batch.ToggleStatus, Outcome: batch.Unknown})
	write(t, w, batch.Row{Line: 3, Record: []string{"other", "u2", "disable"}},
		batch.Result{Target: "other", Action: batch.Disable, Outcome: batch.Unknown})
	write(t, w, batch.Row{Line: 4, Record: []string{"other", "u3", "disable"}},
		batch.Result{Target: "other", Action: batch.Disable, Outcome: batch.Failed})
	closeRun(t, w)
	if calls != 2 {
		t.Errorf("Repeatable called %d times, want once per unknown row", calls)
	}
	failed := readCSV(t, filepath.Join(dir, FailedFile))
	check := readCSV(t, filepath.Join(dir, CheckFile))
	if len(failed) != 3 || failed[1][1] != "u1" || failed[2][1] != "u3" || len(check) != 2 || check[1][1] != "u2" {
		t.Errorf("failed.csv %q, check.csv %q", failed, check)
	}
}

func TestCheckLine(t *testing.T) {
	for _, line := range []int{2, 1234567} {
		if got := CheckLine(CheckReason(line, batch.Result{Action: batch.ToggleStatus, Message: "line 9: x"})); got != line {
			t.Errorf("CheckLine(CheckReason(%d)) = %d", line, got)
		}
	}
	for _, s := range []string{"", "line x: y", "reverses line 3", "line 3 no colon"} {
		if CheckLine(s) != 0 {
			t.Errorf("CheckLine(%q) must be 0", s)
		}
	}
}

// A user disabled, then enabled, in one file is undone by disabling first
// (reversing the enable), then enabling (reversing the disable).
func TestUndoIsInReverseInputOrder(t *testing.T) {
	h := header("target", "user", "action")
	w, dir := create(t, h)
	write(t, w, batch.Row{Line: 2, Record: []string{"shop", "alice", "disable"}, Op: batch.Op{Action: batch.Disable}},
		batch.Result{Outcome: batch.Applied})
	write(t, w, batch.Row{Line: 3, Record: []string{"shop", "bob", "disable"}, Op: batch.Op{Action: batch.Disable}},
		batch.Result{Outcome: batch.Failed})
	write(t, w, batch.Row{Line: 4, Record: []string{"shop", "alice", "enable"}, Op: batch.Op{Action: batch.Enable}},
		batch.Result{Outcome: batch.Applied})
	closeRun(t, w)
	got := readCSV(t, filepath.Join(dir, UndoFile))
	want := [][]string{
		{"target", "user", "action", "undo_note"},
		{"shop", "alice", "disable", UndoNote(4, "")},
		{"shop", "alice", "enable", UndoNote(2, "")},
	}
	if len(got) != len(want) {
		t.Fatalf("undo.csv = %q, want %q", got, want)
	}
	for i := range want {
		equal(t, "undo.csv line", got[i], want[i])
	}
}

// The spool copies out across its read chunks and index blocks, and a
// group larger than a chunk, in exact reverse order.
func TestUndoSpoolAcrossChunks(t *testing.T) {
	h := header("target", "user", "action", "role", "block_user", "note")
	w, dir := create(t, h)
	const n = 30000
	var want []string
	for i := range n {
		note := strings.Repeat("x", i%97)
		if i == n/2 {
			note = strings.Repeat("big", spoolChunk/2) // one row larger than a chunk
		}
		op := batch.Op{Action: batch.Disable}
		if i%5 == 0 { // two undo rows for one input row
			op = batch.Op{Action: batch.DowngradeRole, Role: batch.RolePreferredCustomer, BlockUser: true}
		}
		user := fmt.Sprintf("u%d", i)
		write(t, w, batch.Row{Line: i + 2, Record: []string{"t", user, "x", "", "", note}, Op: op}, batch.Result{Outcome: batch.Applied})
		group := []string{user + "/enable"}
		if i%5 == 0 {
			group = []string{user + "/upgrade-role", user + "/enable"}
		}
		want = append(want, strings.Join(group, ","))
	}
	s := closeRun(t, w)
	all := readCSV(t, filepath.Join(dir, UndoFile))
	note := slices.Index(all[0], ColUndoNote)
	got := all[1:]
	if len(got) != s.FileRows.Undo {
		t.Errorf("undo.csv has %d rows, the summary says %d", len(got), s.FileRows.Undo)
	}
	var groups []string
	for i := 0; i < len(got); {
		g := got[i][1] + "/" + got[i][2]
		line := UndoLine(got[i][note])
		i++
		for i < len(got) && UndoLine(got[i][note]) == line {
			g += "," + got[i][1] + "/" + got[i][2]
			i++
		}
		groups = append(groups, g)
	}
	slices.Reverse(want)
	if !slices.Equal(groups, want) {
		t.Fatalf("undo.csv is not the input's undo rows in reverse (%d groups, want %d)", len(groups), len(want))
	}
	big := slices.IndexFunc(got, func(rec []string) bool { return rec[1] == fmt.Sprintf("u%d", n/2) })
	if big < 0 || len(got[big][5]) != 3*(spoolChunk/2) {
		t.Errorf("the row larger than a chunk lost its cell")
	}
}

// Memory stays flat: a Writer holds no per-row state, undo rows included.
func TestWriterMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200,000 rows")
	}
	h := header("target", "user", "action", "ticket", "owner")
	w, _ := create(t, h)
	rec := []string{"shop-eu", "", "disable", "T-42", "operations team of the eu shop"}
	row := batch.Row{Record: rec, Op: batch.Op{Action: batch.Disable}}
	res := batch.Result{Target: "shop-eu", Action: batch.Disable, Outcome: batch.Applied, Attempts: 1,
		Duration: 40 * time.Millisecond}
	start := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var before uint64
	const n = 200000
	for i := range n {
		if i == 1000 {
			before = heap()
		}
		row.Line, rec[1] = i+2, fmt.Sprintf("user-%09d", i)
		res.User, res.FinishedAt = rec[1], start.Add(time.Duration(i)*time.Millisecond)
		if i%10 == 0 {
			res.Outcome, res.Message = batch.Failed, fmt.Sprintf("message %d", i%200)
		} else {
			res.Outcome, res.Message = batch.Applied, ""
		}
		if err := w.Write(row, res); err != nil {
			t.Fatal(err)
		}
	}
	// 300,000 rows of about 100 bytes kept in memory would be 30 MB.
	grown := int64(heap()) - int64(before)
	t.Logf("heap grew by %d bytes over %d rows", grown, n)
	if grown > 4<<20 {
		t.Errorf("the heap grew by %d bytes over %d rows", grown, n)
	}
	if _, err := w.Close(Run{StartedAt: start, FinishedAt: start.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

func TestFilesAre0600EvenWithAPermissiveUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	w, dir := create(t, header("target", "user", "action"))
	write(t, w, batch.Row{Line: 2, Record: []string{"t", "u", "disable"}, Op: batch.Op{Action: batch.Disable}},
		batch.Result{Outcome: batch.Applied})
	for _, name := range list(t, dir) { // the partial files too
		mode(t, filepath.Join(dir, name))
	}
	closeRun(t, w)
	names := list(t, dir)
	if len(names) != 6 {
		t.Errorf("the directory holds %q, want six report files", names)
	}
	for _, name := range names {
		mode(t, filepath.Join(dir, name))
	}
}

func mode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", filepath.Base(path), fi.Mode().Perm())
	}
}

// Two writers in one directory never write into each other's files: each
// report lands whole, the last one closed in place.
func TestTwoWritersInOneDirectory(t *testing.T) {
	dir := t.TempDir()
	h := header("target", "user", "action")
	var ws []*Writer
	for range 2 {
		w, err := Create(dir, h)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for i := range 2000 { // enough to flush the buffers several times, interleaved
		for k, w := range ws {
			user := fmt.Sprintf("w%d-%d", k, i)
			write(t, w, batch.Row{Line: i + 2, Record: []string{"t", user, "disable"}}, batch.Result{User: user, Outcome: batch.Failed})
		}
	}
	for _, w := range ws {
		closeRun(t, w)
	}
	for _, name := range []string{ReportFile, FailedFile} {
		recs := readCSV(t, filepath.Join(dir, name))
		if len(recs) != 2001 {
			t.Fatalf("%s has %d lines, want 2001", name, len(recs))
		}
		for _, rec := range recs[1:] {
			if !slices.ContainsFunc(rec, func(c string) bool { return strings.HasPrefix(c, "w1-") }) {
				t.Fatalf("%s holds %q, not only the second writer's rows", name, rec)
			}
		}
	}
	for _, name := range list(t, dir) {
		if strings.HasSuffix(name, ".partial") {
			t.Errorf("%s left behind", name)
		}
	}
}

// --excel: a byte order mark on the CSV reports, which userbatch's own
// parser reads back; formula cells stay neutralised.
func TestExcelWritesABOMThatReadsBack(t *testing.T) {
	h := header("target", "user", "action", "name")
	w, dir := createWith(t, h, Options{Excel: true})
	rec := []string{"shop", "-ünïcødé-1", "disable", "Zoë Ørsted"}
	op := batch.Op{Target: "shop", User: rec[1], Action: batch.Disable}
	write(t, w, batch.Row{Line: 2, Record: rec, Op: op}, batch.Result{Target: "shop", User: rec[1], Action: batch.Disable, Outcome: batch.Applied})
	write(t, w, batch.Row{Line: 3, Record: rec, Op: op}, batch.Result{Target: "shop", User: rec[1], Action: batch.Disable, Outcome: batch.Failed})
	write(t, w, batch.Row{Line: 4, Record: rec, Op: op}, batch.Result{Target: "shop", User: rec[1], Action: batch.ToggleStatus, Outcome: batch.Unknown})
	closeRun(t, w)
	for _, name := range []string{ReportFile, FailedFile, CheckFile, UndoFile} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(raw, []byte(UTF8BOM)) || bytes.Count(raw, []byte(UTF8BOM)) != 1 {
			t.Errorf("%s does not start with exactly one UTF-8 BOM: %q", name, raw[:min(len(raw), 20)])
		}
		if !bytes.Contains(raw, []byte("'-ünïcødé-1")) || !bytes.Contains(raw, []byte("Zoë Ørsted")) {
			t.Errorf("%s lost the neutralised non-ASCII cell: %q", name, raw)
		}
	}
	for _, name := range []string{SummaryFile, HTMLFile} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(raw, []byte(UTF8BOM)) {
			t.Errorf("%s starts with a BOM; only the CSV files take one", name)
		}
	}
	targets := batch.Targets{"shop": {Vendor: "x", Actions: batch.Actions}}
	for _, name := range []string{FailedFile, UndoFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := batch.NewParserOptions(f, targets, batch.ParseOptions{})
		if err != nil {
			t.Fatalf("%s does not parse: %v", name, err)
		}
		if p.Header().Names[0] != "target" {
			t.Errorf("%s: first column read as %q", name, p.Header().Names[0])
		}
		row, err := p.Next()
		p.Close()
		f.Close()
		if err != nil || !row.Valid() || row.Op.User != rec[1] || field(row.Record, 3) != rec[3] {
			t.Errorf("%s read back as %+v, %v: want user %q and name %q", name, row, err, rec[1], rec[3])
		}
	}
}

func TestSummaryTakesWhatTheCallerKnows(t *testing.T) {
	start := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name                string
		run                 Run
		wantExit            ExitCode
		wantSent            int
		wantOps             float64
		wantProcs           int
		wantDurationSeconds float64
	}{
		// A file refused for invalid rows exits 2, whatever the outcomes say.
		{"refused", Run{StartedAt: start, FinishedAt: start, ExitCode: ExitBadInput}, ExitBadInput, 4, 0, 1, 0},
		{"computed", Run{StartedAt: start, FinishedAt: start.Add(4 * time.Second)}, ExitIncomplete, 4, 1, 1, 4},
		{"stopped", Run{StartedAt: start, FinishedAt: start.Add(4 * time.Second), Stopped: true}, ExitStopped, 4, 1, 1, 4},
		// A resume: the rate is over the whole run, from the first process's start.
		{"resumed", Run{StartedAt: start, FinishedAt: start.Add(100 * time.Second), Processes: 3}, ExitIncomplete, 4, 0.04, 3, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, dir := create(t, header("target", "user", "action"))
			for i := range 5 {
				res := batch.Result{Outcome: batch.Applied, Attempts: 1, Writes: 1}
				if i == 4 {
					res = batch.Result{Outcome: batch.Invalid}
				}
				write(t, w, batch.Row{Line: i + 2}, res)
			}
			s, err := w.Close(c.run)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			readJSON(t, filepath.Join(dir, SummaryFile), &got)
			if got["exit_code"] != float64(c.wantExit) || s.ExitCode != c.wantExit {
				t.Errorf("exit_code %v (returned %d), want %d", got["exit_code"], s.ExitCode, c.wantExit)
			}
			if got["sent"] != float64(c.wantSent) || got["ops_per_s"] != c.wantOps || got["processes"] != float64(c.wantProcs) ||
				got["duration_s"] != c.wantDurationSeconds {
				t.Errorf("sent %v, ops_per_s %v, processes %v, duration_s %v; want %d, %v, %d, %v",
					got["sent"], got["ops_per_s"], got["processes"], got["duration_s"], c.wantSent, c.wantOps, c.wantProcs, c.wantDurationSeconds)
			}
			if !strings.HasPrefix(got["started_at"].(string), "2024-03-01T10:00:00") {
				t.Errorf("started_at %v, want the run's as given", got["started_at"])
			}
			// The returned summary marshals to what summary.json holds, for a
			// caller that logs it as one JSON value.
			raw, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var again map[string]any
			if err := json.Unmarshal(raw, &again); err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(again)
			b, _ := json.Marshal(got)
			if !bytes.Equal(a, b) {
				t.Errorf("json.Marshal(summary) = %s\nsummary.json      = %s", a, b)
			}
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, raw)
	}
}
