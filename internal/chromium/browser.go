package chromium

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A browser is one headless Chromium that renders every page a test
// process asks for, one at a time in one tab, driven by chromedp: starting
// it is most of its CPU, and a page in the tab already open is a tenth of
// that.
type browser struct {
	mu    sync.Mutex      // one page at a time in the one tab
	ctx   context.Context // the browser's first tab
	close func()
}

var (
	sharedMu sync.Mutex
	shared   *browser
	closed   bool // after Close, nothing starts a browser again
)

// pageTimeout bounds one page's render on a loaded machine.
const pageTimeout = 90 * time.Second

// Page renders the file at path in the test process's one headless
// Chromium (started on first use), in a viewport width by height, and
// returns the DOM once loaded; with png set it also writes a screenshot of
// the viewport there.
func Page(t testing.TB, bin, path string, width, height int, png string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sharedBrowser(bin)
	if err != nil {
		t.Fatalf("chromium: starting %s: %v", bin, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	tab, stop := context.WithTimeout(b.ctx, pageTimeout)
	defer stop()
	err = chromedp.Do(tab, chromedp.EmulateViewport(int64(width), int64(height)),
		chromedp.Navigate("file://"+abs)) // returns once the page has loaded
	if err != nil {
		t.Fatalf("chromium: rendering %s: %v", path, err)
	}
	dom, err := chromedp.Run(tab, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatalf("chromium: reading %s: %v", path, err)
	}
	if png == "" {
		return dom
	}
	shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("chromium: screenshot of %s: %v", path, err)
	}
	if err := os.WriteFile(png, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	return dom
}

// Warm starts the shared Chromium in the background. A test calls it
// before t.Parallel, so that Chromium's seconds of starting overlap the
// package's serial tests instead of delaying the pages at the end of the
// run. A failure to start is Page's to report.
func Warm(bin string) {
	go func() { _, _ = sharedBrowser(bin) }()
}

// Close stops the shared Chromium, if one was started; TestMain calls it
// after the tests.
func Close() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	closed = true
	if shared != nil {
		shared.close()
		shared = nil
	}
}

// sharedBrowser returns the process's browser, starting Chromium on first
// use. It is started under a context no page cancels: chromedp closes the
// browser with the context of its first Run. One process, no zygote, no
// GPU emulation: the headless shell started and rendered six pages on
// 0.7 s of CPU so, against 1.5 s with its renderer, zygote and GPU
// processes (the pages and their screenshots are the same).
func sharedBrowser(bin string) (*browser, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if closed {
		return nil, errors.New("the tests' Chromium is closed")
	}
	if shared == nil {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true),
			chromedp.Flag("single-process", true), chromedp.Flag("no-zygote", true),
			chromedp.Flag("disable-gpu-compositing", true), chromedp.Flag("disable-software-rasterizer", true))
		alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, stopBrowser := chromedp.NewContext(alloc)
		if err := chromedp.Do(ctx); err != nil {
			stopBrowser()
			stopAlloc()
			return nil, err
		}
		shared = &browser{ctx: ctx, close: func() { stopBrowser(); stopAlloc() }}
	}
	return shared, nil
}
