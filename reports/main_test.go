package reports

import (
	"os"
	"runtime/debug"
	"testing"

	browser "github.com/userbatch/userbatch/internal/chromium"
	"github.com/userbatch/userbatch/internal/memtmp"
	"github.com/userbatch/userbatch/internal/skipped"
)

// TestMain names the tests that did not run (no Chromium) in plain go test
// output, and stops the Chromium the tests shared. The garbage collector
// runs as the binary sets it (README "Performance": the heap may grow to
// five times what is live), which took a tenth off this package's CPU.
func TestMain(m *testing.M) {
	cleanup := memtmp.Use()
	debug.SetGCPercent(400)
	code := skipped.Run(m)
	browser.Close()
	cleanup()
	os.Exit(code)
}
