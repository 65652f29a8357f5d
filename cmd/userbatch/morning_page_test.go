package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	browser "github.com/userbatch/userbatch/internal/chromium"
)

// morningSummary is what the page is checked against: summary.json.
type morningSummary struct {
	Rows     int                       `json:"rows"`
	Outcomes map[string]int            `json:"outcomes"`
	ByTarget map[string]map[string]int `json:"by_target"`
	DryRun   bool                      `json:"dry_run"`
	FileRows map[string]int            `json:"file_rows"`
}

var (
	verdictEl  = regexp.MustCompile(`<p id="verdict" class="verdict tone-(\w+)"[^>]*>([^<]*)</p>`)
	targetBar  = regexp.MustCompile(`(?s)<g class="target-bar" data-target="([^"]*)" data-rows="(\d+)">(.*?)</g>`)
	barSegment = regexp.MustCompile(`<rect [^>]*data-outcome="([^"]+)" data-rows="(\d+)"`)
	checkEl    = regexp.MustCompile(`<tr class="check"><td>(\d+)</td>`)
	errorCount = regexp.MustCompile(`<tr class="error"><td class="error-count">(\d+)</td>(?:<td[^>]*>[^<]*</td>){3}<td class="fix">([^<]+)</td>`)
)

// TestMorningPageInChromium: report.html, rendered by headless Chromium
// after real runs against the fakes, opens with a verdict whose numbers
// are summary.json's, lists what needs a person (every row not done, with
// a fix; every check.csv row), and draws a bar per target whose segments
// are summary.json's by_target counts. A screenshot is taken of each.
func TestMorningPageInChromium(t *testing.T) {
	bin := browser.Find(t)
	browser.Warm(bin) // before t.Parallel: Chromium starts while the serial tests run
	t.Parallel()
	t.Run("every outcome", func(t *testing.T) {
		t.Parallel()
		e := newE2E(t)
		e.seedAllVendors()
		out := filepath.Join(e.dir, "report")
		res := e.run("run", "-c", e.cfg, "-o", out, e.write("ops.csv", allVendorsCSV))
		wantExit(t, "run", res, exitIncomplete)
		dom, sum := renderMorningPage(t, bin, out)
		tone, text := pageVerdict(t, dom)
		done := sum.Outcomes["applied"] + sum.Outcomes["already"]
		want := fmt.Sprintf("%d of %d done; %d failed, %d unknown — fix and re-run failed.csv (%d rows); check %d users by hand: check.csv, never re-run blindly",
			done, sum.Rows, sum.Outcomes["failed"], sum.Outcomes["unknown"], sum.FileRows["failed.csv"], sum.FileRows["check.csv"])
		if text != want || tone != "attention" {
			t.Errorf("verdict (%s) %q\nwant (attention) %q", tone, text, want)
		}
		checkNeedsAPerson(t, dom, sum, out)
		checkTargetBars(t, dom, sum)
	})
	t.Run("all done", func(t *testing.T) {
		t.Parallel()
		e := newE2E(t)
		in, _ := e.kiiUsers(7, 2)
		out := filepath.Join(e.dir, "report")
		wantExit(t, "run", e.run("run", "-c", e.cfg, "-o", out, in), exitOK)
		dom, sum := renderMorningPage(t, bin, out)
		if tone, text := pageVerdict(t, dom); text != fmt.Sprintf("All %d done", sum.Rows) || tone != "ok" {
			t.Errorf("verdict (%s) %q, want (ok) \"All %d done\"", tone, text, sum.Rows)
		}
		if !strings.Contains(dom, `id="no-errors"`) || checkEl.MatchString(dom) {
			t.Error("a run with every row done lists something that needs a person")
		}
		checkTargetBars(t, dom, sum)
	})
	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		e := newE2E(t)
		in, _ := e.kiiUsers(6, 4)
		out := filepath.Join(e.dir, "report")
		wantExit(t, "dry run", e.run("run", "--dry-run", "-c", e.cfg, "-o", out, in), exitOK)
		dom, sum := renderMorningPage(t, bin, out)
		tone, text := pageVerdict(t, dom)
		if !sum.DryRun || !strings.HasPrefix(text, fmt.Sprintf("Dry run of %d rows: ", sum.Rows)) ||
			!strings.Contains(text, "nothing was sent; run without --dry-run to apply") || tone != "ok" {
			t.Errorf("dry run verdict (%s) %q", tone, text)
		}
		checkTargetBars(t, dom, sum)
	})
}

// renderMorningPage dumps dir's report.html as Chromium renders it, takes
// a screenshot, and reads summary.json.
func renderMorningPage(t *testing.T, bin, dir string) (string, morningSummary) {
	t.Helper()
	page := filepath.Join(dir, "report.html")
	png := filepath.Join(t.TempDir(), "report.png")
	// The test process's one Chromium renders the DOM and takes the screenshot.
	dom := browser.Page(t, bin, page, 1280, 1600, png)
	if raw, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("no screenshot of the page: %v", err)
	}
	var sum morningSummary
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the page holds a script")
	}
	return dom, sum
}

func pageVerdict(t *testing.T, dom string) (tone, text string) {
	t.Helper()
	m := verdictEl.FindStringSubmatch(dom)
	if m == nil {
		t.Fatal("the page has no verdict")
	}
	if strings.Index(dom, `id="verdict"`) > strings.Index(dom, `<table`) {
		t.Error("the verdict is not the page's opening line: a table comes first")
	}
	return m[1], html.UnescapeString(m[2])
}

// checkNeedsAPerson: every row not done is in an error group with a fix,
// and every check.csv row is listed by its line.
func checkNeedsAPerson(t *testing.T, dom string, sum morningSummary, dir string) {
	t.Helper()
	grouped := 0
	for _, m := range errorCount.FindAllStringSubmatch(dom, -1) {
		n, _ := strconv.Atoi(m[1])
		grouped += n
		if strings.TrimSpace(m[2]) == "" {
			t.Errorf("an error group of %d rows has no fix", n)
		}
	}
	notDone := sum.Outcomes["failed"] + sum.Outcomes["unknown"] + sum.Outcomes["skipped"] + sum.Outcomes["invalid"]
	if grouped != notDone {
		t.Errorf("the groups hold %d rows; summary.json has %d rows not done", grouped, notDone)
	}
	var listed []string
	for _, m := range checkEl.FindAllStringSubmatch(dom, -1) {
		listed = append(listed, m[1])
	}
	var want []string
	for _, r := range readCSV(t, filepath.Join(dir, "check.csv")) {
		want = append(want, strings.TrimPrefix(strings.SplitN(r["reason"], ":", 2)[0], "line "))
	}
	if fmt.Sprint(listed) != fmt.Sprint(want) || len(listed) != sum.FileRows["check.csv"] {
		t.Errorf("the page lists check.csv lines %v; check.csv holds %v (%d rows)", listed, want, sum.FileRows["check.csv"])
	}
}

// checkTargetBars: one bar per target, its segments summary.json's
// non-zero by_target counts, each labelled with its outcome and rows.
func checkTargetBars(t *testing.T, dom string, sum morningSummary) {
	t.Helper()
	bars := targetBar.FindAllStringSubmatch(dom, -1)
	if len(bars) != len(sum.ByTarget) {
		t.Errorf("%d bars; summary.json has %d targets", len(bars), len(sum.ByTarget))
	}
	for _, b := range bars {
		name := html.UnescapeString(b[1])
		want, ok := sum.ByTarget[name]
		if !ok {
			t.Errorf("a bar for %q, which summary.json does not list", name)
			continue
		}
		got := map[string]int{}
		for _, s := range barSegment.FindAllStringSubmatch(b[3], -1) {
			got[s[1]], _ = strconv.Atoi(s[2])
		}
		total := 0
		for o, n := range want {
			total += n
			if got[o] != n {
				t.Errorf("bar %s: %s %d, summary.json %d", name, o, got[o], n)
			}
		}
		if b[2] != strconv.Itoa(total) || !strings.Contains(b[3], fmt.Sprintf(">%d rows<", total)) {
			t.Errorf("bar %s: labelled %s rows, summary.json %d", name, b[2], total)
		}
	}
	if !strings.Contains(dom, `id="legend"`) || !strings.Contains(dom, `role="img"`) || !strings.Contains(dom, `id="target-bars-desc"`) {
		t.Error("the bars lack their legend or their text for screen readers")
	}
}
