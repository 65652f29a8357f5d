package job

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/reports"
)

// fixture is a kii and a clearsquare fake on loopback, a config for them,
// and an input file.
type fixture struct {
	t     *testing.T
	dir   string
	kii   *kiitest.Server
	cs    *clearsquaretest.Server
	cfg   *config.Config
	input string
}

const rowsCSV = "target,user,action\napps,k1,disable\napps,k2,disable\nadmin,c1,toggle-status\nadmin,c2,toggle-status\n"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.kii = kiitest.New(kiitest.Options{AppID: "app1", Token: "kt", AutoCreate: true})
	f.cs = clearsquaretest.New(clearsquaretest.Options{Token: "ct", AutoCreate: true})
	ks := httptest.NewServer(f.kii)
	cs := httptest.NewServer(f.cs)
	t.Cleanup(ks.Close)
	t.Cleanup(cs.Close)
	yml := fmt.Sprintf("targets:\n  apps:\n    vendor: kii\n    base_url: %s\n    app_id: app1\n    token: kt\n    rate: 1000\n"+
		"  admin:\n    vendor: clearsquare\n    base_url: %s\n    token: ct\n    rate: 1000\n", ks.URL, cs.URL)
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.input = filepath.Join(f.dir, "ops.csv")
	if err := os.WriteFile(f.input, []byte(rowsCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) options(out string) Options {
	return Options{Args: Args{Config: f.cfg, Input: f.input, ReportDir: out, Grace: time.Second}, Log: zerolog.Nop()}
}

// journal writes a journal for the input as a process that died would have
// left it: a header, a start, and records.
func (f *fixture) journal(out string, records ...string) {
	f.t.Helper()
	in, err := openInputWith(f.input, nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	h := batch.JournalHeader{Type: "header", Version: 1, InputSHA256: in.sha256, Targets: f.cfg.Names(),
		ConfigSHA256: f.cfg.Fingerprint(), CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	hb, _ := json.Marshal(h)
	lines := []string{string(hb), `{"type":"run","started_at":"2026-01-02T03:04:05Z"}`}
	if err := os.MkdirAll(out, 0o700); err != nil {
		f.t.Fatal(err)
	}
	content := strings.Join(append(lines, records...), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(out, batch.JournalName), []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func intent(i, line int, target, user string, a batch.Action) string {
	return fmt.Sprintf(`{"type":"intent","i":%d,"line":%d,"target":%q,"user":%q,"action":%q,"attempts":0,"attempt":1}`, i, line, target, user, a)
}

func readReport(t *testing.T, dir, name string) []map[string]string {
	t.Helper()
	fh, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	recs, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, n := range recs[0] {
			m[n] = rec[i]
		}
		rows = append(rows, m)
	}
	return rows
}

// TestResumeAfterCrash is the rule that matters most: a write a dead
// process may have sent is sent again only when repeating it is harmless.
// The toggle in flight ends unknown in check.csv, unsent; the kii disable in
// flight, which had arrived, is read back and counted as this run's change,
// with its undo row; the rows never started are sent once.
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out := filepath.Join(f.dir, "report")
	// The dead process had disabled k1 (the answer was lost) and may have
	// toggled c1.
	f.kii.AddUser("k1", kiitest.User{Disabled: true})
	f.journal(out, intent(0, 2, "apps", "k1", batch.Disable), intent(2, 4, "admin", "c1", batch.ToggleStatus))

	o := f.options(out)
	o.Resume = true
	err := Run(context.Background(), o)
	if Exit(err) != reports.ExitIncomplete {
		t.Fatalf("exit %d (%v), want 1: the toggle in flight is unknown", Exit(err), err)
	}
	if n := f.cs.Writes("c1"); n != 0 {
		t.Errorf("the toggle in flight was sent again (%d times)", n)
	}
	if n := f.cs.Writes("c2"); n != 1 {
		t.Errorf("c2 toggled %d times, want 1", n)
	}
	if n := f.kii.Writes("k1"); n != 0 {
		t.Errorf("k1, found disabled, was written %d times", n)
	}
	rows := readReport(t, out, reports.ReportFile)
	want := map[string]batch.Outcome{"k1": batch.Applied, "k2": batch.Applied, "c1": batch.Unknown, "c2": batch.Applied}
	for _, r := range rows {
		if r["outcome"] != string(want[r["user"]]) {
			t.Errorf("%s: outcome %s (%s), want %s", r["user"], r["outcome"], r["detail"], want[r["user"]])
		}
	}
	check := readReport(t, out, reports.CheckFile)
	if len(check) != 1 || check[0]["user"] != "c1" {
		t.Errorf("check.csv = %v, want c1 alone", check)
	}
	for _, r := range readReport(t, out, reports.FailedFile) {
		if r["user"] == "c1" {
			t.Error("the toggle in flight is in failed.csv: re-running it blindly would toggle it back")
		}
	}
	undo := map[string]bool{}
	for _, r := range readReport(t, out, reports.UndoFile) {
		undo[r["user"]] = true
	}
	if !undo["k1"] || !undo["k2"] || !undo["c2"] || undo["c1"] {
		t.Errorf("undo.csv covers %v, want k1, k2 and c2", undo)
	}
	sum := readSummaryFile(t, out)
	if sum["started_at"] != "2026-01-02T03:04:05Z" || sum["processes"] != float64(2) {
		t.Errorf("started_at %v processes %v: a resumed run's summary covers the whole run", sum["started_at"], sum["processes"])
	}
}

func readSummaryFile(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, reports.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReportWriteFailure: when the report cannot be written the run says
// so and exits 3; a resume writes it without sending anything twice.
func TestReportWriteFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out := filepath.Join(f.dir, "report")
	o := f.options(out)
	o.createReport = func(string, batch.Header, reports.Options) (*reports.Writer, error) {
		return nil, errors.New("disk full")
	}
	err := Run(context.Background(), o)
	if Exit(err) != reports.ExitStopped || !strings.Contains(err.Error(), "writing the report: disk full") || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("exit %d: %v", Exit(err), err)
	}
	o = f.options(out)
	o.Resume = true
	if err := Run(context.Background(), o); Exit(err) != reports.ExitOK {
		t.Fatalf("resume: exit %d: %v", Exit(err), err)
	}
	for _, u := range []string{"c1", "c2"} {
		if n := f.cs.Writes(u); n != 1 {
			t.Errorf("%s toggled %d times, want 1", u, n)
		}
	}
	if rows := readReport(t, out, reports.ReportFile); len(rows) != 4 {
		t.Errorf("report has %d rows", len(rows))
	}
}

// TestLockRefusesASecondProcess: while one run holds a report directory,
// another is refused at once, naming the holder, and sends nothing.
func TestLockRefusesASecondProcess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out := filepath.Join(f.dir, "report")
	l, err := LockDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	err = Run(context.Background(), f.options(out))
	if Exit(err) != reports.ExitBadInput || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("exit %d: %v", Exit(err), err)
	}
	if f.cs.Writes("c1")+f.kii.Writes("k1") != 0 {
		t.Error("a refused run sent requests")
	}
	if _, err := os.Stat(filepath.Join(out, batch.JournalName)); !os.IsNotExist(err) {
		t.Errorf("a refused run touched the directory: %v", err)
	}
}
