// Package testcache is where tests keep what outlives one test process
// (the binary they build, the lock on the shared PostgreSQL server): the
// user's cache directory, which every test process sees the same, whatever
// its temporary directory.
package testcache

import (
	"os"
	"path/filepath"
	"syscall"
)

// Dir returns the folder sub below the tests' cache directory, created.
func Dir(sub ...string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(append([]string{cache, "userbatch-test"}, sub...)...)
	return dir, os.MkdirAll(dir, 0o700)
}

// Lock opens the file at path, creating it, and takes its flock in mode how
// (syscall.LOCK_SH or LOCK_EX), waiting for it. Closing the file gives the
// lock back.
func Lock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
