package job

import (
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// reportOut is the report stage: where the report goes, and how the input
// is read again to replay it.
type reportOut struct {
	dir      string
	excel    bool
	actor    string
	parse    ParseOptions
	includes func(batch.Op) bool
	// create is reports.CreateWith (nil); tests make it fail.
	create func(dir string, h batch.Header, o reports.Options) (*reports.Writer, error)
}

// write replays the input against the recorded outcomes into the report
// directory.
func (ro reportOut) write(inputPath string, infos batch.Targets, idx *batch.OutcomeIndex,
	targets map[string]*batch.Target, notRun string, run reports.Run) (*reports.Summary, error) {
	var of batch.OutcomeSource
	if idx != nil {
		of = idx.Of
	}
	return ro.writeFrom(inputPath, infos, of, targets, notRun, run)
}

// writeWith writes a report whose every row's outcome comes from fn.
func (ro reportOut) writeWith(inputPath string, infos batch.Targets, fn func(batch.Row) (batch.Result, bool),
	targets map[string]*batch.Target, run reports.Run) (*reports.Summary, error) {
	of := func(row batch.Row) (batch.Result, bool, error) {
		res, ok := fn(row)
		return res, ok, nil
	}
	return ro.writeFrom(inputPath, infos, of, targets, "not sent", run)
}

func (ro reportOut) writeFrom(inputPath string, infos batch.Targets, of batch.OutcomeSource,
	targets map[string]*batch.Target, notRun string, run reports.Run) (*reports.Summary, error) {
	p, done, err := openParser(inputPath, infos, ro.parse)
	if err != nil {
		return nil, err
	}
	defer done()
	run.Actor = ro.actor
	create := ro.create
	if create == nil {
		create = reports.CreateWith
	}
	w, err := create(ro.dir, p.Header(), reports.Options{Excel: ro.excel, Repeatable: repeatable(targets)})
	if err != nil {
		return nil, err
	}
	err = batch.ReplayWith(p, of, ro.includes, notRun, w.Write)
	sum, cerr := w.Close(run)
	if err != nil {
		return nil, err
	}
	return sum, cerr
}

// repeatable says which rows' requests are safe to send again: the
// adapter's word. Nil targets: reports' default (all but toggles).
func repeatable(targets map[string]*batch.Target) func(string, batch.Action) bool {
	if targets == nil {
		return nil
	}
	return func(target string, a batch.Action) bool {
		t, ok := targets[target]
		return !ok && a != batch.ToggleStatus || ok && t.MayResend(a)
	}
}

// identities are the targets' vendors' ways of comparing user cells.
func identities(infos batch.Targets) map[string]batch.Identity {
	ids := map[string]batch.Identity{}
	for name, t := range infos {
		if t.Identity != nil {
			ids[name] = t.Identity
		}
	}
	return ids
}
