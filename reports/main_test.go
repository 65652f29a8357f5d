package reports

import (
	"os"
	"testing"

	browser "github.com/userbatch/userbatch/internal/chromium"
	"github.com/userbatch/userbatch/internal/memtmp"
	"github.com/userbatch/userbatch/internal/skipped"
)

// TestMain names the tests that did not run (no Chromium) in plain go test
// output, and stops the Chromium the tests shared.
func TestMain(m *testing.M) {
	cleanup := memtmp.Use()
	code := skipped.Run(m)
	browser.Close()
	cleanup()
	os.Exit(code)
}
