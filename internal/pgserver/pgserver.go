// Package pgserver lets the tests of several packages share the machine's
// one PostgreSQL test server (README, first section): go test runs packages
// at once, and a test that stops the server, as an operator's restart does,
// must not do so under another package's test.
package pgserver

import (
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/userbatch/userbatch/internal/testcache"
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
func hold(t testing.TB, how int) {
	t.Helper()
	dir, err := testcache.Dir()
	if err != nil {
		t.Fatalf("locking the PostgreSQL test server: %v", err)
	}
	f, err := testcache.Lock(filepath.Join(dir, "postgres.lock"), how)
	if err != nil {
		t.Fatalf("locking the PostgreSQL test server: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing the file gives the lock back
}
