package chromium

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A browser is one headless Chromium that renders every page a test
// process asks for, driven over the DevTools protocol on a pipe: starting
// Chromium is seconds of CPU, a page a fraction of one.
type browser struct {
	cmd     *exec.Cmd
	dir     string
	send    *os.File
	mu      sync.Mutex
	next    int
	pending map[int]chan reply
	err     error // why the pipe closed
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var (
	sharedMu sync.Mutex
	shared   *browser
)

// Page renders the file at path in the test process's one headless
// Chromium (started on first use), in a viewport width by height, and
// returns the DOM as loaded; with png set it also writes a screenshot of
// the viewport there.
func Page(t testing.TB, bin, path string, width, height int, png string) string {
	t.Helper()
	b, err := sharedBrowser(bin)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom, err := b.render(path, width, height, png)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return dom
}

// Close stops the shared Chromium, if one was started; TestMain calls it
// after the tests.
func Close() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.close()
		shared = nil
	}
}

func sharedBrowser(bin string) (*browser, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		b, err := start(bin)
		if err != nil {
			return nil, err
		}
		shared = b
	}
	return shared, nil
}

func start(bin string) (*browser, error) {
	dir, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		return nil, err
	}
	toChrome, send, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	recv, fromChrome, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--remote-debugging-pipe", "--user-data-dir="+dir, "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4: the protocol's pipe
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{cmd: cmd, dir: dir, send: send, pending: map[int]chan reply{}}
	go b.read(recv)
	return b, nil
}

// read hands each answer to its caller; events are not used.
func (b *browser) read(recv *os.File) {
	r := bufio.NewReader(recv)
	var err error
	for {
		var msg []byte
		if msg, err = r.ReadBytes(0); err != nil {
			break
		}
		var m struct {
			ID int `json:"id"`
			reply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue
		}
		b.mu.Lock()
		if ch := b.pending[m.ID]; ch != nil {
			ch <- m.reply
			delete(b.pending, m.ID)
		}
		b.mu.Unlock()
	}
	b.mu.Lock()
	b.err = fmt.Errorf("the DevTools pipe closed: %v", err)
	for id, ch := range b.pending {
		close(ch)
		delete(b.pending, id)
	}
	b.mu.Unlock()
}

// call sends one command (to a page's session when session is set) and
// waits for its answer.
func (b *browser) call(session, method string, params any, result any) error {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return b.err
	}
	b.next++
	id := b.next
	ch := make(chan reply, 1)
	b.pending[id] = ch
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, _ := json.Marshal(msg)
	_, err := b.send.Write(append(raw, 0))
	b.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		switch {
		case !ok:
			return b.err
		case r.Error != nil:
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		case result != nil:
			return json.Unmarshal(r.Result, result)
		}
		return nil
	case <-time.After(90 * time.Second):
		return fmt.Errorf("%s: no answer in 90s", method)
	}
}

func (b *browser) render(path string, width, height int, png string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var target struct{ TargetID string }
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return "", err
	}
	defer b.call("", "Target.closeTarget", map[string]any{"targetId": target.TargetID}, nil)
	var attached struct{ SessionID string }
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		return "", err
	}
	s := attached.SessionID
	if err := b.call(s, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		return "", err
	}
	if err := b.call(s, "Page.navigate", map[string]any{"url": "file://" + abs}, nil); err != nil {
		return "", err
	}
	if err := b.loaded(s); err != nil {
		return "", err
	}
	dom, err := b.eval(s, "document.documentElement.outerHTML")
	if err != nil || png == "" {
		return dom, err
	}
	var shot struct{ Data string }
	if err := b.call(s, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return "", err
	}
	return dom, os.WriteFile(png, raw, 0o600)
}

// loaded waits for the page's load event, as --dump-dom does. Until the
// navigation commits, the expression runs in the blank page before it.
func (b *browser) loaded(session string) error {
	const expr = `location.protocol !== "file:" ? "not yet" : document.readyState === "complete" ? "loaded" :
		new Promise(r => addEventListener("load", () => r("loaded")))`
	deadline := time.Now().Add(90 * time.Second)
	for {
		state, err := b.eval(session, expr)
		if err != nil || state == "loaded" {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the page did not load in 90s")
		}
	}
}

func (b *browser) eval(session, expr string) (string, error) {
	var res struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		return "", err
	}
	if res.ExceptionDetails != nil {
		return "", fmt.Errorf("%s: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value, nil
}

func (b *browser) close() {
	_ = b.call("", "Browser.close", map[string]any{}, nil)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	b.send.Close()
	os.RemoveAll(b.dir)
}
