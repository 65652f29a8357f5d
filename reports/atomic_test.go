package reports

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileAtomic: the file is replaced whole, 0600, and no temporary
// file is left beside it, whether the write succeeded or failed.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.json")
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := WriteFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("read %q, %v; want %q", got, err, content)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want plan.json alone: %v", len(entries), entries)
	}
}

// TestOpenCSV: a report file written for Excel (a byte order mark, the
// input's ";") reads back as the same header and rows, and says it had
// the mark.
func TestOpenCSV(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ReportFile)
	if err := os.WriteFile(path, []byte(UTF8BOM+"line;user\n2;ann\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := OpenCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head, err := r.Read()
	if err != nil || len(head) != 2 || head[0] != "line" || !r.BOM || r.Comma != ';' {
		t.Fatalf("header %q, %v, bom %v, comma %q", head, err, r.BOM, r.Comma)
	}
	if rec, err := r.Read(); err != nil || rec[1] != "ann" {
		t.Errorf("row %q, %v", rec, err)
	}
	if _, err := OpenCSV(filepath.Join(dir, "none.csv")); !os.IsNotExist(err) {
		t.Errorf("a missing file: %v, want os.Open's not-exist error", err)
	}
}
