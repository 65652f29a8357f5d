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
	// open reads the input (nil: os.Open).
	open opener
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
	p, done, err := (&input{path: inputPath, open: ro.open}).parser(infos, ro.parse)
	if err != nil {
		return nil, err
	}
	defer done()
	run.Actor = ro.actor
	create := ro.create
	if create == nil {
		create = reports.CreateWith
	}
	w, err := create(ro.dir, p.Header(), reports.Options{Excel: ro.excel, Repeatable: repeatable(targets),
		Inverters: inverters(infos), Columns: batch.VendorColumns(infos, ro.parse.Columns)})
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

// inverters are the targets' vendors' ways of reversing a change.
func inverters(infos batch.Targets) map[string]batch.Inverter {
	return byTarget(infos, func(t batch.TargetInfo) batch.Inverter { return t.Inverter })
}

// identities are the targets' vendors' ways of comparing user cells.
func identities(infos batch.Targets) map[string]batch.Identity {
	return byTarget(infos, func(t batch.TargetInfo) batch.Identity { return t.Identity })
}

// byTarget maps each target to what get says of it, leaving out nil.
func byTarget[T any](infos batch.Targets, get func(batch.TargetInfo) T) map[string]T {
	out := map[string]T{}
	for name, t := range infos {
		if v := get(t); any(v) != nil {
			out[name] = v
		}
	}
	return out
}
