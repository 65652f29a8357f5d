package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/internal/skipped"
)

// The operator's terminal, for real: the binary runs in a tmux pane 200
// columns by 50 rows, and the tests read the screen as a person sees it.

// termPane is the binary running in a tmux session of a tmux server of its
// own, and a control-mode client of that server (tmux -C) that the test
// sends its commands to: a tmux process for each read of the screen was
// most of these tests' CPU.
type termPane struct {
	t    *testing.T
	sock string
	mu   sync.Mutex // one command at a time on the control client
	in   io.Writer
	out  *bufio.Reader
}

// needTmux skips the test where tmux is missing, loudly; in CI it fails.
func needTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed: CI must run the terminal tests (apt-get install tmux)")
		}
		skipped.Skip(t, "tmux is not installed, so the terminal tests did not run (apt-get install tmux)")
	}
}

// startPane runs the binary with args in a fresh pane; shellTail is added
// to its shell command line (such as a redirection). When it exits the
// pane shows "[exit N]" and waits for a key, so the screen stays readable.
func startPane(t *testing.T, shellTail string, args ...string) *termPane {
	t.Helper()
	needTmux(t)
	dir, err := os.MkdirTemp("", "ubtmux") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	p := &termPane{t: t, sock: filepath.Join(dir, "s")}
	words := []string{shellQuote(binPath)}
	for _, a := range args {
		words = append(words, shellQuote(a))
	}
	// The shell outlives a Ctrl-C (the binary gets it, and the default).
	line := "trap : INT; " + strings.Join(words, " ") + " " + shellTail + `; echo "[exit $?]"; read _`
	t.Cleanup(func() {
		_ = p.tmuxCmd("kill-server").Run()
		os.RemoveAll(dir)
	})
	if out, err := p.tmuxCmd("-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "-s", "ub", "sh", "-c", line).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	p.attach()
	return p
}

func (p *termPane) tmuxCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("tmux", append([]string{"-S", p.sock}, args...)...)
	cmd.Env = append(os.Environ(), "TMUX=") // a test run inside tmux still gets a server of its own
	return cmd
}

// attach starts the control client: it neither sizes the window nor
// copies the pane's output to the test, which reads the screen instead.
func (p *termPane) attach() {
	p.t.Helper()
	ctl := p.tmuxCmd("-C", "attach-session", "-t", "ub", "-f", "no-output,ignore-size")
	in, err := ctl.StdinPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := ctl.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := ctl.Start(); err != nil {
		p.t.Fatalf("tmux -C: %v", err)
	}
	p.t.Cleanup(func() { in.Close(); _ = ctl.Wait() }) // the client detaches at the end of its input
	p.in, p.out = in, bufio.NewReader(out)
}

// tmux runs a tmux command on the control client and returns its output.
// The client wraps the output of each command it was sent in %begin and
// %end (or %error) lines whose last field is 1; the rest of what it prints
// is notifications and the attach's own reply.
func (p *termPane) tmux(args ...string) string {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	words := make([]string, len(args))
	for i, a := range args {
		words[i] = shellQuote(a) // tmux's command syntax quotes as sh does
	}
	if _, err := io.WriteString(p.in, strings.Join(words, " ")+"\n"); err != nil {
		p.t.Fatalf("tmux %s: %v", strings.Join(args, " "), err)
	}
	var body []string
	inReply := false
	for {
		line, err := p.out.ReadString('\n')
		if err != nil {
			p.t.Fatalf("tmux %s: the control client ended: %v", strings.Join(args, " "), err)
		}
		line = strings.TrimSuffix(line, "\n")
		guard := strings.Fields(line)
		ours := len(guard) == 4 && guard[3] == "1"
		switch {
		case !inReply:
			inReply = ours && guard[0] == "%begin"
		case ours && guard[0] == "%end":
			return strings.Join(body, "\n") + "\n"
		case ours && guard[0] == "%error":
			p.t.Fatalf("tmux %s: %s", strings.Join(args, " "), strings.Join(body, "\n"))
		default:
			body = append(body, line)
		}
	}
}

// screen is the pane as a person sees it, with its scrollback.
func (p *termPane) screen() string {
	return p.tmux("capture-pane", "-p", "-J", "-t", "ub", "-S", "-3000")
}

// waitScreen reads the screen until ok accepts it, for at most 20 seconds,
// ten times a second: fast enough to see each of the bar's frames (150ms
// apart).
func (p *termPane) waitScreen(what string, ok func(string) bool) string {
	p.t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		s := p.screen()
		if ok(s) {
			return s
		}
		select {
		case <-tick.C:
		case <-deadline:
			p.t.Fatalf("the terminal never showed %s; it shows:\n%s", what, s)
		}
	}
}

// waitText waits for text on the screen.
func (p *termPane) waitText(text string) string {
	p.t.Helper()
	return p.waitScreen(strconv.Quote(text), func(s string) bool { return strings.Contains(s, text) })
}

var exitLine = regexp.MustCompile(`\[exit (\d+)\]`)

// exitCode waits for the binary to exit and returns its code and the screen.
func (p *termPane) exitCode() (int, string) {
	p.t.Helper()
	s := p.waitScreen("the binary exit", exitLine.MatchString)
	code, _ := strconv.Atoi(exitLine.FindStringSubmatch(s)[1])
	return code, s
}

// typeLine types text and Enter, as a person at the keyboard.
func (p *termPane) typeLine(text string) {
	p.t.Helper()
	p.tmux("send-keys", "-t", "ub", "-l", text)
	p.tmux("send-keys", "-t", "ub", "Enter")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestTerminalProgressBar: a 300-row run on a terminal shows the bar
// moving, a target paused by the vendor with its countdown, and ends with
// the last frame and the summary table under it. At 400 requests a second
// (a read and a write a row) and a 2 s pause the run lasts 3.5 s, many of
// the bar's refreshes.
func TestTerminalProgressBar(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.cfg = e.write("slow.yaml", e.fakes.targetsYAML(e.srv.URL, 400))
	const rows = 300
	in, users := e.kiiUsers(rows, 0)
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: users[100], Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "2"}})
	e.fakes.kii.Faults.Add(fakehttp.Rule{User: users[150], Times: 1, Fault: fakehttp.Fault{Status: http.StatusServiceUnavailable}})
	out := filepath.Join(e.dir, "out")
	p := startPane(t, "", "run", "--yes", "-c", e.cfg, "-o", out, in)

	// One loop watches for both: the pause lasts 2s, whenever it comes.
	seen, paused := map[int]bool{}, false
	p.waitScreen("the bar at two row counts below the total, and apps paused with its countdown", func(s string) bool {
		if n := lastBarRows(s, rows); n > 0 && n < rows {
			seen[n] = true
		}
		paused = paused || regexp.MustCompile(`apps PAUSED by the vendor, resumes in [12]s`).MatchString(s)
		return len(seen) >= 2 && paused
	})
	code, s := p.exitCode()
	if code != 0 {
		t.Fatalf("exit %d, want 0; screen:\n%s", code, s)
	}
	last := strings.LastIndex(s, fmt.Sprintf("%d/%d rows", rows, rows))
	table := regexp.MustCompile(fmt.Sprintf(`(?m)^total +%d$`, rows)).FindStringIndex(s)
	if last < 0 || table == nil || table[0] < last {
		t.Fatalf("the run should end with the bar at %d/%d and the summary table under it; screen:\n%s", rows, rows, s)
	}
	for _, want := range []string{"100%", "done in", fmt.Sprintf("applied %d", rows)} {
		if !strings.Contains(s[last:table[0]], want) {
			t.Errorf("the last frame lacks %q:\n%s", want, s[last:table[0]])
		}
	}
	if n := e.kiiWrites(users); n != rows {
		t.Errorf("%d writes reached kii, want %d", n, rows)
	}
}

// barBytes are what a bar would leave in a file: carriage returns, the
// cursor moved or lines erased, the bar's own text.
var barBytes = regexp.MustCompile(`\r|\x1b\[\d*[ABJK]|\d+/\d+ rows|rows/s|\[[=>-]{8,}\]|PAUSED by the vendor`)

// TestTerminalPipedNoBar: the same run with stderr to a file has no bar in
// it, whether the log is JSON (the default off a terminal) or console.
func TestTerminalPipedNoBar(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"", "console"} {
		t.Run("log-format="+format, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t)
			// 200 rows at 800 requests/s: half a second, several of the
			// bar's refreshes, so a bar that wrongly drew would show.
			e.cfg = e.write("slow.yaml", e.fakes.targetsYAML(e.srv.URL, 800))
			in, users := e.kiiUsers(200, 0)
			e.fakes.kii.Faults.Add(fakehttp.Rule{User: users[120], Times: 1, Fault: fakehttp.Fault{Status: http.StatusServiceUnavailable}})
			log := filepath.Join(e.dir, "stderr.log")
			args := []string{"run", "--yes", "-c", e.cfg, "-o", filepath.Join(e.dir, "out"), in}
			if format != "" {
				args = append(args, "--log-format", format)
			}
			p := startPane(t, "2>"+shellQuote(log), args...)
			if code, s := p.exitCode(); code != 0 {
				t.Fatalf("exit %d, want 0; screen:\n%s", code, s)
			}
			b, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "run starting") || !strings.Contains(string(b), "retrying") {
				t.Fatalf("stderr.log lacks the run's log:\n%s", b)
			}
			if m := barBytes.Find(b); m != nil {
				t.Errorf("stderr.log holds bar bytes %q:\n%q", m, b)
			}
			if format == "" && strings.Contains(string(b), "\x1b") {
				t.Errorf("the JSON log holds an escape sequence:\n%q", b)
			}
		})
	}
}

// TestTerminalConfirm: on a terminal, run without --yes shows what would
// change and asks for the number of changes; a wrong number sends nothing
// (exit 4), the right one applies.
func TestTerminalConfirm(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(5, 0)

	p := startPane(t, "", "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "no"), in)
	s := p.waitText("Type 5 to send these changes")
	for _, want := range []string{"About to change 5 users", "First rows:", "line 2: apps disable " + users[0], "line 6: apps disable " + users[4]} {
		if !strings.Contains(s, want) {
			t.Errorf("the question lacks %q; screen:\n%s", want, s)
		}
	}
	p.typeLine("4")
	if code, s := p.exitCode(); code != int(exitHeld) || !strings.Contains(s, "not confirmed") {
		t.Fatalf("a wrong number: exit %d, want %d, saying not confirmed; screen:\n%s", code, exitHeld, s)
	}
	if n := e.kiiWrites(users); n != 0 {
		t.Fatalf("a wrong number still sent %d writes", n)
	}

	p = startPane(t, "", "run", "-c", e.cfg, "-o", filepath.Join(e.dir, "yes"), in)
	p.waitText("Type 5 to send these changes")
	p.typeLine("5")
	if code, s := p.exitCode(); code != 0 {
		t.Fatalf("the right number: exit %d, want 0; screen:\n%s", code, s)
	}
	for _, u := range users {
		if got, _ := e.fakes.kii.User(u); !got.Disabled || e.fakes.kii.Writes(u) != 1 {
			t.Errorf("%s after confirming: %+v, %d writes; want disabled by one write", u, got, e.fakes.kii.Writes(u))
		}
	}
}

// TestTerminalYesAsksNothing: --yes on a terminal, or no terminal at all,
// runs without a question.
func TestTerminalYesAsksNothing(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, users := e.kiiUsers(5, 0)
	p := startPane(t, "", "run", "--yes", "-c", e.cfg, "-o", filepath.Join(e.dir, "tty"), in)
	code, s := p.exitCode()
	if code != 0 || strings.Contains(s, "Type 5") {
		t.Fatalf("--yes: exit %d, want 0 with no question; screen:\n%s", code, s)
	}
	if n := e.kiiWrites(users); n != 5 {
		t.Fatalf("--yes: %d writes, want 5", n)
	}

	e = newE2E(t)
	in, users = e.kiiUsers(5, 0)
	res := e.run("run", "-c", e.cfg, "-o", filepath.Join(e.dir, "pipe"), in)
	if res.code != 0 || strings.Contains(res.stderr, "Type 5") {
		t.Fatalf("no terminal: exit %d, want 0 with no question; stderr:\n%s", res.code, res.stderr)
	}
	if n := e.kiiWrites(users); n != 5 {
		t.Fatalf("no terminal: %d writes, want 5", n)
	}
}

// TestTerminalJSONLogNoBar: JSON logs on a terminal are for a machine: no
// bar is mixed into them.
func TestTerminalJSONLogNoBar(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	in, _ := e.kiiUsers(50, 0)
	p := startPane(t, "", "run", "--yes", "--log-format", "json", "-c", e.cfg, "-o", filepath.Join(e.dir, "out"), in)
	code, s := p.exitCode()
	if code != 0 || !strings.Contains(s, `"message":"run finished"`) {
		t.Fatalf("exit %d, want 0 with the JSON summary record; screen:\n%s", code, s)
	}
	if m := regexp.MustCompile(`\d+/50 rows|rows/s`).FindString(s); m != "" {
		t.Errorf("a bar (%q) was drawn with JSON logs; screen:\n%s", m, s)
	}
}

// lastBarRows is the row count of the last frame on the screen (-1: none).
func lastBarRows(s string, total int) int {
	m := regexp.MustCompile(`(\d+)/`+strconv.Itoa(total)+` rows`).FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// TestTerminalInterrupt: Ctrl-C on a terminal stops the run gracefully;
// the warning goes above the bar, the last frame says it ended, and the
// summary and the resume command follow, ungarbled. The resumed run's bar
// starts where the first one stopped and ends with every row.
func TestTerminalInterrupt(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	const rows = 600 // the first run stops past 100; the resume sends the rest
	in, users := e.kiiUsers(rows, 0)
	e.fakes.kii.Faults.SetLatency(20 * time.Millisecond) // about 100 rows a second
	out := filepath.Join(e.dir, "out")
	p := startPane(t, "", "run", "--yes", "-c", e.cfg, "-o", out, in)
	p.waitScreen("the bar past 100 rows", func(s string) bool { return lastBarRows(s, rows) > 100 })
	p.tmux("send-keys", "-t", "ub", "C-c")
	code, s := p.exitCode()
	if code != exitStopped {
		t.Fatalf("Ctrl-C: exit %d, want %d; screen:\n%s", code, exitStopped, s)
	}
	// The warning at the start of its own line: ^C echoed on the bar's
	// line must not be left glued to it.
	warnAt := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d WRN stopping: no new rows`).FindStringIndex(s)
	warn := -1
	if warnAt != nil {
		warn = warnAt[0]
	}
	frame := regexp.MustCompile(`(?m)^\d+/` + strconv.Itoa(rows) + ` rows \[[=>-]+\] +\d+%  [\d.]+ rows/s  ended after \S+$`).FindStringIndex(s)
	table := regexp.MustCompile(`(?m)^total +` + strconv.Itoa(rows) + `$`).FindStringIndex(s)
	resume := strings.Index(s, "stopped before finishing: to finish, run:")
	if warn < 0 || frame == nil || table == nil || resume < 0 || !(warn < frame[0] && frame[0] < table[0] && table[0] < resume) {
		t.Fatalf("want the warning, then the last frame (ended after), then the summary, then the resume command; screen:\n%s", s)
	}
	stoppedAt := lastBarRows(s, rows)
	if sent := e.kiiWrites(users); sent != stoppedAt {
		t.Fatalf("the last frame says %d rows, but %d writes reached kii", stoppedAt, sent)
	}

	e.fakes.kii.Faults.SetLatency(0)
	p = startPane(t, "", "run", "--yes", "-c", e.cfg, "-o", out, in, "--resume")
	first := lastBarRows(p.waitScreen("the resumed run's bar", func(s string) bool { return lastBarRows(s, rows) >= 0 }), rows)
	if first < stoppedAt {
		t.Errorf("the resumed bar starts at %d rows, below the %d the first run finished", first, stoppedAt)
	}
	code, s = p.exitCode()
	if code != 0 || lastBarRows(s, rows) != rows || !strings.Contains(s, "100%") {
		t.Fatalf("resume: exit %d, want 0 with the bar at %d/%d; screen:\n%s", code, rows, rows, s)
	}
	if n := e.kiiWrites(users); n != rows {
		t.Errorf("%d writes reached kii over both runs, want %d", n, rows)
	}
}
