// Package chromium drives headless Chromium for the tests that check
// report.html as a browser shows it (README, first section).
package chromium

import (
	"os"
	"os/exec"
	"testing"

	"github.com/userbatch/userbatch/internal/skipped"
)

// Find returns the headless Chromium to drive: $USERBATCH_TEST_CHROMIUM
// (set by .ci/run), else one on the PATH, Chromium's headless shell first:
// it renders with the same engine as the browser, starts on less than half
// its CPU and idles on a twentieth (README, first section). Without one
// the test fails on CI (CI=true) and is skipped, by name, elsewhere.
func Find(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("USERBATCH_TEST_CHROMIUM"); bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("USERBATCH_TEST_CHROMIUM=%s: %v", bin, err)
		}
		return bin
	}
	for _, name := range []string{"chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	const msg = "NO CHROMIUM: USERBATCH_TEST_CHROMIUM is unset and no chromium is on the PATH, so report.html is NOT tested in a browser (install Debian's chromium-headless-shell, or run .ci/run)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	skipped.Skip(t, msg)
	return ""
}
