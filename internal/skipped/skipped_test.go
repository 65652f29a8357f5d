package skipped

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkippedTestsAreNamed: plain `go test` (no -v) on a package with a
// skipped test names it and why, every time: a cached result would hide it.
func TestSkippedTestsAreNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test twice")
	}
	for run := range 2 {
		cmd := exec.Command("go", "test", "./testdata/skipper")
		cmd.Env = append(os.Environ(), "CI=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go test: %v\n%s", err, out)
		}
		for _, want := range []string{"NOT RUN in ./internal/skipped/testdata/skipper (1 test skipped",
			"SKIPPED TestNeedsAServer: no server here: this test was NOT run"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("run %d: the output lacks %q:\n%s", run+1, want, out)
			}
		}
		if strings.Contains(string(out), "TestRuns") || strings.Contains(string(out), "(cached)") {
			t.Errorf("run %d: want only the skipped test named, and no cached result:\n%s", run+1, out)
		}
	}
}
