package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	browser "github.com/userbatch/userbatch/internal/chromium"
	"github.com/userbatch/userbatch/internal/memtmp"
	"github.com/userbatch/userbatch/internal/skipped"
	"github.com/userbatch/userbatch/internal/testcache"
	"github.com/userbatch/userbatch/reports"
)

// binPath is the userbatch binary, built for the tests that drive it as an
// operator would: a process, signals, SIGKILL.
var binPath string

func TestMain(m *testing.M) {
	cleanup := memtmp.Use()
	debug.SetGCPercent(gcPercent) // as the binary runs: a fifth less CPU for the fakes' garbage
	widenParallel()
	path, err := buildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building userbatch:", err)
		cleanup()
		os.Exit(1)
	}
	binPath = path
	code := skipped.Run(m)
	browser.Close()
	cleanup()
	os.Exit(code)
}

// buildBinary builds userbatch into a directory that outlives the test
// run, one per checkout, so that go build, which leaves a binary alone when
// its sources have not changed, links it only after a change: a link is
// seconds of CPU on every run otherwise. A lock keeps two test runs of one
// checkout from writing it at once. It is built static, as scripts/image.sh
// ships it: a dynamically linked start costs the loader's time on each of
// the hundreds of runs the tests make.
func buildBinary() (string, error) {
	src, err := os.Getwd()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(src))
	dir, err := testcache.Dir(hex.EncodeToString(sum[:8]))
	if err != nil {
		return "", err
	}
	lock, err := testcache.Lock(filepath.Join(dir, "lock"), syscall.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	bin := filepath.Join(dir, "userbatch")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	return bin, build.Run()
}

// widenParallel lets more tests run at once than go test's default of
// GOMAXPROCS: these tests mostly wait on child processes, loopback HTTP,
// tmux and Chromium, so on a 2-core machine GOMAXPROCS at a time leaves the
// cores idle. An explicit -parallel still wins.
func widenParallel() {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(4*runtime.GOMAXPROCS(0)))
	}
}

// counter calls fn once, when the n-th request arrives.
type counter struct {
	next http.Handler
	n    int64
	seen atomic.Int64
	fn   func()
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.seen.Add(1) == c.n && c.fn != nil {
		c.fn()
	}
	c.next.ServeHTTP(w, r)
}

// process is a started userbatch binary.
type process struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
}

// lockedBuffer is stderr, readable while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (e *e2e) start(args ...string) *process {
	e.t.Helper()
	p := &process{cmd: exec.Command(binPath, args...)}
	p.cmd.Env = append(os.Environ(), e.env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// wait returns the exit code (-1 when killed by a signal).
func (p *process) wait() int {
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -2
	}
	return 0
}

func opsCSV(rows ...string) string {
	return "target,user,action\n" + strings.Join(rows, "\n") + "\n"
}

func many(n int, format string) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = fmt.Sprintf(format, i)
	}
	return rows
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The exit codes as ints, as runMain returns them.
const (
	exitOK         = int(reports.ExitOK)
	exitIncomplete = int(reports.ExitIncomplete)
	exitBadInput   = int(reports.ExitBadInput)
	exitStopped    = int(reports.ExitStopped)
	exitHeld       = int(reports.ExitHeld)
)
