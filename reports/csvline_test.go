package reports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"testing"
)

// csvCells are cells that test every branch of csv.Writer's quoting.
var csvCells = []string{"", "plain", `\.`, `\.x`, "a,b", "a;b", "a\tb", `say "hi"`, `""`, `"`, "cr\rlf\nboth\r\n",
	" lead", "\tlead", "\u00a0nbsp", "\u2028sep", "\u0085nel", "trail ", "naïve", "\xff", "'=1", "x\u3000"}

// csvBoth checks rec written with each delimiter --excel may use.
func csvBoth(t *testing.T, rec []string) {
	t.Helper()
	for _, comma := range []byte{',', ';', '\t'} {
		var want bytes.Buffer
		cw := csv.NewWriter(&want)
		cw.Comma = rune(comma)
		if err := cw.Write(rec); err != nil {
			t.Fatal(err)
		}
		cw.Flush()
		var got bytes.Buffer
		b := bufio.NewWriter(&got)
		if err := writeRecord(b, rec, comma); err != nil {
			t.Fatal(err)
		}
		b.Flush()
		if got.String() != want.String() {
			t.Errorf("writeRecord(%q, %q) = %q; encoding/csv writes %q", rec, comma, got.String(), want.String())
		}
	}
}

// TestWriteRecordAsEncodingCSV: the report's own CSV writer writes what
// encoding/csv writes, for each tricky cell alone and in pairs.
func TestWriteRecordAsEncodingCSV(t *testing.T) {
	csvBoth(t, nil)
	csvBoth(t, []string{""})
	for _, a := range csvCells {
		csvBoth(t, []string{a})
		for _, b := range csvCells {
			csvBoth(t, []string{a, b, ""})
		}
	}
}

// FuzzWriteRecord: any two cells are written as encoding/csv writes them.
func FuzzWriteRecord(f *testing.F) {
	for _, c := range csvCells {
		f.Add(c, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) { csvBoth(t, []string{a, b}) })
}
