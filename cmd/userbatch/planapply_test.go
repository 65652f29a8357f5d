package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplyRefusesEditedPlan: a reviewer strikes a row from plan.csv, or
// edits plan.json; apply refuses (exit 2), sends nothing, and says how to
// leave rows out. The plan as written applies.
func TestApplyRefusesEditedPlan(t *testing.T) {
	e := newE2E(t)
	in, users := e.kiiUsers(6, 0)
	planDir := filepath.Join(e.dir, "plan")
	if res := e.run("plan", "-c", e.cfg, "-o", planDir, in); res.code != exitOK {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	planCSV := filepath.Join(planDir, "plan.csv")
	planJSON := filepath.Join(planDir, "plan.json")
	origCSV, err := os.ReadFile(planCSV)
	if err != nil {
		t.Fatal(err)
	}
	origJSON, err := os.ReadFile(planJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(origJSON), `"would_change": 6`) {
		t.Fatalf("plan.json does not hold would_change 6:\n%s", origJSON)
	}
	lines := strings.SplitAfter(string(origCSV), "\n")
	struck := strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), "")
	edits := map[string]struct{ path, content string }{
		"a row struck from plan.csv":  {planCSV, struck},
		"a count edited in plan.json": {planJSON, strings.Replace(string(origJSON), `"would_change": 6`, `"would_change": 5`, 1)},
	}
	for name, ed := range edits {
		if err := os.WriteFile(ed.path, []byte(ed.content), 0o600); err != nil {
			t.Fatal(err)
		}
		res := e.run("apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "a-"+strings.Fields(name)[1]), planDir)
		if res.code != exitBadInput {
			t.Errorf("%s: exit %d, want 2\n%s", name, res.code, res.stderr)
		}
		for _, want := range []string{"differs from what userbatch plan wrote", "remove them from the input file", "run userbatch plan again"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", name, want, res.stderr)
			}
		}
		if n := e.kiiWrites(users); n != 0 {
			t.Fatalf("%s: a refused apply sent %d writes", name, n)
		}
		_ = os.WriteFile(planCSV, origCSV, 0o600)
		_ = os.WriteFile(planJSON, origJSON, 0o600)
	}
	res := e.run("apply", "-c", e.cfg, "-o", filepath.Join(e.dir, "applied"), planDir)
	if res.code != exitOK {
		t.Fatalf("the plan as written: exit %d\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 6 {
		t.Errorf("%d writes, want 6", n)
	}
}
