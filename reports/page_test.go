package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
	browser "github.com/userbatch/userbatch/internal/chromium"
)

// domText returns the text of the element with the given id in a dumped DOM.
func domText(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the page has no element with id %q", id)
	}
	return m[1]
}

func domNumber(t *testing.T, dom, id string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(domText(t, dom, id), 64)
	if err != nil {
		t.Fatalf("#%s: %v", id, err)
	}
	return f
}

// section returns the markup from the element with the given id to its
// closing tag.
func section(t *testing.T, dom, id, tag string) string {
	t.Helper()
	start := strings.Index(dom, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("the page has no #%s", id)
	}
	end := strings.Index(dom[start:], "</"+tag+">")
	return dom[start : start+end]
}

// outcomeCells reads the data-outcome cells of a markup fragment.
func outcomeCells(t *testing.T, html string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range regexp.MustCompile(`data-outcome="([^"]+)">(\d+)<`).FindAllStringSubmatch(html, -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = n
	}
	return out
}

// checkPageAgainstSummary loads dir's report.html in Chromium, in a
// viewport width by height (a screenshot of it into png, when set), and
// checks that the numbers it shows are summary.json's.
func checkPageAgainstSummary(t *testing.T, bin, dir string, width, height int, png string) string {
	t.Helper()
	dom := browser.Page(t, bin, filepath.Join(dir, HTMLFile), width, height, png)
	var s Summary
	readJSON(t, filepath.Join(dir, SummaryFile), &s)
	for id, want := range map[string]float64{
		"total-rows": float64(s.Rows), "exit-code": float64(s.ExitCode), "sent": float64(s.Sent),
		"ops-per-s": s.OpsPerS, "duration-s": s.DurationS, "attempts": float64(s.Attempts),
		"retries": float64(s.Retries), "processes": float64(s.Processes),
		"latency-p50": s.LatencyMS.P50, "latency-p95": s.LatencyMS.P95, "latency-p99": s.LatencyMS.P99,
		"latency-max": s.LatencyMS.Max, "failed-csv-rows": float64(s.FileRows.Failed),
		"check-csv-rows": float64(s.FileRows.Check), "undo-csv-rows": float64(s.FileRows.Undo),
	} {
		if got := domNumber(t, dom, id); got != want {
			t.Errorf("#%s shows %v, summary.json says %v", id, got, want)
		}
	}
	outcomes := outcomeCells(t, section(t, dom, "outcomes", "table"))
	for o, n := range s.Outcomes {
		if outcomes[string(o)] != n {
			t.Errorf("outcome %s shows %d, summary.json says %d", o, outcomes[string(o)], n)
		}
	}
	for name, counts := range map[string]map[string]Counts{"by-target": s.ByTarget, "by-action": s.ByAction} {
		table := section(t, dom, name, "table")
		rows := regexp.MustCompile(`<tr data-(?:target|action)="([^"]*)">(.*?)</tr>`).FindAllStringSubmatch(table, -1)
		if len(rows) != len(counts) {
			t.Errorf("#%s has %d rows, summary.json %d", name, len(rows), len(counts))
		}
		for _, r := range rows {
			key := htmlUnescape(r[1])
			got := outcomeCells(t, r[2])
			for o, n := range counts[key] {
				if got[string(o)] != n {
					t.Errorf("#%s %q %s shows %d, summary.json says %d", name, key, o, got[string(o)], n)
				}
			}
		}
	}
	return dom
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#34;", `"`, "&#39;", "'", "&amp;", "&").Replace(s)
}

const (
	xssScript = `<script>alert(1)</script>`
	xssImg    = `<img src=x onerror="document.title='pwned'">`
)

// writeSampleReport writes a report with every outcome, two targets, an
// unknown toggle, and user ids, messages and target names that are HTML.
func writeSampleReport(t *testing.T, dir string) {
	t.Helper()
	w, err := Create(dir, header("target", "user", "action", "owner"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	line := 2
	add := func(target, user string, a batch.Action, o batch.Outcome, msg string, attempts int, at time.Duration) {
		res := batch.Result{Target: target, User: user, Action: a, Outcome: o, Message: msg, Attempts: attempts,
			Duration: time.Duration(line) * time.Millisecond, FinishedAt: start.Add(at)}
		if attempts == 0 {
			res.Duration, res.FinishedAt = 0, time.Time{}
		}
		if o == batch.Failed || o == batch.Unknown {
			res.ErrorCode = "timeout"
		}
		row := batch.Row{Line: line, Record: []string{target, user, string(a), "Ærø"}, Op: batch.Op{Target: target, User: user, Action: a}}
		if err := w.Write(row, res); err != nil {
			t.Fatal(err)
		}
		line++
	}
	for i := range 120 {
		add("shop", fmt.Sprintf("user-%d", i), batch.Disable, batch.Applied, "", 1, time.Duration(i)*250*time.Millisecond)
	}
	add("shop", xssScript, batch.Disable, batch.Failed, xssScript+" was refused", 3, 5*time.Second)
	add("shop", xssImg, batch.Enable, batch.Failed, xssScript+" was refused", 1, 6*time.Second)
	add(`"><img src=x onerror=alert(2)>`, "u", batch.ToggleStatus, batch.Unknown, "no answer in time", 1, 7*time.Second)
	add("clear", "u2", batch.ToggleStatus, batch.Already, "", 1, 8*time.Second)
	add("clear", "u3", "fly", batch.Invalid, "action: unknown action \"fly\"", 0, 0)
	add("clear", "u4", batch.Disable, batch.Skipped, "", 0, 0)
	if _, err := w.Close(Run{StartedAt: start, FinishedAt: start.Add(40 * time.Second), Processes: 2}); err != nil {
		t.Fatal(err)
	}
}

func TestReportHTMLInChromium(t *testing.T) {
	bin := browser.Find(t)
	browser.Warm(bin) // before t.Parallel: Chromium starts while the serial tests run
	t.Parallel()
	dir := t.TempDir()
	writeSampleReport(t, dir)
	png := filepath.Join(t.TempDir(), "report.png")
	dom := checkPageAgainstSummary(t, bin, dir, 1280, 2000, png)

	// The data's markup is text: no element came from it, no script ran.
	lower := strings.ToLower(dom)
	for _, tag := range []string{"<script", "<img", "<iframe"} {
		if strings.Contains(lower, tag) {
			t.Errorf("the rendered page holds a %s element", tag)
		}
	}
	if !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt; was refused") ||
		!strings.Contains(dom, "&lt;img src=x onerror=\"document.title='pwned'\"&gt;") {
		t.Errorf("the HTML in the data does not show as text")
	}
	if domTitle := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(dom); domTitle == nil || domTitle[1] != "userbatch report" {
		t.Errorf("the page title is %q: a script ran", domTitle)
	}
	// Errors grouped by message: the two refusals share one line.
	errs := regexp.MustCompile(`<tr class="error"><td class="error-count">(\d+)</td>`).FindAllStringSubmatch(dom, -1)
	if len(errs) != 4 || errs[0][1] != "2" {
		t.Errorf("error lines %q: want 4, the first counting the 2 refusals", errs)
	}
	if n := strings.Count(section(t, dom, "throughput", "svg"), "<rect"); n == 0 || n > maxBuckets {
		t.Errorf("the throughput chart has %d bars", n)
	}

	raw, err := os.ReadFile(png)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(raw) < 1000 || !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(raw))
	}
}

// The page needs nothing beyond itself: no script, no remote or absolute
// reference, and its links are the report files beside it.
func TestReportHTMLIsSelfContained(t *testing.T) {
	dir := t.TempDir()
	writeSampleReport(t, dir)
	raw, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	if !strings.Contains(page, `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`) {
		t.Error("the page lacks its Content-Security-Policy")
	}
	if strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, "@import") || strings.Contains(page, "url(") {
		t.Error("the page holds a script or loads a resource")
	}
	refs := regexp.MustCompile(`(?i)\s(?:src|href|action|xlink:href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1)
	var links []string
	for _, r := range refs {
		if strings.Contains(r[1], ":") || strings.Contains(r[1], "/") {
			t.Errorf("reference %q is not a file beside the page", r[1])
		}
		links = append(links, r[1])
		if _, err := os.Stat(filepath.Join(dir, r[1])); err != nil {
			t.Errorf("link %q: %v", r[1], err)
		}
	}
	if want := []string{ReportFile, FailedFile, CheckFile, UndoFile, SummaryFile}; fmt.Sprint(links) != fmt.Sprint(want) {
		t.Errorf("links %q, want %q", links, want)
	}
}

func TestErrorGroupsAreBounded(t *testing.T) {
	p := newPage()
	for i := range 200 {
		for j := range 10 {
			p.add(i*10+j+2, "t", "u", batch.Failed, "code", "", fmt.Sprintf("message %d", i), true, time.Unix(int64(i), 0))
		}
	}
	p.add(5000, "t", "u", batch.Applied, "", "", "", true, time.Unix(0, 0))
	long := strings.Repeat("é", maxMessageLen)
	p.add(5001, "t", "u", batch.Skipped, "", long, "", false, time.Time{})
	if len(p.groups) != maxErrorGroups {
		t.Errorf("%d groups kept, want %d", len(p.groups), maxErrorGroups)
	}
	for k, g := range p.groups {
		if len(g.Examples) > maxExamples || (g.Rows != 10 && k.Outcome == batch.Failed) {
			t.Errorf("group %q: %d rows, %d examples", k.Message, g.Rows, len(g.Examples))
		}
	}
	if p.otherRows != 200*10-maxErrorGroups*10+1 {
		t.Errorf("other rows = %d", p.otherRows)
	}
	if p.times.rows != 200*10+1 {
		t.Errorf("the timeline counted %d rows sent, want %d", p.times.rows, 200*10+1)
	}
}

func TestTimelineIsBoundedAndExact(t *testing.T) {
	var tl timeline
	base := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	// Out of time order, spread over ten hours, with a burst at the start.
	var n int64
	for i := range 36000 {
		at := base.Add(time.Duration((i*7919)%36000) * time.Second)
		tl.add(at)
		n++
		if i%1000 == 0 {
			for range 50 {
				tl.add(base)
				n++
			}
		}
	}
	tl.add(base.Add(-time.Hour))
	n++
	bs := tl.buckets()
	if len(bs) > maxBuckets {
		t.Fatalf("%d buckets, at most %d", len(bs), maxBuckets)
	}
	var total int64
	for i, b := range bs {
		total += b.Rows
		if i > 0 && b.Start.Sub(bs[i-1].Start) != time.Duration(tl.width)*time.Second {
			t.Fatalf("bucket %d starts %v after the one before, want %ds", i, b.Start.Sub(bs[i-1].Start), tl.width)
		}
	}
	if total != n {
		t.Errorf("the buckets hold %d rows, want %d", total, n)
	}
	first, last := bs[0].Start, bs[len(bs)-1].Start.Add(time.Duration(tl.width)*time.Second)
	if first.After(base.Add(-time.Hour)) || !last.After(base.Add(10*time.Hour-time.Second)) {
		t.Errorf("the buckets span %v to %v: not every row's time", first, last)
	}
	var one timeline
	for range 3 {
		one.add(base.Add(500 * time.Millisecond))
	}
	if b := one.buckets(); len(b) != 1 || b[0].Rows != 3 || b[0].Rate != 3 || !b[0].Start.Equal(base) {
		t.Errorf("three rows in one second: %+v", b)
	}
}
