// Package memtmp moves a test process's temporary directory into memory
// (README, first section): the tests' journals, ledgers and reports are
// synced to disk many times a run, and on a disk those syncs, not the code
// under test, decide how long the suite takes. Nothing a test asserts
// depends on the disk: a killed process (kill -9) loses what it had not
// written, not what it had not synced.
package memtmp

import (
	"os"
	"syscall"
)

// shm is where Linux keeps a memory file system for every user.
const shm = "/dev/shm"

// minFree is the room the tests need; a container's small /dev/shm (64 MiB
// by default) is left alone.
const minFree = 1 << 30

// Use points TMPDIR, for this process and the programs it starts, at a new
// directory in memory when there is room, and returns what removes it. Call
// it first thing in TestMain; without room it changes nothing.
func Use() (cleanup func()) {
	var st syscall.Statfs_t
	if syscall.Statfs(shm, &st) != nil || st.Bavail*uint64(st.Bsize) < minFree {
		return func() {}
	}
	dir, err := os.MkdirTemp(shm, "userbatch-test-")
	if err != nil {
		return func() {}
	}
	old, had := os.LookupEnv("TMPDIR")
	if os.Setenv("TMPDIR", dir) != nil {
		os.Remove(dir)
		return func() {}
	}
	return func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
		os.RemoveAll(dir)
	}
}
