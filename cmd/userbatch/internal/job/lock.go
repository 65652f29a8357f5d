package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockName is the lock file in a report directory.
const LockName = ".userbatch.lock"

// Lock is a report directory held by this process: another userbatch
// process (a pod restarted while the old one lingers, a second terminal)
// is refused at once instead of truncating a live journal.
type Lock struct {
	f    *os.File
	path string
	// made records what taking the lock created, for Abandon.
	madeDir, madeFile bool
}

// LockDir takes dir's lock, creating dir (0700) if needed. A directory
// held by another process is refused with who holds it.
func LockDir(dir string) (*Lock, error) {
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	l, err := lockIn(dir)
	if err == nil && os.IsNotExist(statErr) {
		l.madeDir = true
	}
	return l, err
}

// LockExistingDir takes the lock of a directory that must exist already.
func LockExistingDir(dir string) (*Lock, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return lockIn(dir)
}

func lockIn(dir string) (*Lock, error) {
	path := filepath.Join(dir, LockName)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another userbatch process (%s): wait for it to end, or stop it, before running again", dir, holder)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	host, _ := os.Hostname()
	note := fmt.Sprintf("pid %d on %s, since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(note+"\n"), 0)
	}
	return &Lock{f: f, path: path, madeFile: os.IsNotExist(statErr)}, nil
}

// Abandon releases the lock of a directory the run refused before
// writing anything, and removes what taking the lock created there: a
// refused run leaves the operator's directory as it found it.
func (l *Lock) Abandon() {
	if l == nil || l.f == nil {
		return
	}
	if l.madeFile {
		os.Remove(l.path)
	}
	l.Unlock()
	if l.madeDir {
		os.Remove(filepath.Dir(l.path)) // only if empty
	}
}

func readHolder(f *os.File) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "holder unknown"
}

// Unlock releases the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing releases the flock
	l.f = nil
	return err
}
