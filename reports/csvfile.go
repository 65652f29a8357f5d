package reports

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
)

// bufSize is the write buffer of each report file: large enough that a
// million-row report costs few syscalls.
const bufSize = 64 << 10

// partial is a file written under a temporary name in dir and renamed to its
// final name by commit, so that a reader never mistakes a half-written file
// for a finished one.
type partial struct {
	dir, name string // name is the final name
	f         *os.File
}

func createPartial(dir, name string) (*partial, error) {
	p := &partial{dir: dir, name: name}
	f, err := os.Create(p.tempPath())
	if err != nil {
		return nil, errorf(name, err)
	}
	p.f = f
	return p, nil
}

func (p *partial) tempPath() string { return filepath.Join(p.dir, "."+p.name+".partial") }

// close syncs and closes the file. The sync comes before the rename: otherwise
// a crash could leave the final name pointing at data never written to disk.
func (p *partial) close() error {
	if err := p.f.Sync(); err != nil {
		p.f.Close()
		return errorf(p.name, err)
	}
	if err := p.f.Close(); err != nil {
		return errorf(p.name, err)
	}
	return nil
}

// commit renames the closed file into place. The directory is not synced: if
// a crash loses the rename, only the partial name remains, which is the safe
// way to fail.
func (p *partial) commit() error {
	if err := os.Rename(p.tempPath(), filepath.Join(p.dir, p.name)); err != nil {
		return errorf(p.name, err)
	}
	return nil
}

// discard closes and removes the file after a failed Create.
func (p *partial) discard() {
	p.f.Close()
	os.Remove(p.tempPath())
}

// csvFile is one report CSV. Lines end in "\n" and there is no byte order
// mark: the files are plain UTF-8, which spreadsheets import as such and
// which userbatch itself reads back (failed.csv, undo.csv). Every cell is
// neutralised on the way out.
type csvFile struct {
	*partial
	buf *bufio.Writer
	csv *csv.Writer
	out []string // neutralised copy of the record being written, reused
}

func createCSV(dir, name string) (*csvFile, error) {
	p, err := createPartial(dir, name)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(p.f, bufSize)
	// csv.NewWriter adopts buf as is (it is a *bufio.Writer at least as
	// large as its own default), so there is a single buffer.
	return &csvFile{partial: p, buf: buf, csv: csv.NewWriter(buf)}, nil
}

// write writes rec, neutralised, leaving rec itself untouched: it may be the
// caller's row.
func (c *csvFile) write(rec []string) error {
	c.out = c.out[:0]
	for _, cell := range rec {
		c.out = append(c.out, Neutralize(cell))
	}
	if err := c.csv.Write(c.out); err != nil {
		return errorf(c.name, err)
	}
	return nil
}

// finish flushes, syncs and closes the file.
func (c *csvFile) finish() error {
	c.csv.Flush()
	if err := c.csv.Error(); err != nil {
		c.f.Close()
		return errorf(c.name, err)
	}
	return c.close()
}

// writeSummary writes s as indented JSON under summary.json's temporary name;
// the caller commits it.
func writeSummary(dir string, s *Summary) (*partial, error) {
	p, err := createPartial(dir, SummaryFile)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(p.f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		p.f.Close()
		return nil, errorf(SummaryFile, err)
	}
	return p, p.close()
}

// Neutralize returns cell with a leading "'" when it starts with a character
// that makes a spreadsheet read it as a formula: "=", "+", "-", "@", tab or
// carriage return. Every cell of report.csv, failed.csv and undo.csv goes
// through it, header names included. userbatch's parser strips one leading
// "'" before those same characters, so failed.csv and undo.csv run again as
// they are: "-5" written as "'-5" is read back as "-5".
func Neutralize(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + cell
	}
	return cell
}
