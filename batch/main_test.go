package batch

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestMain runs the garbage collector as the binary sets it (README
// "Performance": the heap may grow to five times what is live): the
// parsing and journal tests make garbage by the megabyte, and collecting it
// at go test's default was 40% of this package's CPU.
func TestMain(m *testing.M) {
	debug.SetGCPercent(400)
	os.Exit(m.Run())
}
