package reports

import (
	"bufio"
	"encoding/csv"
	"os"

	"github.com/userbatch/userbatch/batch"
)

// CSVReader reads a CSV file that userbatch wrote (report.csv and its
// siblings): a byte order mark is skipped, the delimiter is told from the
// header line (--excel writes the input's), and rows may differ in length.
// The header is the first record Read returns.
type CSVReader struct {
	*csv.Reader
	f *os.File
	// BOM says whether the file starts with a byte order mark (written
	// with --excel): a file written beside it should have one too.
	BOM bool
}

// OpenCSV opens the report file at path. The error is os.Open's.
func OpenCSV(path string) (*CSVReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, bufSize)
	r := &CSVReader{f: f}
	if lead, _ := br.Peek(len(UTF8BOM)); string(lead) == UTF8BOM {
		_, _ = br.Discard(len(UTF8BOM))
		r.BOM = true
	}
	head, _ := br.Peek(bufSize)
	r.Reader = csv.NewReader(br)
	r.Comma = batch.SniffDelimiter(head)
	r.FieldsPerRecord = -1
	return r, nil
}

// Close closes the file.
func (r *CSVReader) Close() error { return r.f.Close() }
