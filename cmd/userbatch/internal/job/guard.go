package job

import (
	"bufio"
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// HeldDir is where a held run's report goes when a run starts in the same
// directory.
const HeldDir = "held"

// guarded reports whether the run must know what would change before its
// first write: a limit, a canary, or a person to ask.
func (o *Options) guarded() bool {
	if o.MaxChanges > 0 || o.Canary > 0 || o.asks() {
		return true
	}
	for _, t := range o.Config.Targets {
		if t.MaxChanges > 0 {
			return true
		}
	}
	return false
}

// asks reports whether a person at a terminal confirms the changes.
func (o *Options) asks() bool { return o.Terminal && !o.Yes && !o.DryRun }

// holdReason checks the plan against the limits: "" lets the run go on.
func (o *Options) holdReason(p *rowPlan) string {
	total, byTarget := p.changing()
	if o.MaxChanges > 0 && total > o.MaxChanges {
		return fmt.Sprintf("%s would change, more than --max-changes %d", batch.CountRows(total), o.MaxChanges)
	}
	for _, name := range slices.Sorted(maps.Keys(byTarget)) {
		if t := o.Config.Targets[name]; t != nil && t.MaxChanges > 0 && byTarget[name] > t.MaxChanges {
			return fmt.Sprintf("%s would change on target %s, more than its max_changes %d", batch.CountRows(byTarget[name]), name, t.MaxChanges)
		}
	}
	return ""
}

// guard decides, from the plan, whether the run may write. It returns nil
// to go on, or the exit-4 error after writing the held report.
func (r *runState) guard(p *rowPlan) error {
	reason := r.holdReason(p)
	if reason == "" && r.asks() {
		reason = r.confirm(p)
	}
	if reason == "" {
		return nil
	}
	total, _ := p.changing()
	r.printf("userbatch: HELD: %s. Nothing was sent.\n%s", reason, p.table())
	r.printf("To go on, either raise the limit:\n  %s\nor review the change first:\n  %s\n", r.raiseCommand(total), r.reviewCommands())
	if r.plan.state != nil {
		// A resumed run keeps its journal and report as they are: the
		// same command with a raised limit resumes it.
		return &Error{Code: reports.ExitHeld}
	}
	if err := r.writeHeld(p, reason); err != nil {
		return stoppedErr(fmt.Errorf("held (%s), and the report could not be written: %v", reason, err))
	}
	fmt.Fprintf(r.Stdout, "report: %s\n", r.ReportDir)
	r.Log.Warn().Str("reason", reason).Int("would_change", total).Msg("held by a guard: nothing was sent")
	return &Error{Code: reports.ExitHeld}
}

// confirm shows what would change and asks the person to type the number
// of changes; anything else declines.
func (r *runState) confirm(p *rowPlan) string {
	total, _ := p.changing()
	if total == 0 {
		return ""
	}
	r.printf("About to change %d users:\n%s%s", total, p.table(), r.firstRows(p, 10))
	r.printf("Type %d to send these changes (anything else stops, sending nothing): ", total)
	line, _ := bufio.NewReader(r.Stdin).ReadString('\n')
	if strings.TrimSpace(line) == strconv.Itoa(total) {
		return ""
	}
	return fmt.Sprintf("not confirmed (typed %q, not %d)", strings.TrimSpace(line), total)
}

// firstRows lists the first n rows that would change.
func (r *runState) firstRows(p *rowPlan, n int) string {
	var b strings.Builder
	b.WriteString("First rows:\n")
	_ = eachRow(r.in.path, r.infos, r.Parse, func(row batch.Row) error {
		if n > 0 && row.Valid() && p.of(row.Index).writes() {
			fmt.Fprintf(&b, "  line %d: %s %s %s\n", row.Line, row.Op.Target, row.Op.Action, row.Op.User)
			n--
		}
		return nil
	})
	return b.String()
}

var maxChangesFlag = regexp.MustCompile(`\s--max-changes[ =]\S+`)

// raiseCommand is the same command with a limit that lets it through.
func (r *runState) raiseCommand(total int) string {
	cmd := maxChangesFlag.ReplaceAllString(r.resumeCommandBase(), "")
	return fmt.Sprintf("%s --max-changes %d   (and raise max_changes in %s where a target's limit held it)", cmd, total, cmp.Or(r.ConfigPath, "targets.yaml"))
}

func (r *runState) reviewCommands() string {
	planDir := strings.TrimRight(r.ReportDir, "/") + "-plan"
	return fmt.Sprintf("userbatch plan -c %s -o %s %s   # then read %s/plan.csv, then\n  userbatch apply -c %s -o %s %s",
		cmp.Or(r.ConfigPath, "targets.yaml"), planDir, r.Input, planDir, cmp.Or(r.ConfigPath, "targets.yaml"), r.ReportDir+"-applied", planDir)
}

func (o *Options) resumeCommandBase() string {
	if o.Command == "" {
		return "userbatch run -c " + cmp.Or(o.ConfigPath, "targets.yaml") + " -o " + o.ReportDir + " " + o.Input
	}
	return o.Command
}

// writeHeld writes the report of a held run, every row as the plan left it
// and the writing ones skipped, and a journal that marks the directory as a
// held run's: never resumed, set aside by the next run there.
func (r *runState) writeHeld(p *rowPlan, reason string) error {
	h := r.plan.header
	h.Held = true
	create := batch.CreateJournal
	if r.plan.restart {
		create = batch.RestartJournal
	}
	j, err := create(r.plan.path, h)
	if err != nil {
		return err
	}
	if err := j.Close(); err != nil {
		return err
	}
	now := r.now()
	sum, err := writeReportWith(r.Options, r.in.path, r.infos, heldOutcomes(p, reason), r.targets,
		reports.Run{StartedAt: now, FinishedAt: now, ExitCode: reports.ExitHeld, Processes: 1})
	r.done.summary, r.done.held = sum, true
	return err
}

// heldOutcomes gives each row of a held run its outcome from the plan.
func heldOutcomes(p *rowPlan, reason string) func(batch.Row) (batch.Result, bool) {
	return func(row batch.Row) (batch.Result, bool) {
		res := batch.Result{Index: row.Index, Line: row.Line, Target: row.Op.Target, User: row.Op.User, Action: row.Op.Action}
		switch c := p.of(row.Index); c {
		case changeNone:
			return res, false
		case changeNotDue:
			res.Outcome, res.Detail = batch.NotDue, "not due"
		case changeSkipped:
			res.Outcome, res.Detail = batch.Skipped, "protected user: never sent"
		default:
			res.Outcome = batch.Skipped
			res.Detail = fmt.Sprintf("held: %s; nothing was sent (this row: %s)", reason, planWords[c])
		}
		return res, true
	}
}

// checkPlanAge refuses a plan older than maxAge.
func checkPlanAge(created time.Time, maxAge time.Duration, now time.Time) error {
	if maxAge > 0 && now.Sub(created) > maxAge {
		return fmt.Errorf("the plan was made %s ago (%s), longer than --max-age %s: make a new plan", now.Sub(created).Round(time.Second), created.UTC().Format(time.RFC3339), maxAge)
	}
	return nil
}
