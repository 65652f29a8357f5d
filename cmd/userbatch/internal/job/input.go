package job

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/userbatch/userbatch/batch"
)

// input is the operations file, readable more than once (validation, the
// run, the report), with the SHA-256 a resume checks.
type input struct {
	path    string
	sha256  string
	cleanup func()
	open    opener
}

// opener opens a file for reading: os.Open, unless a test counts the reads.
type opener func(path string) (io.ReadCloser, error)

func openFile(path string) (io.ReadCloser, error) { return os.Open(path) }

// or is o, or os.Open when o is nil.
func (o opener) or() opener {
	if o == nil {
		return openFile
	}
	return o
}

// openInputWith hashes the file at path, or spools stdin ("-") to a private
// temporary file so it can be read again; it reads through open (nil:
// os.Open).
func openInputWith(path string, stdin io.Reader, open opener) (*input, error) {
	open = open.or()
	if path == "-" {
		in, err := spool(stdin)
		if err == nil {
			in.open = open
		}
		return in, err
	}
	f, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return &input{path: path, sha256: hex.EncodeToString(h.Sum(nil)), cleanup: func() {}, open: open}, nil
}

func spool(r io.Reader) (*input, error) {
	if r == nil {
		return nil, fmt.Errorf("input: - reads standard input, and there is none")
	}
	f, err := os.CreateTemp("", "userbatch-stdin-*.csv")
	if err != nil {
		return nil, fmt.Errorf("saving stdin: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	name := f.Name()
	return &input{path: name, sha256: hex.EncodeToString(h.Sum(nil)), cleanup: func() { os.Remove(name) }}, nil
}

// ParseOptions are how the input is read: its delimiter and the zone of
// bare effective_at dates.
type ParseOptions = batch.ParseOptions

// parser opens the input for one more pass; done closes it. Without
// po.Repeats it finds them first (one or two more passes): a row's
// duplicates and conflicts are found over the whole file, whatever shard
// reads it.
func (in *input) parser(infos batch.Targets, po ParseOptions) (*batch.Parser, func(), error) {
	if po.Repeats == nil {
		r, err := in.findRepeats(infos, po, nil)
		if err != nil {
			return nil, nil, err
		}
		po.Repeats = r
	}
	return in.plain(infos, po)
}

// findRepeats finds the duplicate and conflicting rows of the input,
// passing seen every row of the first pass (see batch.FindRepeats).
func (in *input) findRepeats(infos batch.Targets, po ParseOptions, seen func(batch.Row)) (*batch.Repeats, error) {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	po.Repeats = nil
	return batch.FindRepeats(func() (*batch.Parser, error) {
		p, done, err := in.plain(infos, po)
		if err == nil {
			closers = append(closers, done)
		}
		return p, err
	}, seen)
}

// plain opens the input with po as it is.
func (in *input) plain(infos batch.Targets, po ParseOptions) (*batch.Parser, func(), error) {
	f, err := in.open.or()(in.path)
	if err != nil {
		return nil, nil, err
	}
	p, err := batch.NewParserOptions(f, infos, po)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return p, func() { p.Close(); f.Close() }, nil
}

// eachRow parses the input and calls fn for every row's op.
func (in *input) eachRow(infos batch.Targets, po ParseOptions, fn func(batch.Row) error) error {
	p, done, err := in.parser(infos, po)
	if err != nil {
		return err
	}
	defer done()
	p.OpsOnly()
	return p.Each(fn)
}

// Validation counts a file's rows.
type Validation struct {
	Valid, Invalid int
	// Duplicates counts the valid rows that repeat an earlier one exactly:
	// they end skipped, never sent.
	Duplicates int
	// Targets counts the valid rows by target.
	Targets map[string]int
}

// validate reads the whole input, printing every problem and every
// duplicate row to w.
func (in *input) validate(infos batch.Targets, po ParseOptions, w io.Writer) (Validation, error) {
	t, _, err := in.tally(infos, po, newRowTally(0, func(p batch.Problem) { fmt.Fprintln(w, p.String()) }, func(row batch.Row) {
		fmt.Fprintf(w, "line %d: duplicate of line %d: it ends skipped, never sent\n", row.Line, row.Op.DuplicateOf)
	}))
	return t.Validation, err
}

// tally reads every row of the input into t and returns the Repeats the
// rows were marked with. Without po.Repeats it finds them, and when no rows
// meet and t held every problem to show, the rows of that pass are final:
// the file is read once (README "Performance").
func (in *input) tally(infos batch.Targets, po ParseOptions, t *rowTally) (*rowTally, *batch.Repeats, error) {
	if po.Repeats == nil {
		r, err := in.findRepeats(infos, po, t.add)
		if err != nil {
			return t, nil, err
		}
		if r.None() && !t.overflow {
			t.flush()
			return t, r, nil
		}
		po.Repeats, t = r, t.again()
	}
	t.direct = true
	err := in.eachRow(infos, po, func(row batch.Row) error {
		t.add(row)
		return nil
	})
	return t, po.Repeats, err
}

// maxHeld is how many problems a rowTally keeps before showing them; past
// that, the file is read again to show them as they come.
const maxHeld = 1000

// rowTally counts rows and shows the first max problems (max 0: all), each
// duplicate to dup (nil: none), and each row to each (nil: none). Until it
// is direct it holds the problems, since the rows may not be final.
type rowTally struct {
	Validation
	max      int
	show     func(batch.Problem)
	dup      func(batch.Row)
	each     func(batch.Row)
	shown    int // problems seen
	held     []batch.Problem
	overflow bool // more problems to show than maxHeld
	direct   bool // the rows are final: show as they come
}

func newRowTally(max int, show func(batch.Problem), dup func(batch.Row)) *rowTally {
	return &rowTally{Validation: Validation{Targets: map[string]int{}}, max: max, show: show, dup: dup}
}

// again is an empty rowTally that shows and passes on as t does.
func (t *rowTally) again() *rowTally {
	n := newRowTally(t.max, t.show, t.dup)
	n.each = t.each
	return n
}

func (t *rowTally) add(row batch.Row) {
	if t.each != nil {
		t.each(row)
	}
	if row.Valid() {
		t.Valid++
		t.Targets[row.Op.Target]++
		if row.Op.DuplicateOf > 0 {
			t.Duplicates++
			if t.dup != nil {
				t.dup(row)
			}
		}
		return
	}
	t.Invalid++
	for _, p := range row.Problems {
		if t.show != nil && (t.max <= 0 || t.shown < t.max) {
			t.hold(p)
		}
		t.shown++
	}
}

func (t *rowTally) hold(p batch.Problem) {
	switch {
	case t.direct:
		t.show(p)
	case len(t.held) < maxHeld:
		t.held = append(t.held, p)
	default:
		t.overflow = true
	}
}

// flush shows the problems held.
func (t *rowTally) flush() {
	for _, p := range t.held {
		t.show(p)
	}
	t.held = nil
}

// more reports how many problems were not shown, if any.
func (t *rowTally) more(fn func(int)) {
	if t.show != nil && t.max > 0 && t.shown > t.max {
		fn(t.shown - t.max)
	}
}

// maxShown is how many problems a run shows; validate shows them all.
const maxShown = 20

// moreProblems says how many problems were not shown.
const moreProblems = "... and %d more problems (every one is in report.csv; `userbatch validate` lists them all)\n"

// ValidateFile opens path ("-": stdin) and validates it, listing every
// problem and duplicate to w. A file is read as it is: only stdin is saved
// first, to be read again.
func ValidateFile(path string, stdin io.Reader, infos batch.Targets, po ParseOptions, w io.Writer) (Validation, error) {
	in := &input{path: path}
	if path == "-" {
		var err error
		if in, err = spool(stdin); err != nil {
			return Validation{}, err
		}
		defer in.cleanup()
	} else if err := readable(path); err != nil {
		return Validation{}, err
	}
	return in.validate(infos, po, w)
}

// readable says, as openInputWith would, why the file at path cannot be read.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		_, err = f.Read(make([]byte, 1))
		return fmt.Errorf("input: %w", err)
	}
	return nil
}
