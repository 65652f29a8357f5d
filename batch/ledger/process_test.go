package ledger

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/internal/skipped"
)

// The child side of TestSQLiteTwoProcesses: with these set, the test binary
// claims processKeys keys in the named ledger and prints the users it won.
const (
	childDSN = "USERBATCH_LEDGER_CHILD_DSN"
	childRun = "USERBATCH_LEDGER_CHILD_RUN"
)

const processKeys = 200

func TestMain(m *testing.M) {
	if dsn := os.Getenv(childDSN); dsn != "" {
		os.Exit(claimAsChild(dsn, os.Getenv(childRun)))
	}
	os.Exit(skipped.Run(m))
}

func claimAsChild(dsn, run string) int {
	ctx := context.Background()
	l, err := Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Close()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for k := range processKeys {
		e := entry(fmt.Sprintf("user-%d", k), batch.ToggleStatus, run)
		prev, err := l.Claim(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if prev == nil {
			fmt.Fprintln(w, e.User)
		}
	}
	return 0
}

// TestSQLiteTwoProcesses: two processes claim the same keys in one SQLite
// file at once (SQLite's locks between processes differ from those between
// connections of one process); each key is won exactly once.
func TestSQLiteTwoProcesses(t *testing.T) {
	dsn := sqliteStore(t)
	mustOpen(t, dsn) // migrate once, so both children race on claims alone
	var outs [2]bytes.Buffer
	var cmds [2]*exec.Cmd
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childDSN+"="+dsn, fmt.Sprintf("%s=run-%d", childRun, i))
		cmd.Stdout, cmd.Stderr = &outs[i], os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	wins := map[string]int{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		for _, u := range strings.Fields(outs[i].String()) {
			wins[u]++
		}
	}
	for k := range processKeys {
		if u := fmt.Sprintf("user-%d", k); wins[u] != 1 {
			t.Errorf("%s won %d times, want once", u, wins[u])
		}
	}
}
