package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/batch"
)

// TestAlreadyAfterInterruptionGoesToCheck: an already row whose change may
// or may not be this run's is in check.csv with its reason, and in neither
// undo.csv nor failed.csv; a plain already row is in none of them.
func TestAlreadyAfterInterruptionGoesToCheck(t *testing.T) {
	h := header("target", "user", "action", "role")
	w, dir := create(t, h)
	unsure := []string{"shop", "u1", "upgrade-role", "Member"}
	plain := []string{"shop", "u2", "upgrade-role", "Member"}
	write(t, w, batch.Row{Line: 2, Record: unsure}, batch.Result{Target: "shop", User: "u1", Action: batch.UpgradeRole,
		Outcome: batch.Already, Detail: batch.AlreadyAfterInterruption})
	write(t, w, batch.Row{Line: 3, Record: plain}, batch.Result{Target: "shop", User: "u2", Action: batch.UpgradeRole,
		Outcome: batch.Already, Detail: "the vendor says the user already is in this state"})
	s := closeRun(t, w)
	check := readCSV(t, filepath.Join(dir, CheckFile))
	if len(check) != 2 || check[1][1] != "u1" {
		t.Fatalf("check.csv = %q, want u1 alone", check)
	}
	reason := check[1][len(check[1])-1]
	if CheckLine(reason) != 2 || !strings.Contains(reason, "whether this run made the change is not known") || !strings.Contains(reason, "not in undo.csv") {
		t.Errorf("reason %q", reason)
	}
	for _, f := range []string{UndoFile, FailedFile} {
		if got := readCSV(t, filepath.Join(dir, f)); len(got) != 1 {
			t.Errorf("%s = %q, want the header alone", f, got)
		}
	}
	if s.FileRows.Check != 1 || s.FileRows.Undo != 0 || s.Outcomes[batch.Already] != 2 {
		t.Errorf("summary: files %+v, outcomes %v", s.FileRows, s.Outcomes)
	}
	// report.html's "Check by hand" lists what check.csv lists.
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<tr class="check"><td>2</td>`) || strings.Contains(string(page), `<tr class="check"><td>3</td>`) {
		t.Errorf("report.html's check rows do not list line 2 alone")
	}
}
