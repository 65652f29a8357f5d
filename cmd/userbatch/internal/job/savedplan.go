package job

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// The files of a plan directory.
const (
	PlanCSV   = "plan.csv"
	PlanJSON  = "plan.json"
	PlanInput = "input.csv" // the input as planned: apply sends from it
)

// PlanMeta is plan.json: what the plan was made from, and its counts.
type PlanMeta struct {
	// Input is the input file as given (absolute), "-" for stdin.
	Input        string    `json:"input"`
	InputSHA256  string    `json:"input_sha256"`
	ConfigSHA256 string    `json:"config_sha256"`
	Targets      []string  `json:"targets"`
	Shard        string    `json:"shard,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	Rows         int       `json:"rows"`
	WouldChange  int       `json:"would_change"`
	// Counts are rows by target, action and change.
	Counts planCounts `json:"counts"`
	// PlanSHA256 is the plan's own SHA-256: of plan.csv followed by this
	// file without this field. A reviewer can say which plan they read, and
	// apply refuses a plan that differs from what plan wrote.
	PlanSHA256 string `json:"plan_sha256"`
}

// SavedPlan is a plan directory as apply reads it.
type SavedPlan struct {
	Dir  string
	Meta PlanMeta
	rows *rowPlan
}

// MakePlan is `userbatch plan`: a dry run into o.ReportDir, then plan.csv,
// plan.json and a copy of the input beside it.
func MakePlan(ctx context.Context, o Options) error {
	if o.Input == "-" {
		return BadInput("plan needs an input file, not stdin: apply checks that the file has not changed since")
	}
	o.DryRun = true
	done, err := runRecorded(ctx, o)
	if code := Exit(err); code != reports.ExitOK && code != reports.ExitIncomplete {
		return err
	}
	lock, err := LockExistingDir(o.ReportDir)
	if err != nil {
		return badInputErr(err)
	}
	defer lock.Unlock()
	o.Parse.Repeats = done.repeats
	pf := planFiles{dir: o.ReportDir, input: o.Input, open: o.open, targets: o.Config.Infos(), parse: o.Parse,
		shard: o.Shard, now: o.Now()}
	if err := pf.write(); err != nil {
		return stoppedErr(fmt.Errorf("writing the plan: %v", err))
	}
	fmt.Fprintf(o.Stdout, "plan: %s (review %s, then: userbatch apply -c %s -o REPORT_DIR %s)\n"+
		"plan.csv is for reading: apply refuses an edited plan; to leave rows out, edit the input and run plan again\n",
		o.ReportDir, filepath.Join(o.ReportDir, PlanCSV), cmp.Or(o.ConfigPath, "targets.yaml"), o.ReportDir)
	return nil
}

// planFiles is what writing plan.csv and plan.json takes from the dry run
// into dir.
type planFiles struct {
	dir, input string
	open       opener
	targets    batch.Targets
	parse      ParseOptions // with the run's Repeats: the copy is the same bytes
	shard      batch.Shard
	now        time.Time
}

// write writes plan.csv and plan.json from the dry run's journal.
func (pf planFiles) write() error {
	st, err := batch.ReadJournal(filepath.Join(pf.dir, batch.JournalName))
	if err != nil {
		return err
	}
	idx, err := batch.OpenOutcomeIndex(filepath.Join(pf.dir, batch.JournalName))
	if err != nil {
		return err
	}
	defer idx.Close()
	copyPath := filepath.Join(pf.dir, PlanInput)
	if err := copyInput(pf.open.or(), pf.input, pf.dir, st.Header.InputSHA256); err != nil {
		return err
	}
	meta := PlanMeta{Input: absInput(pf.input), InputSHA256: st.Header.InputSHA256, ConfigSHA256: st.Header.ConfigSHA256,
		Targets: st.Header.Targets, Shard: st.Header.Shard, CreatedAt: pf.now.UTC()}
	rows := &rowPlan{}
	sum, err := pf.writeCSV(copyPath, idx, rows)
	if err != nil {
		return err
	}
	meta.Rows, meta.Counts = len(rows.changes), rows.counts
	meta.WouldChange, _ = rows.changing()
	if meta.PlanSHA256, err = meta.sum(sum); err != nil {
		return err
	}
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return reports.WriteFileAtomic(filepath.Join(pf.dir, PlanJSON), append(b, '\n'))
}

// sum is the plan's own SHA-256: of plan.csv (whose SHA-256 is csvSum)
// and of plan.json's fields but this one.
func (m PlanMeta) sum(csvSum []byte) (string, error) {
	m.PlanSHA256 = ""
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(csvSum)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeCSV writes plan.csv (the input's columns and `change`) and returns
// its SHA-256.
func (pf planFiles) writeCSV(copyPath string, idx *batch.OutcomeIndex, rows *rowPlan) ([]byte, error) {
	p, done, err := (&input{path: copyPath, open: pf.open}).parser(pf.targets, pf.parse)
	if err != nil {
		return nil, err
	}
	defer done()
	tmp, err := reports.CreatePartial(pf.dir, PlanCSV)
	if err != nil {
		return nil, err
	}
	defer tmp.Discard()
	h := sha256.New()
	w := csv.NewWriter(io.MultiWriter(tmp, h))
	_ = w.Write(neutralized(append(append([]string{}, p.Header().Names...), "change")))
	includes := func(op batch.Op) bool { return inShard(pf.shard, op) }
	err = batch.ReplayWith(p, idx.Of, includes, "not planned", func(row batch.Row, res batch.Result) error {
		rows.set(res)
		rec := append(padded(row.Record, len(p.Header().Names)), planWords[changeOf(res)])
		return w.Write(neutralized(rec))
	})
	w.Flush()
	if err = errors.Join(err, w.Error(), tmp.Close()); err != nil {
		return nil, err
	}
	return h.Sum(nil), tmp.Commit()
}

func padded(rec []string, n int) []string {
	out := make([]string, n)
	copy(out, rec)
	return out
}

func neutralized(rec []string) []string {
	for i, c := range rec {
		rec[i] = reports.Neutralize(c)
	}
	return rec
}

// LoadPlan reads a plan directory for apply, refusing (exit 2) a plan that
// no longer matches apply's arguments: another config, an input changed
// since, or, unless it resumes, a plan older than maxAge at now.
func LoadPlan(dir string, a Args, now time.Time, maxAge time.Duration) (*SavedPlan, error) {
	b, err := os.ReadFile(filepath.Join(dir, PlanJSON))
	if err != nil {
		return nil, BadInput("%s is not a plan directory (no %s): make one with userbatch plan", dir, PlanJSON)
	}
	sp := &SavedPlan{Dir: dir}
	if err := json.Unmarshal(b, &sp.Meta); err != nil {
		return nil, BadInput("%s: %v", filepath.Join(dir, PlanJSON), err)
	}
	if err := sp.check(a, now, maxAge); err != nil {
		return nil, err
	}
	rows, err := loadRows(&input{path: filepath.Join(dir, PlanInput), open: a.open}, dir, a.Config.Infos(), a.Parse)
	if err != nil {
		return nil, BadInput("reading the plan: %v", err)
	}
	sp.rows = rows
	return sp, nil
}

func (sp *SavedPlan) check(a Args, now time.Time, maxAge time.Duration) error {
	if err := sp.checkSum(); err != nil {
		return err
	}
	copyPath := filepath.Join(sp.Dir, PlanInput)
	in, err := openInputWith(copyPath, nil, a.open)
	if err != nil || in.sha256 != sp.Meta.InputSHA256 {
		return BadInput("the plan's copy of the input (%s) is missing or altered: make a new plan", copyPath)
	}
	if sp.Meta.Input != "-" && sp.Meta.Input != "" {
		orig, err := openInputWith(sp.Meta.Input, nil, a.open)
		if err != nil {
			return BadInput("the input the plan was made from (%s) is gone: %v; make a new plan", sp.Meta.Input, err)
		}
		if orig.sha256 != sp.Meta.InputSHA256 {
			return BadInput("the input file changed since the plan (%s: SHA-256 %.12s…, planned %.12s…): make a new plan", sp.Meta.Input, orig.sha256, sp.Meta.InputSHA256)
		}
	}
	if fp := a.Config.Fingerprint(); fp != sp.Meta.ConfigSHA256 {
		return BadInput("the config's targets changed since the plan (vendor, base_url, app_id or email differ, or targets were added or removed): make a new plan")
	}
	if !a.Resume {
		if err := checkPlanAge(sp.Meta.CreatedAt, maxAge, now); err != nil {
			return BadInput("%v", err)
		}
	}
	return nil
}

// checkSum refuses a plan.csv or plan.json that differs from what plan
// wrote: apply runs the plan that was made, and a reviewer who struck rows
// from plan.csv must not believe they are left out.
func (sp *SavedPlan) checkSum() error {
	path := filepath.Join(sp.Dir, PlanCSV)
	f, err := os.Open(path)
	if err != nil {
		return BadInput("%s: %v; make a new plan", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return BadInput("%s: %v; make a new plan", path, err)
	}
	sum, err := sp.Meta.sum(h.Sum(nil))
	if err != nil {
		return BadInput("%s: %v", filepath.Join(sp.Dir, PlanJSON), err)
	}
	if sum != sp.Meta.PlanSHA256 {
		return BadInput("%s or %s differs from what userbatch plan wrote: nothing was sent. "+
			"apply runs the plan exactly as it was made; plan.csv is for reading, and editing it changes nothing. "+
			"To leave rows out, remove them from the input file (%s), run userbatch plan again, review the new plan.csv, and apply that plan",
			PlanCSV, PlanJSON, cmp.Or(sp.Meta.Input, "the input"))
	}
	return nil
}

// loadRows reads the plan's word on every row from its journal. Only the
// rows' indexes matter: the input is read once, without looking for
// duplicates (they change no row's index).
func loadRows(in *input, dir string, infos batch.Targets, po ParseOptions) (*rowPlan, error) {
	idx, err := batch.OpenOutcomeIndex(filepath.Join(dir, batch.JournalName))
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	rows := &rowPlan{}
	po.Repeats = nil
	p, done, err := in.plain(infos, po)
	if err != nil {
		return nil, err
	}
	defer done()
	p.OpsOnly()
	err = p.Each(func(row batch.Row) error {
		res, ok, err := idx.Lookup(row.Op)
		if ok {
			rows.set(res)
		}
		return err
	})
	return rows, err
}

func absInput(path string) string {
	if path == "-" {
		return path
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// copyInput keeps the planned input beside the plan (0600), as PlanInput
// in dir, checking its SHA-256 as it copies: apply sends from exactly what
// was reviewed.
func copyInput(open opener, path, dir, want string) error {
	f, err := open(path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	tmp, err := reports.CreatePartial(dir, PlanInput)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), f)
	if err = errors.Join(err, tmp.Close()); err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != want {
		return fmt.Errorf("the input changed while it was planned")
	}
	return tmp.Commit()
}

// InputPath is the plan's copy of the input, which apply sends from.
func (sp *SavedPlan) InputPath() string { return filepath.Join(sp.Dir, PlanInput) }

// Shard is the shard the plan was made for.
func (sp *SavedPlan) Shard() (batch.Shard, error) {
	if sp.Meta.Shard == "" {
		return batch.Shard{}, nil
	}
	s, err := batch.ParseShard(sp.Meta.Shard)
	if err != nil {
		return s, BadInput("%s: %v", PlanJSON, err)
	}
	return s, nil
}
