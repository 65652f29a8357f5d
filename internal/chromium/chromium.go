// Package chromium drives headless Chromium for the tests that check
// report.html as a browser shows it (README, first section).
package chromium

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/userbatch/userbatch/internal/skipped"
)

// Find returns the headless Chromium to drive: $USERBATCH_TEST_CHROMIUM
// (set by .ci/run), else one on the PATH. Without one the test fails on CI
// (CI=true) and is skipped, by name, elsewhere.
func Find(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("USERBATCH_TEST_CHROMIUM"); bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("USERBATCH_TEST_CHROMIUM=%s: %v", bin, err)
		}
		return bin
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	const msg = "NO CHROMIUM: USERBATCH_TEST_CHROMIUM is unset and no chromium is on the PATH, so report.html is NOT tested in a browser (install Debian's chromium, or run .ci/run)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	skipped.Skip(t, msg)
	return ""
}

// Run runs headless Chromium on the file at path with extra flags (such
// as --dump-dom, or --screenshot=FILE) and returns its standard output. No
// network, no profile of the user's.
func Run(t testing.TB, bin, path string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+abs)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium did not finish in time\n%s", tail(stderr.String()))
		}
		t.Fatalf("chromium: %v\n%s", err, tail(stderr.String()))
	}
	return stdout.Bytes()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
