package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// HeldDir is where a held run's report goes when a run starts in the same
// directory.
const HeldDir = "held"

// guards are what may hold a run before its first write: the limits,
// the canary, and the person asked to confirm.
type guards struct {
	maxChanges int
	// limits are the targets' max_changes, where set.
	limits      map[string]int
	canaryCount int
	// prompt asks the person; nil when nobody is asked (no terminal,
	// --yes, a dry run).
	prompt *Prompt
}

// guards are the options' limits, canary and question.
func (o *Options) guards() guards {
	g := guards{maxChanges: o.MaxChanges, canaryCount: o.Canary, limits: map[string]int{}}
	for name, t := range o.Config.Targets {
		if t.MaxChanges > 0 {
			g.limits[name] = t.MaxChanges
		}
	}
	if !o.Yes && !o.DryRun {
		g.prompt = o.Prompt
	}
	return g
}

// guarded reports whether the run must know what would change before its
// first write: a limit, a canary, or a person to ask.
func (g guards) guarded() bool {
	return g.maxChanges > 0 || g.canaryCount > 0 || g.prompt != nil || len(g.limits) > 0
}

// holdReason checks the plan against the limits: "" lets the run go on.
func (g guards) holdReason(p *rowPlan) string {
	total, byTarget := p.changing()
	if g.maxChanges > 0 && total > g.maxChanges {
		return fmt.Sprintf("%s would change, more than --max-changes %d", batch.CountRows(total), g.maxChanges)
	}
	for _, name := range slices.Sorted(maps.Keys(byTarget)) {
		if limit := g.limits[name]; limit > 0 && byTarget[name] > limit {
			return fmt.Sprintf("%s would change on target %s, more than its max_changes %d", batch.CountRows(byTarget[name]), name, limit)
		}
	}
	return ""
}

// guard decides, from the plan, whether the run may write. It returns nil
// to go on, or the exit-4 error after writing the held report (exit 3 when
// the person stopped the run at the question).
func (r *runState) guard(ctx context.Context, p *rowPlan) error {
	reason := r.holdReason(p)
	if reason == "" && r.prompt != nil {
		a := r.confirm(ctx, p)
		if a.stopped {
			r.printf("\nuserbatch: stopped at the question: nothing was sent.\n")
			return r.stopBeforeWrites()
		}
		if !a.ok {
			return r.notConfirmed(p, a.typed)
		}
	}
	if reason == "" {
		return nil
	}
	total, _ := p.changing()
	r.printf("userbatch: HELD: %s. Nothing was sent.\n%s", reason, p.table())
	r.printf("To go on, either raise the limit:\n  %s\nor review the change first:\n  %s\n", r.raiseCommand(total), r.reviewCommands())
	return r.hold(p, reason)
}

// hold ends a run a guard held: it writes the held report (a resumed run
// keeps its journal and report as they are) and gives the exit-4 error.
func (r *runState) hold(p *rowPlan, reason string) error {
	if r.plan.state != nil {
		// A resumed run keeps its journal and report as they are: the
		// same command with a raised limit resumes it.
		return &Error{Code: reports.ExitHeld}
	}
	if err := r.writeHeld(p, reason); err != nil {
		return stoppedErr(fmt.Errorf("held (%s), and the report could not be written: %v", reason, err))
	}
	total, _ := p.changing()
	fmt.Fprintf(r.stdout, "report: %s\n", r.out.dir)
	r.obs.Held(reason, total)
	return &Error{Code: reports.ExitHeld}
}

// notConfirmed says what a declined question did (nothing) and how to go
// on: the limits have nothing to do with it.
func (r *runState) notConfirmed(p *rowPlan, typed string) error {
	total, _ := p.changing()
	r.printf("userbatch: not confirmed (typed %q, not %d): nothing was sent.\n", typed, total)
	r.printf("To go on, run the same command again and type %d at the question, or send without a question:\n  %s --yes\n", total, r.resumeCommandBase())
	return r.hold(p, fmt.Sprintf("not confirmed (typed %q, not %d)", typed, total))
}

// stopBeforeWrites ends a run that a signal stopped before its first write
// (while reading state, or at the question) as a signal ends any run: the
// journal, the report with every row not started, exit 3, and the command
// that goes on. Nothing was sent.
func (r *runState) stopBeforeWrites() error {
	j, err := r.plan.open()
	if err == nil {
		err = j.Close()
	}
	if err != nil {
		return stoppedErr(fmt.Errorf("stopped before any change: nothing was sent; the journal could not be written (%v): run the same command again", err))
	}
	run := reports.Run{StartedAt: time.Now(), Stopped: true, Processes: 1}
	if st := r.plan.state; st != nil {
		run.Processes = st.Runs + 1
		if !st.FirstStart.IsZero() {
			run.StartedAt = st.FirstStart
		}
	}
	run.FinishedAt = time.Now()
	return r.finish(run)
}

// confirm asks the person, when anything would change; a signal while
// they think stops at once.
func (r *runState) confirm(ctx context.Context, p *rowPlan) answer {
	total, _ := p.changing()
	if total == 0 {
		return answer{ok: true}
	}
	ctx, stop := r.untilSignal(ctx)
	a := r.prompt.Confirm(ctx, Question{Total: total, Table: p.table(), FirstRows: r.firstRows(p, 10)})
	a.stopped = stop() || a.stopped
	return a
}

// firstRows lists the first n rows that would change.
func (r *runState) firstRows(p *rowPlan, n int) string {
	var b strings.Builder
	b.WriteString("First rows:\n")
	// errEnough stops the pass once n rows are listed: the rest of a
	// 200,000-row file is not read for nothing.
	errEnough := errors.New("enough rows")
	_ = r.in.eachRow(r.infos, r.parse, func(row batch.Row) error {
		if n <= 0 {
			return errEnough
		}
		if row.Valid() && p.of(row.Index).writes() {
			fmt.Fprintf(&b, "  line %d: %s %s %s\n", row.Line, row.Op.Target, row.Op.Action, row.Op.User)
			n--
		}
		return nil
	})
	return b.String()
}

var maxChangesFlag = regexp.MustCompile(`\s--max-changes[ =]\S+`)

// howTo is what the messages need to give the exact command that goes on.
type howTo struct {
	command, configPath, input, reportDir string
	resume                                bool
}

// resumeCommand is the exact command that finishes this run.
func (h howTo) resumeCommand() string {
	if h.command == "" {
		return "the same command with --resume"
	}
	if h.resume {
		return h.command
	}
	return h.command + " --resume"
}

func (h howTo) resumeCommandBase() string {
	if h.command == "" {
		return "userbatch run -c " + cmp.Or(h.configPath, "targets.yaml") + " -o " + h.reportDir + " " + h.input
	}
	return h.command
}

// raiseCommand is the same command with a limit that lets it through.
func (h howTo) raiseCommand(total int) string {
	cmd := maxChangesFlag.ReplaceAllString(h.resumeCommandBase(), "")
	return fmt.Sprintf("%s --max-changes %d   (and raise max_changes in %s where a target's limit held it)", cmd, total, cmp.Or(h.configPath, "targets.yaml"))
}

func (h howTo) reviewCommands() string {
	planDir := strings.TrimRight(h.reportDir, "/") + "-plan"
	config := cmp.Or(h.configPath, "targets.yaml")
	return fmt.Sprintf("userbatch plan -c %s -o %s %s   # then read %s/plan.csv, then\n  userbatch apply -c %s -o %s %s",
		config, planDir, h.input, planDir, config, h.reportDir+"-applied", planDir)
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
	sum, err := r.out.writeWith(r.in.path, r.infos, heldOutcomes(p, reason), r.targets,
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
		case changeDuplicate:
			res.Outcome, res.Detail = batch.Skipped, fmt.Sprintf("duplicate of line %d", row.Op.DuplicateOf)
		default:
			res.Outcome = batch.Skipped
			res.Detail = reports.HeldDetail(reason, planWords[c])
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
