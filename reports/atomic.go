package reports

import (
	"io"
	"os"
	"path/filepath"
)

// Partial is a file written under a temporary name in dir and renamed to its
// final name by Commit, so that a reader never mistakes a half-written file
// for a finished one. os.CreateTemp makes it 0600 (a umask can only narrow
// that): report files hold user ids and emails. The temporary name is unique
// to this file (".report.csv.123456.partial"), so two writers in one
// directory never write into each other's files. Every file userbatch writes
// whole goes through it.
type Partial struct {
	dir, name string // name is the final name
	f         *os.File
	committed bool
}

// CreatePartial starts the file that Commit will name dir/name.
func CreatePartial(dir, name string) (*Partial, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.partial")
	if err != nil {
		return nil, errorf(name, err)
	}
	return &Partial{dir: dir, name: name, f: f}, nil
}

// Write writes to the temporary file.
func (p *Partial) Write(b []byte) (int, error) { return p.f.Write(b) }

// Close syncs and closes the file. The sync comes before the rename: otherwise
// a crash could leave the final name pointing at data never written to disk.
func (p *Partial) Close() error {
	if err := p.f.Sync(); err != nil {
		p.f.Close()
		return errorf(p.name, err)
	}
	if err := p.f.Close(); err != nil {
		return errorf(p.name, err)
	}
	return nil
}

// Commit renames the closed file into place, replacing any file of that
// name. The directory is not synced: if a crash loses the rename, only the
// partial name remains, which is the safe way to fail.
func (p *Partial) Commit() error {
	if err := os.Rename(p.f.Name(), filepath.Join(p.dir, p.name)); err != nil {
		return errorf(p.name, err)
	}
	p.committed = true
	return nil
}

// Discard closes and removes the file unless it was committed. A file
// closed already is closed again harmlessly.
func (p *Partial) Discard() {
	if p == nil || p.committed {
		return
	}
	p.f.Close()
	os.Remove(p.f.Name())
}

// WriteFileAtomic writes b to path (0600) through a Partial: path holds
// either its old content or all of b, never part of it.
func WriteFileAtomic(path string, b []byte) error {
	p, err := writeWhole(filepath.Dir(path), filepath.Base(path), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if err := p.Commit(); err != nil {
		p.Discard()
		return err
	}
	return nil
}
