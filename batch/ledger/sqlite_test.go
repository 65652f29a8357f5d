package ledger

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/userbatch/userbatch/batch"
)

func sqliteStore(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "ledger.db")
}

func TestSQLiteConformance(t *testing.T) {
	runConformance(t, sqliteStore)
}

func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "userbatch")
	path := filepath.Join(dir, "ledger.db")
	l := mustOpen(t, "sqlite:"+path)
	e := entry("alice", batch.Disable, "run-a")
	e.Outcome = batch.Applied
	if err := l.Done(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
}

// TestSQLiteSettings: every pooled connection is in WAL with synchronous=FULL
// (a Done that returned survives a power loss) and waits for a busy writer.
func TestSQLiteSettings(t *testing.T) {
	l := mustOpen(t, sqliteStore(t)).(*sqlLedger)
	ctx := context.Background()
	// Hold several connections at once, so the pool opens more than one.
	var conns []interface{ Close() error }
	for range 3 {
		c, err := l.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var sync, busy int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 2 || busy != int(sqliteBusyTimeout.Milliseconds()) {
			t.Errorf("connection: journal_mode %s, synchronous %d, busy_timeout %d; want wal, 2 (FULL), %d",
				mode, sync, busy, sqliteBusyTimeout.Milliseconds())
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestSQLiteOddPath: a path with characters a URI gives meaning to.
func TestSQLiteOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#y", "led%20ger.db")
	l := mustOpen(t, "sqlite:"+path)
	mustClaim(t, l, entry("alice", batch.Disable, "run-a"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the ledger is not at the path given: %v", err)
	}
}

// SQLite keeps text that is not UTF-8, or holds a NUL, as given; Apply
// must too, though JSON (the bulk statements' argument) cannot carry it.
func TestSQLiteApplyKeepsBytes(t *testing.T) {
	applyKeepsText(t, mustOpen(t, sqliteStore(t)), "caf\xe9", "a\x00b", "ok")
}
