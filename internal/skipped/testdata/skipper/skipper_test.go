// Package skipper is TestSkippedTestsAreNamed's fixture: one test that
// runs, one that skips as a test missing PostgreSQL does.
package skipper

import (
	"os"
	"testing"

	"github.com/userbatch/userbatch/internal/skipped"
)

func TestMain(m *testing.M) { os.Exit(skipped.Run(m)) }

func TestRuns(t *testing.T) {}

func TestNeedsAServer(t *testing.T) {
	skipped.Skip(t, "no server here: this test was NOT run")
}
