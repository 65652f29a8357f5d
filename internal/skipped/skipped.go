// Package skipped names, in plain `go test ./...` output, the tests that
// did not run because a program they need (PostgreSQL, Chromium, tmux) is
// missing. go test shows a passing package's output only with -v, so a
// skip would otherwise pass unseen (README, first section).
package skipped

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	names []string
	once  sync.Once
)

// Skip records that t did not run and why, then skips it. It also keeps go
// test from caching the package's result: a cached "ok" would hide the
// skip on the next run.
func Skip(t testing.TB, why string) {
	t.Helper()
	mu.Lock()
	names = append(names, t.Name()+": "+why)
	mu.Unlock()
	uncacheable()
	t.Skip(why)
}

// Run runs the package's tests, then names the skipped ones; use it as
// `os.Exit(skipped.Run(m))` in TestMain.
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if len(names) == 0 {
		return code
	}
	w, done := goStderr()
	defer done()
	var b strings.Builder
	tests := "tests"
	if len(names) == 1 {
		tests = "test"
	}
	fmt.Fprintf(&b, "NOT RUN in %s (%d %s skipped; CI=true fails them instead):\n", pkgName(), len(names), tests)
	for _, n := range names {
		fmt.Fprintf(&b, "  SKIPPED %s\n", n)
	}
	_, _ = io.WriteString(w, b.String())
	return code
}

// goStderr is the go command's own stderr when it runs this test binary:
// what it prints there shows whatever the flags. Elsewhere (the binary run
// by hand, another system) it is this process's stderr.
func goStderr() (io.Writer, func()) {
	if runtime.GOOS == "linux" {
		ppid := os.Getppid()
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
		if err == nil && strings.TrimSpace(string(comm)) == "go" {
			if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", ppid), os.O_WRONLY|os.O_APPEND, 0); err == nil {
				return f, func() { f.Close() }
			}
		}
	}
	return os.Stderr, func() {}
}

// uncacheable keeps go test from caching this run's result, so the next
// run runs, and names the skips, again. go test keys a result on the
// directories the tests changed into, by their modification time; the
// temporary directory changes with every go test (its work directory is
// made there), so a visit to it is never the same input twice.
func uncacheable() {
	once.Do(func() {
		dir, err := os.Getwd()
		if err == nil && os.Chdir(os.TempDir()) == nil {
			_ = os.Chdir(dir)
		}
	})
}

// pkgName is the package under test: go test runs a test binary in its
// package's directory, named below the module's root.
func pkgName() string {
	dir, err := os.Getwd()
	if err != nil {
		return os.Args[0]
	}
	for root := dir; ; root = filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			if rel, err := filepath.Rel(root, dir); err == nil {
				return "./" + filepath.ToSlash(rel)
			}
			return dir
		}
		if filepath.Dir(root) == root {
			return dir
		}
	}
}
