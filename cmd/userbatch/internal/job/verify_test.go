package job

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/reports"
)

// verifyRun runs input (its rows for the fixture's targets) into out with
// cfg, and returns the options a verify of it takes.
func (f *fixture) verifyRun(cfg *config.Config, input, out string, excel bool) VerifyOptions {
	f.t.Helper()
	f.input = filepath.Join(f.dir, "verify-ops.csv")
	if err := os.WriteFile(f.input, []byte(input), 0o600); err != nil {
		f.t.Fatal(err)
	}
	o := f.options(out)
	o.Config, o.Excel = cfg, excel
	if err := Run(context.Background(), o); err != nil && Exit(err) != reports.ExitIncomplete {
		f.t.Fatalf("run: %v", err)
	}
	return VerifyOptions{Config: cfg, ReportDir: out, Log: zerolog.Nop()}
}

// TestVerifyReadsNeutralisedCellsAndKeepsExcel: a user id a spreadsheet
// would take for a formula is written '-k1 in report.csv; verify reads the
// user -k1 (the kii fake would make a new, enabled "'-k1" on a GET) and
// writes it neutralised again, with the byte order mark an --excel report
// has.
func TestVerifyReadsNeutralisedCellsAndKeepsExcel(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.dir, "report")
	vo := f.verifyRun(f.cfg, "target,user,action\napps,-k1,disable\napps,=k2,disable\n", out, true)
	if err := Verify(context.Background(), vo); err != nil {
		t.Fatalf("verify: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(out, VerifyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), reports.UTF8BOM+"line,target,user,") {
		t.Errorf("verify.csv of an --excel report should start with a byte order mark: %q", b[:min(len(b), 20)])
	}
	for _, want := range []string{"2,apps,'-k1,disable,applied,disabled,ok", "3,apps,'=k2,disable,applied,disabled,ok"} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("verify.csv lacks %q:\n%s", want, b)
		}
	}
	if _, made := f.kii.User("'-k1"); made {
		t.Error(`verify read the user "'-k1": the report's neutralising quote was taken as part of the id`)
	}
}

// TestVerifyUnreadableAndProtected: a read that fails makes an applied row
// unreadable; a protected user's skipped row is still read (reading takes
// nothing away), and is ok.
func TestVerifyUnreadableAndProtected(t *testing.T) {
	f := newFixture(t)
	cfg := f.withKeys(t, "apps", "    protected: [k3]\n")
	out := filepath.Join(f.dir, "report")
	vo := f.verifyRun(cfg, "target,user,action\napps,k1,disable\napps,k2,disable\napps,k3,disable\n", out, false)
	f.kii.Faults.Add(fakehttp.Rule{User: "k2", Method: http.MethodGet, Fault: fakehttp.Fault{Status: http.StatusBadRequest,
		Body: `{"errorCode":"INVALID_INPUT_DATA","message":"the request could not be read"}`}})
	if err := Verify(context.Background(), vo); err != nil {
		t.Fatalf("verify: exit %d: %v (unreadable is not drift)", Exit(err), err)
	}
	rows := readReport(t, out, VerifyFile)
	want := map[string][2]string{ // verdict, state_now (contains)
		"k1": {VerdictOK, "disabled"},
		"k2": {VerdictUnreadable, "(not read: the read failed (validation)"},
		"k3": {VerdictOK, "enabled"},
	}
	for _, r := range rows {
		w := want[r["user"]]
		if r["verdict"] != w[0] || !strings.Contains(r["state_now"], w[1]) {
			t.Errorf("%s (%s): verdict %q state_now %q, want %v", r["user"], r["outcome"], r["verdict"], r["state_now"], w)
		}
	}
	if rows[2]["outcome"] != string(batch.Skipped) {
		t.Errorf("k3 is protected: the run should have skipped it, got %s", rows[2]["outcome"])
	}
}

// withKeys is the fixture's config with lines added under one target.
func (f *fixture) withKeys(t *testing.T, target, lines string) *config.Config {
	t.Helper()
	kii := f.cfg.Targets["apps"].BaseURL
	cs := f.cfg.Targets["admin"].BaseURL
	yml := fmt.Sprintf("targets:\n  apps:\n    vendor: kii\n    base_url: %s\n    app_id: app1\n    token: kt\n    rate: 1000\n"+
		"  admin:\n    vendor: clearsquare\n    base_url: %s\n    token: ct\n    rate: 1000\n", kii, cs)
	yml = strings.Replace(yml, "  "+target+":\n", "  "+target+":\n"+lines, 1)
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestVerifyRefusesADirectoryInUse: a run, resume or verify holding the
// directory's lock refuses a verify at once.
func TestVerifyRefusesADirectoryInUse(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.dir, "report")
	vo := f.verifyRun(f.cfg, rowsCSV, out, false)
	l, err := LockExistingDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	reads := f.kii.Requests()
	err = Verify(context.Background(), vo)
	if Exit(err) != reports.ExitBadInput || !strings.Contains(err.Error(), "in use by another userbatch process") {
		t.Fatalf("exit %d: %v", Exit(err), err)
	}
	if f.kii.Requests() != reads {
		t.Error("a refused verify read users")
	}
}

// TestVerifyStoppedWritesNothing: a signal (its context ended) ends a verify with exit 3 and
// no verify.csv, not even a partial one. The reads hang until it comes.
func TestVerifyStoppedWritesNothing(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.dir, "report")
	vo := f.verifyRun(f.cfg, rowsCSV, out, false)
	f.kii.Faults.Add(fakehttp.Rule{Method: http.MethodGet, Fault: fakehttp.Fault{Delay: time.Minute}})
	ctx, cancel := context.WithCancel(context.Background()) // main ends it on a signal
	cancel()
	err := Verify(ctx, vo)
	if Exit(err) != reports.ExitStopped || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("exit %d: %v", Exit(err), err)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.Contains(e.Name(), VerifyFile) {
			t.Errorf("a stopped verify left %s", e.Name())
		}
	}
}

// TestReadOnlyRefusesWrites: the adapter a verify reads through refuses a
// write without passing it on, whatever the pipeline asks.
func TestReadOnlyRefusesWrites(t *testing.T) {
	inner := &countingAdapter{}
	a := readOnly{Adapter: inner, reader: inner, states: &stateLog{m: map[int]batch.State{}}}
	_, err := a.Apply(context.Background(), batch.Op{Action: batch.Disable})
	if err == nil || inner.applies != 0 {
		t.Fatalf("Apply through a verify's adapter: err %v, %d writes passed on", err, inner.applies)
	}
	st, err := a.Read(context.Background(), batch.Op{Index: 7, Action: batch.Disable})
	if err != nil || !st.InState {
		t.Fatalf("Read: %+v %v", st, err)
	}
	if got, ok := a.states.take(7); !ok || got.Current != "disabled" {
		t.Errorf("the state read was not kept: %+v %v", got, ok)
	}
}

type countingAdapter struct{ applies int }

func (c *countingAdapter) Supports(batch.Action) bool   { return true }
func (c *countingAdapter) Idempotent(batch.Action) bool { return true }
func (c *countingAdapter) Apply(context.Context, batch.Op) (batch.Reply, error) {
	c.applies++
	return batch.Reply{}, nil
}
func (c *countingAdapter) Read(context.Context, batch.Op) (batch.State, error) {
	return batch.State{InState: true, Current: "disabled"}, nil
}

// TestVerifySinkRefusesIntents: should the pipeline ever ask to write
// during a verify, the sink ends the run before the request.
func TestVerifySinkRefusesIntents(t *testing.T) {
	s := &verifySink{}
	if err := s.Intent(batch.Op{Line: 4}, 1); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("Intent: %v", err)
	}
}
