package reports

import (
	"os"
	"testing"

	"github.com/userbatch/userbatch/internal/skipped"
)

// TestMain names the tests that did not run (no Chromium) in plain go test
// output.
func TestMain(m *testing.M) { os.Exit(skipped.Run(m)) }
