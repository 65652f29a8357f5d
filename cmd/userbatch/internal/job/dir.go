package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// DryRunDir is where a dry run's files go when a run starts in the same
// report directory: the README's flow (dry run, then the same command
// without --dry-run) works, and a real run's files are never touched.
const DryRunDir = "dry-run"

// InvalidDir is where the files of a run refused for its invalid rows go
// when a run starts in the same directory: fix the rows and run again.
const InvalidDir = "invalid"

// journalPlan is what the report directory's journal allows, checked
// before anything is validated or sent.
type journalPlan struct {
	path   string
	header batch.JournalHeader
	// state is the journal so far, for --resume; nil starts a new one.
	state *batch.JournalState
	// restart replaces a journal that died before its header.
	restart bool
	// fresh is true when the directory held nothing of a run: a report of
	// a refused file may be written there.
	fresh bool
}

// dirRules are what a report directory's rules depend on.
type dirRules struct {
	dir            string
	resume, dryRun bool
	now            func() time.Time // names a new run
}

func (o *Options) dirRules() dirRules {
	return dirRules{dir: o.ReportDir, resume: o.Resume, dryRun: o.DryRun, now: o.Now}
}

// header is the journal's header for this run over in.
func (o *Options) header(in *input) batch.JournalHeader {
	return batch.JournalHeader{InputSHA256: in.sha256, Targets: o.Config.Names(),
		ConfigSHA256: o.Config.Fingerprint(), DryRun: o.DryRun, Shard: o.Shard.String()}
}

// planJournal applies the rules of a report directory: a new run needs a
// directory with no run in it (a finished dry run, a held run and a run
// refused for invalid rows are moved aside to dry-run/, held/, invalid/);
// --resume needs the journal of the same input, config and shard. It may
// move such a run's files; it changes nothing else.
func planJournal(o dirRules, h batch.JournalHeader) (*journalPlan, error) {
	plan := &journalPlan{path: filepath.Join(o.dir, batch.JournalName), header: h}
	st, err := batch.ReadJournal(plan.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return plan.forEmpty(o)
	case errors.Is(err, batch.ErrNoHeader) && o.resume:
		plan.restart = true // the run died before it sent anything
		plan.header.RunID = newRunID(o.now())
		return plan, nil
	case err != nil:
		return nil, BadInput("%s: %v", o.dir, err)
	}
	if a, ok := asideOf(st.Header); ok {
		// A held or refused run sent nothing: its files are set aside,
		// never resumed.
		if o.resume {
			return nil, BadInput("--resume: the run in %s %s and sent nothing: there is nothing to resume. %s (the %s run's files move to %s)", o.dir, a.why, a.next, a.name, filepath.Join(o.dir, a.dir))
		}
		if err := setAside(o.dir, a.dir); err != nil {
			return nil, BadInput("moving the %s run's files to %s: %v", a.name, a.dir, err)
		}
		return plan.forEmpty(o)
	}
	if st.Header.DryRun && !o.dryRun && o.resume {
		return nil, BadInput("--resume: the run in %s is a dry run, which sent nothing: there is nothing to resume. Run the same command without --resume to apply (the dry run's files move to %s)", o.dir, filepath.Join(o.dir, DryRunDir))
	}
	if st.Header.DryRun && !o.resume {
		// A dry run sent nothing: its files are set aside, never resumed
		// into a real run.
		if err := setAside(o.dir, DryRunDir); err != nil {
			return nil, BadInput("moving the earlier dry run's files to %s: %v", DryRunDir, err)
		}
		return plan.forEmpty(o)
	}
	if !o.resume {
		return nil, BadInput("%s holds a run already (journal.jsonl): use --resume to continue it, or another -o directory", o.dir)
	}
	if err := sameRun(st.Header, plan.header); err != nil {
		return nil, BadInput("--resume refused: %v", err)
	}
	plan.header.RunID = st.Header.RunID
	if plan.header.RunID == "" { // a journal from before run ids
		plan.header.RunID = st.Header.CreatedAt.UTC().Format("20060102T150405Z")
	}
	plan.state = st
	return plan, nil
}

// aside is a run that sent nothing and whose files the next run in its
// directory sets aside: where, and what to tell a --resume.
type aside struct{ dir, name, why, next string }

func asideOf(h batch.JournalHeader) (aside, bool) {
	switch {
	case h.Invalid:
		return aside{InvalidDir, "refused", "was refused for invalid rows", "Fix the rows, then run the same command without --resume"}, true
	case h.Held:
		return aside{HeldDir, "held", "was held by a guard", "Run the same command without --resume"}, true
	}
	return aside{}, false
}

// forEmpty checks that a directory without a journal holds nothing else.
func (p *journalPlan) forEmpty(o dirRules) (*journalPlan, error) {
	names, err := runFiles(o.dir)
	if err != nil {
		return nil, BadInput("report directory: %v", err)
	}
	if len(names) > 0 {
		return nil, BadInput("%s holds files but no journal of a run (%s): userbatch does not write over them; use an empty or new -o directory", o.dir, listNames(names))
	}
	if o.resume {
		return nil, BadInput("--resume: %s holds no journal: nothing to resume (run without --resume to start)", o.dir)
	}
	p.fresh = true
	p.header.RunID = newRunID(o.now())
	return p, nil
}

// runFiles lists dir's entries but the lock and the set-aside runs.
func runFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Name() != LockName && e.Name() != DryRunDir && e.Name() != HeldDir && e.Name() != InvalidDir {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func listNames(names []string) string {
	if len(names) > 5 {
		return fmt.Sprintf("%v and %d more", names[:5], len(names)-5)
	}
	return fmt.Sprint(names)
}

// setAside moves a run's files that sent nothing (a dry run's, a held
// run's) into dir/name, replacing older ones there.
func setAside(dir, name string) error {
	names, err := runFiles(dir)
	if err != nil {
		return err
	}
	aside := filepath.Join(dir, name)
	if err := os.RemoveAll(aside); err != nil {
		return err
	}
	if err := os.Mkdir(aside, 0o700); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(aside, n)); err != nil {
			return err
		}
	}
	return nil
}

// markRefused writes the journal of a run refused for its invalid rows: a
// header alone, which the next run there reads to set the files aside.
func (p *journalPlan) markRefused() error {
	h := p.header
	h.Invalid = true
	j, err := batch.CreateJournal(p.path, h)
	if err != nil {
		return err
	}
	return j.Close()
}

// open starts, restarts or continues the journal.
func (p *journalPlan) open() (*batch.Journal, error) {
	switch {
	case p.restart:
		return batch.RestartJournal(p.path, p.header)
	case p.state != nil:
		return batch.AppendJournal(p.path)
	}
	return batch.CreateJournal(p.path, p.header)
}

func sameRun(got, want batch.JournalHeader) error {
	switch {
	case got.InputSHA256 != want.InputSHA256:
		return fmt.Errorf("the input file is not the one this journal was started with (SHA-256 %.12s…, now %.12s…): resume with the same file, or use another -o directory", got.InputSHA256, want.InputSHA256)
	case !slices.Equal(got.Targets, want.Targets):
		return fmt.Errorf("the config's targets changed (journal: %v, now: %v)", got.Targets, want.Targets)
	case got.ConfigSHA256 != want.ConfigSHA256:
		return fmt.Errorf("the config changed for the same targets (vendor, base_url, app_id or email differ): resume with the config the run started with")
	case got.Shard != want.Shard:
		return fmt.Errorf("the journal is for %s; this run is for %s", shardName(got.Shard), shardName(want.Shard))
	case got.DryRun != want.DryRun:
		return fmt.Errorf("the journal is from a run with dry-run=%v; this one has dry-run=%v", got.DryRun, want.DryRun)
	}
	return nil
}

func shardName(s string) string {
	if s == "" {
		return "the whole file (no --shard)"
	}
	return "shard " + s
}
