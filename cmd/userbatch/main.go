// Command userbatch applies bulk user status and role changes from a CSV
// across vendors' admin APIs, and writes a report that accounts for every row.
package main

import (
	"os"
	"runtime/debug"
	_ "time/tzdata" // --tz works on machines without a zone database
)

func main() {
	tuneGC()
	os.Exit(runMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// The garbage collector's settings unless the operator sets GOGC or
// GOMEMLIMIT: the heap may grow to five times what is live, under a soft
// ceiling of gcCeiling. A run's live heap is small and flat, so this trades
// memory it stays well within (README "Performance": 1M rows ≤ 64 MiB) for
// CPU a row spent collecting.
const (
	gcPercent = 400
	gcCeiling = 48 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(gcCeiling)
}
