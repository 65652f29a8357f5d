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
}

// openInput hashes the file at path, or spools stdin ("-") to a private
// temporary file so it can be read again.
func openInput(path string, stdin io.Reader) (*input, error) {
	if path == "-" {
		return spool(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return &input{path: path, sha256: hex.EncodeToString(h.Sum(nil)), cleanup: func() {}}, nil
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

// openParser opens the input at path for one more pass; done closes it.
// Without po.Repeats it finds them first (two more passes): a row's
// duplicates and conflicts are found over the whole file, whatever shard
// reads it.
func openParser(path string, infos batch.Targets, po ParseOptions) (*batch.Parser, func(), error) {
	if po.Repeats == nil {
		r, err := findRepeats(path, infos, po)
		if err != nil {
			return nil, nil, err
		}
		po.Repeats = r
	}
	return openPlain(path, infos, po)
}

// findRepeats finds the duplicate and conflicting rows of the file at path.
func findRepeats(path string, infos batch.Targets, po ParseOptions) (*batch.Repeats, error) {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	po.Repeats = nil
	return batch.FindRepeats(func() (*batch.Parser, error) {
		p, done, err := openPlain(path, infos, po)
		if err == nil {
			closers = append(closers, done)
		}
		return p, err
	})
}

// openPlain opens the input at path with po as it is.
func openPlain(path string, infos batch.Targets, po ParseOptions) (*batch.Parser, func(), error) {
	f, err := os.Open(path)
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

// eachRow parses the file at path and calls fn for every row's op.
func eachRow(path string, infos batch.Targets, po ParseOptions, fn func(batch.Row) error) error {
	p, done, err := openParser(path, infos, po)
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

// Validate reads the whole file once, printing the first max problems to w
// (max 0: all of them, and every duplicate row).
func Validate(path string, infos batch.Targets, po ParseOptions, w io.Writer, max int) (Validation, error) {
	v, err := validate(path, infos, po, max, func(p batch.Problem) { fmt.Fprintln(w, p.String()) }, func(more int) {
		fmt.Fprintf(w, "... and %d more problems (every one is in report.csv; `userbatch validate` lists them all)\n", more)
	}, func(row batch.Row) {
		if max <= 0 {
			fmt.Fprintf(w, "line %d: duplicate of line %d: it ends skipped, never sent\n", row.Line, row.Op.DuplicateOf)
		}
	})
	return v, err
}

// validate reads the whole file once, showing the first max problems (max
// 0: all of them; show nil: none) and then how many more there are, and
// passing each duplicate row to dup (nil: none).
func validate(path string, infos batch.Targets, po ParseOptions, max int, show func(batch.Problem), more func(int), dup func(batch.Row)) (Validation, error) {
	v := Validation{Targets: map[string]int{}}
	shown := 0
	err := eachRow(path, infos, po, func(row batch.Row) error {
		if row.Valid() {
			v.Valid++
			v.Targets[row.Op.Target]++
			if row.Op.DuplicateOf > 0 {
				v.Duplicates++
				if dup != nil {
					dup(row)
				}
			}
			return nil
		}
		v.Invalid++
		for _, p := range row.Problems {
			if show != nil && (max <= 0 || shown < max) {
				show(p)
			}
			shown++
		}
		return nil
	})
	if show != nil && max > 0 && shown > max {
		more(shown - max)
	}
	return v, err
}

// maxShown is how many problems a run shows; validate shows them all.
const maxShown = 20

// ValidateFile opens path ("-": stdin) and validates it; see Validate.
func ValidateFile(path string, stdin io.Reader, infos batch.Targets, po ParseOptions, w io.Writer) (Validation, error) {
	in, err := openInput(path, stdin)
	if err != nil {
		return Validation{}, err
	}
	defer in.cleanup()
	return Validate(in.path, infos, po, w, 0)
}
