package reports

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/userbatch/userbatch/batch"
)

// HTMLFile is the report page's final name.
const HTMLFile = "report.html"

// The bounds of the page's error table: distinct messages kept, examples
// kept per message, and the length of a message as shown. Rows past the
// bounds are still counted, under "other messages".
const (
	maxErrorGroups = 50
	maxExamples    = 5
	maxMessageLen  = 500
)

// errorKey groups rows that did not end well by what went wrong.
type errorKey struct {
	Outcome batch.Outcome
	Code    string
	Message string
}

// errorGroup is one line of the page's error table.
type errorGroup struct {
	errorKey
	Rows     int
	Examples []example
}

type example struct {
	Line   int
	Target string
	User   string
}

// page gathers, row by row and in bounded memory, what report.html shows
// beyond the summary: errors grouped by message, and the finish times of
// the rows sent.
type page struct {
	groups    map[errorKey]*errorGroup
	otherRows int // rows whose message did not fit in maxErrorGroups
	times     timeline
	checks    []checkRow // the first check.csv rows
	checkRows int
	held      string // why a held run was held, from its first held row
}

func newPage() *page {
	return &page{groups: map[errorKey]*errorGroup{}}
}

// add counts one row. sent is whether a request went out for it.
func (p *page) add(line int, target, user string, outcome batch.Outcome, code, detail, message string, sent bool, finished time.Time) {
	if sent && !finished.IsZero() {
		p.times.add(finished)
	}
	if done(outcome) {
		return
	}
	if p.held == "" {
		p.held = heldReason(outcome, detail)
	}
	text := message
	if text == "" {
		text = detail
	}
	k := errorKey{Outcome: outcome, Code: code, Message: truncate(text, maxMessageLen)}
	g, ok := p.groups[k]
	if !ok {
		if len(p.groups) >= maxErrorGroups {
			p.otherRows++
			return
		}
		g = &errorGroup{errorKey: k}
		p.groups[k] = g
	}
	g.Rows++
	if len(g.Examples) < maxExamples {
		g.Examples = append(g.Examples, example{Line: line, Target: target, User: truncate(user, 100)})
	}
}

// addResult counts a row as the Writer sees it.
func (p *page) addResult(line int, res batch.Result) {
	p.add(line, res.Target, res.User, res.Outcome, res.ErrorCode, res.Detail, res.Message, res.Attempts > 0, res.FinishedAt)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// pageView is what the template shows.
type pageView struct {
	S         *Summary
	Outcomes  []outcomeCell
	Targets   []countsLine
	Actions   []countsLine
	Errors    []*errorGroup
	OtherRows int
	Chart     chart
	Files     []string
	Verdict   verdict
	Bars      targetBars
	Checks    []checkRow
	CheckMore int // check.csv rows not listed
}

type outcomeCell struct {
	Outcome batch.Outcome
	Rows    int
}

type countsLine struct {
	Name  string
	Total int
	Cells []outcomeCell
}

func (p *page) view(s *Summary) pageView {
	v := pageView{S: s, OtherRows: p.otherRows,
		Files: []string{ReportFile, FailedFile, CheckFile, UndoFile, SummaryFile}}
	order := s.outcomeOrder()
	v.Outcomes = cells(s.Outcomes, order)
	v.Targets = lines(s.ByTarget, order)
	v.Actions = lines(s.ByAction, order)
	for _, g := range p.groups {
		v.Errors = append(v.Errors, g)
	}
	slices.SortFunc(v.Errors, func(a, b *errorGroup) int {
		if c := cmp.Compare(b.Rows, a.Rows); c != 0 {
			return c
		}
		return cmp.Compare(a.Examples[0].Line, b.Examples[0].Line)
	})
	v.Chart = newChart(p.times.buckets())
	v.Verdict = verdictOf(s, p.held)
	v.Bars = newTargetBars(v.Targets)
	v.Checks, v.CheckMore = p.checks, p.checkRows-len(p.checks)
	return v
}

func cells(c Counts, order []batch.Outcome) []outcomeCell {
	out := make([]outcomeCell, len(order))
	for i, o := range order {
		out[i] = outcomeCell{Outcome: o, Rows: c[o]}
	}
	return out
}

func lines(m map[string]Counts, order []batch.Outcome) []countsLine {
	out := make([]countsLine, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, countsLine{Name: name, Total: sum(m[name]), Cells: cells(m[name], order)})
	}
	return out
}

// chart is the throughput chart: one bar per timeline bucket.
type chart struct {
	Width, Height int
	Bars          []bar
	MaxRate       float64
	From, To      string
	BucketS       int64
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

const chartWidth, chartHeight = 960, 200

func newChart(bs []bucket) chart {
	c := chart{Width: chartWidth, Height: chartHeight}
	if len(bs) == 0 {
		return c
	}
	for _, b := range bs {
		c.MaxRate = max(c.MaxRate, b.Rate)
	}
	step := float64(chartWidth) / float64(len(bs))
	for i, b := range bs {
		h := 0.0
		if c.MaxRate > 0 {
			h = b.Rate / c.MaxRate * chartHeight
		}
		c.Bars = append(c.Bars, bar{X: float64(i) * step, Y: chartHeight - h, W: max(step-1, 1), H: h,
			Label: fmt.Sprintf("%s: %s, %.1f rows/s", b.Start.Format(time.RFC3339), batch.CountRows(int(b.Rows)), b.Rate)})
	}
	if len(bs) > 1 {
		c.BucketS = int64(bs[1].Start.Sub(bs[0].Start) / time.Second)
	} else {
		c.BucketS = 1
	}
	c.From = bs[0].Start.Format(time.RFC3339)
	c.To = bs[len(bs)-1].Start.Add(time.Duration(c.BucketS) * time.Second).Format(time.RFC3339)
	return c
}

// writeHTML renders the page. Everything that came from the input or a
// vendor goes through html/template's contextual escaping.
func (p *page) writeHTML(w io.Writer, s *Summary) error {
	return pageTemplate().Execute(w, p.view(s))
}

// pageTemplate is parsed on first use, not at start: the parse is about a
// millisecond, which every start of the binary paid, page or not.
var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New(HTMLFile).Funcs(template.FuncMap{
		"num":  func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
		"px":   func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
		"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	}).Parse(pageHTML))
})

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>userbatch report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { text-align: left; }
th:first-child, td.name, td.message, td.examples { text-align: left; }
td.message { max-width: 40em; overflow-wrap: anywhere; white-space: pre-wrap; }
.exit-0 { color: #070; } .exit-1, .exit-2, .exit-3 { color: #b00; }
#throughput, #target-bars { border: 1px solid #ccc; background: #fafafa; max-width: 100%; height: auto; }
#throughput rect { fill: #4a7ab5; }
nav a { margin-right: 1em; }
.verdict { font-size: 1.35em; font-weight: 600; padding: 0.6em 0.9em; border-left: 0.4em solid; margin: 0.5em 0 1em; }
.tone-ok { border-color: #2e7d32; background: #edf7ee; }
.tone-attention { border-color: #ef6c00; background: #fff4e5; }
.tone-stopped { border-color: #c62828; background: #fdecea; }
td.fix { text-align: left; max-width: 24em; }
#target-bars text { font: 13px system-ui, sans-serif; }
#target-bars text.in-bar { font-weight: 600; }
#legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 1.2em; }
#legend .swatch { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: -0.1em; margin-right: 0.3em; }
</style>
</head>
<body>
<h1>userbatch report</h1>
<p id="verdict" class="verdict tone-{{.Verdict.Tone}}" role="status">{{.Verdict.Text}}</p>
<nav>{{range .Files}}<a href="{{.}}">{{.}}</a> {{end}}</nav>

<h2>What needs a person</h2>
{{if or .Errors .OtherRows}}<p>Rows that did not end applied or already, grouped by what went wrong, with what to do.</p>
<table id="errors">
<tr><th>rows</th><th>outcome</th><th>code</th><th>message</th><th>what to do</th><th>example lines</th></tr>
{{range .Errors}}<tr class="error"><td class="error-count">{{.Rows}}</td><td class="name">{{.Outcome}}</td><td class="name">{{.Code}}</td><td class="message">{{.Message}}</td><td class="fix">{{.Fix}}</td><td class="examples">{{range $i, $e := .Examples}}{{if $i}}, {{end}}line {{$e.Line}} ({{$e.Target}} <span class="user">{{$e.User}}</span>){{end}}</td></tr>
{{end}}{{if .OtherRows}}<tr class="error-other"><td class="error-count" id="other-error-rows">{{.OtherRows}}</td><td class="message" colspan="5">rows with other messages (only the first 50 messages are listed; report.csv has every row)</td></tr>
{{end}}</table>{{else}}<p id="no-errors">Nothing: every row ended applied, already, planned or not due.</p>{{end}}
{{if .Checks}}<h3>Check by hand: check.csv</h3>
<p>Whether these changes reached the vendor, or were this run's, is not known, and they are not safe to send twice: look at each user at the vendor; never re-run them blindly.</p>
<table id="check-rows">
<tr><th>line</th><th>target</th><th>user</th><th>why</th></tr>
{{range .Checks}}<tr class="check"><td>{{.Line}}</td><td class="name">{{.Target}}</td><td class="name"><span class="user">{{.User}}</span></td><td class="message">{{.Reason}}</td></tr>
{{end}}{{if .CheckMore}}<tr><td colspan="4" class="message" id="check-more">and {{.CheckMore}} more: check.csv lists every one</td></tr>
{{end}}</table>{{end}}

<h2>Outcomes by target</h2>
{{with .Bars}}{{if .Rows}}<svg id="target-bars" xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-labelledby="target-bars-title target-bars-desc">
<title id="target-bars-title">Outcomes by target: each bar is one target's rows</title>
<desc id="target-bars-desc">{{.Text}}</desc>
{{range .Rows}}<g class="target-bar" data-target="{{.Name}}" data-rows="{{.Total}}">
<text x="{{$.Bars.NameX}}" y="{{.TextY}}" text-anchor="end">{{.Name}}</text>
{{range .Segments}}<rect x="{{px .X}}" y="{{.Y}}" width="{{px .W}}" height="{{$.Bars.BarH}}" fill="{{.Colour}}" data-outcome="{{.Outcome}}" data-rows="{{.Rows}}"><title>{{.Target}}: {{.Rows}} {{.Outcome}}</title></rect>
{{if .Label}}<text class="in-bar" x="{{px .MidX}}" y="{{.TextY}}" fill="{{.Ink}}" text-anchor="middle" aria-hidden="true">{{.Rows}}</text>
{{end}}{{end}}<text x="{{$.Bars.TotalX}}" y="{{.TextY}}">{{.Total}} rows</text>
</g>
{{end}}</svg>
<ul id="legend" aria-label="colours of the outcomes">{{range .Legend}}<li><span class="swatch" style="background: {{.Colour}}"></span>{{.Outcome}}</li>{{end}}</ul>
{{if .Hidden}}<p id="bars-hidden">{{.Hidden}} more targets are in the table below.</p>{{end}}{{else}}<p id="no-bars">No rows.</p>{{end}}{{end}}

<h2>Totals</h2>
<table id="totals">
<tr><th>rows</th><td id="total-rows">{{.S.Rows}}</td></tr>
<tr><th>exit code</th><td id="exit-code" class="exit-{{.S.ExitCode}}">{{.S.ExitCode}}</td></tr>
<tr><th>sent</th><td id="sent">{{.S.Sent}}</td></tr>
{{if or .S.Reads .S.Writes}}<tr><th>reads (requests)</th><td id="reads">{{.S.Reads}}</td></tr>
<tr><th>writes (requests)</th><td id="writes">{{.S.Writes}}</td></tr>
{{end}}<tr><th>throughput (requests/s)</th><td id="ops-per-s">{{num .S.OpsPerS}}</td></tr>
<tr><th>duration (s)</th><td id="duration-s">{{num .S.DurationS}}</td></tr>
<tr><th>attempts</th><td id="attempts">{{.S.Attempts}}</td></tr>
<tr><th>retries</th><td id="retries">{{.S.Retries}}</td></tr>
<tr><th>processes</th><td id="processes">{{.S.Processes}}</td></tr>
{{with .S.Actor}}<tr><th>run by</th><td id="actor" class="name">{{.}}</td></tr>
{{end}}<tr><th>started</th><td id="started-at">{{time .S.StartedAt}}</td></tr>
<tr><th>finished</th><td id="finished-at">{{time .S.FinishedAt}}</td></tr>
<tr><th>stopped early</th><td id="stopped">{{.S.Stopped}}</td></tr>
<tr><th>dry run</th><td id="dry-run">{{.S.DryRun}}</td></tr>
<tr><th>rows in failed.csv (safe to run again)</th><td id="failed-csv-rows">{{.S.FileRows.Failed}}</td></tr>
<tr><th>rows in check.csv (check by hand)</th><td id="check-csv-rows">{{.S.FileRows.Check}}</td></tr>
<tr><th>rows in undo.csv</th><td id="undo-csv-rows">{{.S.FileRows.Undo}}</td></tr>
</table>

{{with .S.Plan}}<h2>Plan</h2>
<table id="plan">
<tr><th>would change</th><td id="plan-would-change">{{.WouldChange}}</td></tr>
<tr><th>no change (already as asked)</th><td id="plan-no-change">{{.NoChange}}</td></tr>
<tr><th>unknown state</th><td id="plan-unknown-state">{{.UnknownState}}</td></tr>
<tr><th>about, at the configured rates (s)</th><td id="plan-seconds">{{num .Seconds}}</td></tr>
</table>
{{end}}
<h2>Outcomes</h2>
<table id="outcomes">
<tr>{{range .Outcomes}}<th>{{.Outcome}}</th>{{end}}</tr>
<tr>{{range .Outcomes}}<td data-outcome="{{.Outcome}}">{{.Rows}}</td>{{end}}</tr>
</table>

<h2>By target</h2>
<table id="by-target">
<tr><th>target</th><th>rows</th>{{range .Outcomes}}<th>{{.Outcome}}</th>{{end}}</tr>
{{range .Targets}}<tr data-target="{{.Name}}"><td class="name">{{.Name}}</td><td class="total">{{.Total}}</td>{{range .Cells}}<td data-outcome="{{.Outcome}}">{{.Rows}}</td>{{end}}</tr>
{{end}}</table>

<h2>By action</h2>
<table id="by-action">
<tr><th>action</th><th>rows</th>{{range .Outcomes}}<th>{{.Outcome}}</th>{{end}}</tr>
{{range .Actions}}<tr data-action="{{.Name}}"><td class="name">{{.Name}}</td><td class="total">{{.Total}}</td>{{range .Cells}}<td data-outcome="{{.Outcome}}">{{.Rows}}</td>{{end}}</tr>
{{end}}</table>

<h2>Latency (ms, rows sent)</h2>
<table id="latency">
<tr><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>
<tr><td id="latency-p50">{{num .S.LatencyMS.P50}}</td><td id="latency-p95">{{num .S.LatencyMS.P95}}</td><td id="latency-p99">{{num .S.LatencyMS.P99}}</td><td id="latency-max">{{num .S.LatencyMS.Max}}</td></tr>
</table>

<h2>Throughput over time</h2>
{{with .Chart}}{{if .Bars}}<p>Rows sent per second, by the time they finished, from {{.From}} to {{.To}} ({{.BucketS}} s a bar; highest {{printf "%.1f" .MaxRate}} rows/s).</p>
<svg id="throughput" xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="rows sent per second over time">
{{range .Bars}}<rect x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}"><title>{{.Label}}</title></rect>
{{end}}</svg>{{else}}<p id="no-throughput">No row was sent.</p>{{end}}{{end}}
</body>
</html>
`
