// Command userbatch applies bulk user status and role changes from a CSV
// across vendors' admin APIs, and writes a report that accounts for every row.
package main

import (
	"os"
	_ "time/tzdata" // --tz works on machines without a zone database
)

func main() { os.Exit(runMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
