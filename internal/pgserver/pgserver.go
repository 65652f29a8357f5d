// Package pgserver lets the tests of several packages share the machine's
// one PostgreSQL test server (README, first section): go test runs packages
// at once, and a test that stops the server, as an operator's restart does,
// must not do so under another package's test.
package pgserver

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

var (
	mu    sync.Mutex
	owned bool // this process holds the server alone
)

// Share holds the server for t, with the other tests that share it, until t
// ends: a test that owns it waits. Inside a test that owns it, it does
// nothing.
func Share(t testing.TB) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !owned {
		hold(t, syscall.LOCK_SH)
	}
}

// Own holds the server for t alone until t ends, once every test that
// shares it, in any package, has ended. Call it before anything else that
// reaches the server, so that t's other cleanups (a restart) run first.
func Own(t testing.TB) {
	t.Helper()
	hold(t, syscall.LOCK_EX)
	mu.Lock()
	owned = true
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		owned = false
		mu.Unlock()
	})
}

// hold takes the lock file in the mode given and gives it back when t ends.
// The file lives in the user's cache directory, which every test process
// sees the same, whatever its temporary directory.
func hold(t testing.TB, how int) {
	t.Helper()
	dir, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("locking the PostgreSQL test server: %v", err)
	}
	dir = filepath.Join(dir, "userbatch-test")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("locking the PostgreSQL test server: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "postgres.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("locking the PostgreSQL test server: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("locking the PostgreSQL test server: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing the file gives the lock back
}
