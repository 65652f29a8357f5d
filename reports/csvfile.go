package reports

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bufSize is the write buffer of each report file: large enough that a
// million-row report costs few syscalls.
const bufSize = 64 << 10

// UTF8BOM is the UTF-8 byte order mark that --excel writes first: without
// it Excel reads a CSV in the system's code page and mangles non-ASCII
// names. Readers of report files skip it.
const UTF8BOM = "\xef\xbb\xbf"

// csvFile is one report CSV. Lines end in "\n"; the file is plain UTF-8,
// with a byte order mark first only for Excel (Options.Excel), which
// userbatch's parser skips when it reads failed.csv or undo.csv back. Every
// cell is neutralised on the way out.
type csvFile struct {
	*Partial
	comma byte // the delimiter: ',', or the input's for Excel
	buf   *bufio.Writer
	out   []string // neutralised copy of the record being written, reused
	rows  int      // data rows written, the header not counted
}

// createCSV creates a report CSV. For Excel it starts with a byte order
// mark and cells are separated by comma (the input's delimiter: Excel
// splits columns by the one its region uses, which is the one the input
// came with); otherwise by ','.
func createCSV(dir, name string, excel bool, comma rune) (*csvFile, error) {
	p, err := CreatePartial(dir, name)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(p.f, bufSize)
	c := &csvFile{Partial: p, buf: buf, comma: ','}
	if excel {
		buf.WriteString(UTF8BOM) // an error stays in buf and surfaces at the next flush
		if comma == ';' || comma == '\t' {
			c.comma = byte(comma)
		}
	}
	return c, nil
}

// writeHeader writes the header line, which is not counted as a row.
func (c *csvFile) writeHeader(names []string) error {
	err := c.write(names)
	c.rows--
	return err
}

// write writes rec, neutralised, leaving rec itself untouched: it may be the
// caller's row.
func (c *csvFile) write(rec []string) error {
	c.out = c.out[:0]
	for _, cell := range rec {
		c.out = append(c.out, Neutralize(cell))
	}
	return c.writeRaw(c.out)
}

// writeRaw writes rec as it is: cells already neutralised (a merge copies
// cells read from a report).
func (c *csvFile) writeRaw(rec []string) error {
	c.rows++
	if err := writeRecord(c.buf, rec, c.comma); err != nil {
		return errorf(c.name, err)
	}
	return nil
}

// writeRecord writes rec as one CSV line, byte for byte as encoding/csv's
// Writer with Comma comma and "\n" writes it, straight into b: the
// report writes a line or two a row, and csv.Writer's rune-by-rune writes
// were half the cost of one. b keeps the first write error and returns it
// from every later write, so the last write's error is the line's.
func writeRecord(b *bufio.Writer, rec []string, comma byte) error {
	for n, field := range rec {
		if n > 0 {
			b.WriteByte(comma)
		}
		if !needsQuotes(field, comma) {
			b.WriteString(field)
			continue
		}
		// Inside quotes only '"' changes: "\r" and "\n" stay as they are.
		b.WriteByte('"')
		for {
			i := strings.IndexByte(field, '"')
			if i < 0 {
				break
			}
			b.WriteString(field[:i+1])
			b.WriteByte('"')
			field = field[i+1:]
		}
		b.WriteString(field)
		b.WriteByte('"')
	}
	return b.WriteByte('\n')
}

// needsQuotes is csv.Writer's rule for a field: empty never; `\.` always;
// else when it holds the delimiter, a quote, CR or LF, or starts with a
// space of any kind.
func needsQuotes(field string, comma byte) bool {
	if field == "" {
		return false
	}
	if field == `\.` {
		return true
	}
	for i := 0; i < len(field); i++ {
		switch field[i] {
		case '\n', '\r', '"', comma:
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}

// finish flushes, syncs and closes the file.
func (c *csvFile) finish() error {
	if err := c.buf.Flush(); err != nil {
		c.f.Close()
		return errorf(c.name, err)
	}
	return c.Close()
}

// writeSummary writes s as indented JSON under summary.json's temporary name;
// the caller commits it.
func writeSummary(dir string, s *Summary) (*Partial, error) {
	return writeWhole(dir, SummaryFile, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	})
}

// writeWhole writes a file in one go under its temporary name; the caller
// commits it.
func writeWhole(dir, name string, write func(io.Writer) error) (*Partial, error) {
	p, err := CreatePartial(dir, name)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(p.f, bufSize)
	if err := write(buf); err != nil {
		p.Discard()
		return nil, errorf(name, err)
	}
	if err := buf.Flush(); err != nil {
		p.Discard()
		return nil, errorf(name, err)
	}
	if err := p.Close(); err != nil {
		os.Remove(p.f.Name())
		return nil, err
	}
	return p, nil
}

// Neutralize returns cell with a leading "'" when it starts with a character
// that makes a spreadsheet read it as a formula: "=", "+", "-", "@", tab or
// carriage return. Every cell of report.csv, failed.csv, check.csv and
// undo.csv goes through it, header names included. userbatch's parser strips
// one leading "'" before those same characters, so failed.csv and undo.csv
// run again as they are: "-5" written as "'-5" is read back as "-5".
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

// Unneutralize undoes Neutralize, for cells read back from a report.
func Unneutralize(cell string) string {
	if len(cell) >= 2 && cell[0] == '\'' {
		switch cell[1] {
		case '=', '+', '-', '@', '\t', '\r':
			return cell[1:]
		}
	}
	return cell
}
