package ledger

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/internal/memtmp"
	"github.com/userbatch/userbatch/internal/skipped"
)

// The child side of TestSQLiteTwoProcesses: with these set, the test binary
// claims processKeys keys in the named ledger and prints the users it won.
const (
	childDSN = "USERBATCH_LEDGER_CHILD_DSN"
	childRun = "USERBATCH_LEDGER_CHILD_RUN"
	// childBatched: the child claims through a Batcher, as a run does,
	// every key expected ahead, in the order the value names.
	childBatched = "USERBATCH_LEDGER_CHILD_BATCHED"
)

const processKeys = 200

func TestMain(m *testing.M) {
	if dsn := os.Getenv(childDSN); dsn != "" {
		os.Exit(runChild(dsn, os.Getenv(childRun), os.Getenv(childBatched)))
	}
	cleanup := memtmp.Use()
	code := skipped.Run(m)
	cleanup()
	os.Exit(code)
}

// runChild claims processKeys keys in the ledger at dsn, one Claim each,
// or through a Batcher when batched ("up" or "down": the order of the
// keys), and prints the users it won.
func runChild(dsn, run, batched string) int {
	ctx := context.Background()
	l, err := Open(ctx, dsn)
	if err == nil {
		defer l.Close()
		w := bufio.NewWriter(os.Stdout)
		defer w.Flush()
		if batched == "" {
			err = claimEach(ctx, l, w, run)
		} else {
			err = claimBatched(ctx, l, w, run, batched == "down")
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func claimEach(ctx context.Context, l Ledger, w io.Writer, run string) error {
	for k := range processKeys {
		e := entry(fmt.Sprintf("user-%d", k), batch.ToggleStatus, run)
		prev, err := l.Claim(ctx, e)
		if err != nil {
			return err
		}
		if prev == nil {
			fmt.Fprintln(w, e.User)
		}
	}
	return nil
}

// claimBatched claims as a run at one worker does (down: from the last
// key), and records each key it won done.
func claimBatched(ctx context.Context, l Ledger, w io.Writer, run string, down bool) error {
	b := NewBatcher(l, ClaimBatch, MaxClaimBatch, time.Now)
	key := func(i int) string {
		if down {
			i = processKeys - 1 - i
		}
		return fmt.Sprintf("user-%d", i)
	}
	for i := range processKeys {
		b.Expect(i, entry(key(i), batch.ToggleStatus, run), true)
	}
	for i := range processKeys {
		e := entry(key(i), batch.ToggleStatus, run)
		prev, err := b.Claim(ctx, i, e)
		if err != nil {
			return err
		}
		if prev != nil {
			b.Leave(i)
			continue
		}
		fmt.Fprintln(w, e.User)
		e.Outcome = batch.Applied
		if err := b.Done(i, e); err != nil {
			return err
		}
	}
	return b.Close(ctx)
}

// TestSQLiteTwoProcesses: two processes claim the same keys in one SQLite
// file at once (SQLite's locks between processes differ from those between
// connections of one process); each key is won exactly once.
func TestSQLiteTwoProcesses(t *testing.T) {
	twoProcesses(t, sqliteStore(t), "", "")
}

// TestSQLiteTwoProcessesBatched: two processes claim overlapping batches
// of the same keys (one from each end) through their Batchers at once;
// each key is won, and recorded done, exactly once.
func TestSQLiteTwoProcessesBatched(t *testing.T) {
	twoProcesses(t, sqliteStore(t), "up", "down")
}

// TestPostgresTwoProcessesBatched is TestSQLiteTwoProcessesBatched on
// PostgreSQL.
func TestPostgresTwoProcessesBatched(t *testing.T) {
	twoProcesses(t, postgresStore(t), "up", "down")
}

// twoProcesses runs two children claiming processKeys keys in the store
// at dsn at once (batched: through a Batcher, in the direction given) and
// checks that each key was won once.
func twoProcesses(t *testing.T, dsn string, batched ...string) {
	l := mustOpen(t, dsn) // migrate once, so both children race on claims alone
	var outs [2]bytes.Buffer
	var cmds [2]*exec.Cmd
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childDSN+"="+dsn, fmt.Sprintf("%s=run-%d", childRun, i), childBatched+"="+batched[i])
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
	if batched[0] == "" {
		return
	}
	for _, e := range history(t, l, Filter{}) {
		if e.State != Done {
			t.Errorf("%s: %s by %s, want done by its winner", e.User, e.State, e.RunID)
		}
	}
}
