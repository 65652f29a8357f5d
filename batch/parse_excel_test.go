package batch

import (
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// parseAllOptions is parseAll with options, and checks that an ops-only
// pass over the same bytes agrees row for row.
func parseAllOptions(t *testing.T, input string, targets Targets, opts ParseOptions) (Header, []Row) {
	t.Helper()
	p, err := NewParserOptions(strings.NewReader(input), targets, opts)
	if err != nil {
		t.Fatalf("NewParserOptions: %v", err)
	}
	defer p.Close()
	var rows []Row
	if err := p.Each(func(r Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatalf("after %d rows: %v", len(rows), err)
	}
	ops, err := NewParserOptions(strings.NewReader(input), targets, opts)
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	defer ops.Close()
	ops.OpsOnly()
	for i, want := range rows {
		got, err := ops.Next()
		if err != nil {
			t.Fatalf("ops-only row %d: %v", i, err)
		}
		if len(got.Record) != 0 {
			t.Fatalf("ops-only row %d has cells %q", i, got.Record)
		}
		want.Record, got.Record = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ops-only row %d:\n %+v\n want %+v", i, got, want)
		}
	}
	if _, err := ops.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("ops-only pass has more rows: %v", err)
	}
	return p.Header(), rows
}

// excelRows is one file's content as Excel would save it with delimiter d
// and line ending nl: a multi-line note, a note holding the other
// delimiters, non-ASCII ids, and a surrogate pair.
func excelRows(d, nl string) string {
	lines := [][]string{
		{"target", "user", "action", "role", "place_genealogy", "note"},
		{"shop", "jürgen.müller", "disable", "", "", `"contract ended; rehired, maybe"`},
		{"shop", "名前", "upgrade-role", "Preferred Customer", "TRUE", "\"two" + nl + "lines\""},
		{"shop", "u3", "explode", "", "", "🙂"},
		{"shop", "u4", "enable", "", "", ""},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.Join(l, d) + nl)
	}
	return b.String()
}

// TestParseEncodingsAndDelimiters: the same rows saved as UTF-8, UTF-8 with
// a BOM, UTF-16 LE and BE, separated by commas, semicolons or tabs, parse
// to the same ops on the same lines, whether lines end in LF, CRLF or CR
// alone (old Mac "CSV").
func TestParseEncodingsAndDelimiters(t *testing.T) {
	_, want := parseAll(t, excelRows(",", "\n"), testTargets())
	checkRows(t, want, []int{2, 3, 5, 6}, [][]string{nil, nil, {"5:action"}, nil})
	encodings := map[string]func(string) string{
		EncodingUTF8:    func(s string) string { return s },
		EncodingUTF8BOM: func(s string) string { return "\ufeff" + s },
		EncodingUTF16LE: utf16LE,
		EncodingUTF16BE: utf16BE,
	}
	for enc, encode := range encodings {
		for _, d := range []string{",", ";", "\t"} {
			for _, nl := range []string{"\n", "\r\n", "\r"} {
				name := enc + " " + delimiterName(d[0]) + " " + strings.ReplaceAll(strings.ReplaceAll(nl, "\r", "CR"), "\n", "LF")
				t.Run(name, func(t *testing.T) {
					h, rows := parseAllOptions(t, encode(excelRows(d, nl)), testTargets(), ParseOptions{})
					if h.Encoding != enc || h.Delimiter != rune(d[0]) {
						t.Errorf("Header says %s, %q; want %s, %q", h.Encoding, h.Delimiter, enc, d)
					}
					if len(rows) != len(want) {
						t.Fatalf("%d rows, want %d", len(rows), len(want))
					}
					for i := range rows {
						if !reflect.DeepEqual(rows[i], want[i]) {
							t.Errorf("row %d:\n %+v\n want %+v", i, rows[i], want[i])
						}
					}
				})
			}
		}
	}
}

func TestParseDelimiterDetection(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     rune
	}{
		{"comma", "target,user,action\nshop,u1,disable\n", ','},
		{"semicolon", "target;user;action\nshop;u1;disable\n", ';'},
		{"tab", "target\tuser\taction\nshop\tu1\tdisable\n", '\t'},
		{"semicolon with commas in quotes", "\"a,b,c\";user;action;target\n;u1;disable;shop\n", ';'},
		{"comma with semicolons in quotes", "\"a;b;c\",user,action,target\n,u1,disable,shop\n", ','},
		{"more semicolons than commas", "user;action;target;note, with a comma\nu1;disable;shop;x\n", ';'},
		{"semicolon in a later line only", "target,user,action\nshop,u1;u2,disable\n", ','},
		{"no newline", "target;user;action", ';'},
		{"after empty lines", "\n;;\r\n\t \ntarget;user;action\nshop;u1;disable\n", ';'},
		{"quoted names", "\"target\"\t\"user\"\t\"action\"\nshop\tu1\tdisable\n", '\t'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewParser(strings.NewReader(tc.in), testTargets())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := p.Header().Delimiter; got != tc.want {
				t.Errorf("Delimiter = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseDelimiterOption: the override wins over the header line.
func TestParseDelimiterOption(t *testing.T) {
	// A one-column header: detection would say comma.
	in := "user,action;target\nu1,x;shop\n"
	_, err := NewParserOptions(strings.NewReader(in), testTargets(), ParseOptions{})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "comma-separated") {
		t.Fatalf("detected: err = %v, want a missing column read as comma-separated", err)
	}
	_, err = NewParserOptions(strings.NewReader(in), testTargets(), ParseOptions{Delimiter: ';'})
	if !errors.As(err, &ie) || ie.Line != 1 || !strings.Contains(ie.Msg, "semicolon-separated") || !strings.Contains(ie.Msg, "user,action;target") {
		t.Fatalf("forced ';': err = %v, want the header as read, and how", err)
	}
	_, rows := parseAllOptions(t, "user;action;target\nu1,x;disable;shop\n", testTargets(), ParseOptions{Delimiter: ';'})
	checkRows(t, rows, []int{2}, [][]string{nil})
	if rows[0].Op.User != "u1,x" {
		t.Errorf("User = %q", rows[0].Op.User)
	}
	if _, err := NewParserOptions(strings.NewReader(in), testTargets(), ParseOptions{Delimiter: '|'}); err == nil || !strings.Contains(err.Error(), "tab") {
		t.Errorf("delimiter '|': err = %v, want one that lists the delimiters", err)
	}
}

func TestParseDelimiterFlag(t *testing.T) {
	for in, want := range map[string]rune{
		"": 0, ",": ',', "comma": ',', ";": ';', "Semicolon": ';', "tab": '\t', "TAB": '\t', `\t`: '\t', "\t": '\t', " ; ": ';',
	} {
		got, err := ParseDelimiter(in)
		if err != nil || got != want {
			t.Errorf("ParseDelimiter(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"|", ",,", "space", "auto", ":"} {
		if _, err := ParseDelimiter(in); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseDelimiter(%q): err = %v, want one naming the value", in, err)
		}
	}
}

// TestParseEmptyRows: rows whose cells are all empty are not rows: they
// get no index and no report line, and the rows after keep their lines.
func TestParseEmptyRows(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		opts     ParseOptions
		lines    []int
	}{
		{name: "commas at the bottom", in: "target,user,action,note\r\nshop,u1,disable,a\r\nshop,u2,enable,\r\n,,,\r\n,,,\r\n,,,\r\n",
			lines: []int{2, 3}},
		{name: "in the middle", in: "target,user,action,note\n,,,\nshop,u1,disable,\n,,,\n\n,,,\nshop,u2,enable,\n",
			lines: []int{3, 7}},
		{name: "semicolons", in: "target;user;action;note\nshop;u1;disable;a,b\n;;;\n;;;\nshop;u2;enable;\n;;;",
			lines: []int{2, 5}},
		{name: "tabs", in: "target\tuser\taction\tnote\nshop\tu1\tdisable\t\n\t\t\t\n\t\t\t\r\nshop\tu2\tenable\tx\n",
			lines: []int{2, 5}},
		{name: "spaces and empty quotes", in: "target,user,action\nshop,u1,disable\n , ,\t\n\"\",\" \",\"\"\r\n  \nshop,u2,enable\n",
			lines: []int{2, 6}},
		{name: "fewer cells than the header", in: "target,user,action,note\nshop,u1,disable,\n,\n,,\nshop,u2,enable,\n",
			lines: []int{2, 5}},
		{name: "a forced delimiter", in: "target,user,action\nshop,u1,disable\n;;\n,,\n", opts: ParseOptions{Delimiter: ','},
			lines: []int{2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rows := parseAllOptions(t, tc.in, testTargets(), tc.opts)
			problems := make([][]string, len(tc.lines))
			if tc.name == "a forced delimiter" {
				problems[1] = []string{"3:(row)"} // ";;" is a cell, not empty
			}
			checkRows(t, rows, tc.lines, problems)
		})
	}
}

// TestParseEmptyRowsKept: what looks like a line of empty cells inside a
// quoted field, or cells that hold a quote or a non-breaking space, is data.
func TestParseEmptyRowsKept(t *testing.T) {
	in := "target,user,action,note\n" + // 1
		"shop,u1,disable,\"a\n" + // 2
		",,,\n" + // 3
		"\"\n" + // 4
		"\"\"\"\",,,\n" + // 5: a cell holding a quote
		",\u00a0,,\n" + // 6: a no-break space is not an ASCII space
		",,,x\n" // 7
	_, rows := parseAll(t, in, testTargets())
	checkRows(t, rows, []int{2, 5, 6, 7}, [][]string{nil,
		{"5:target", "5:user", "5:action"}, {"6:target", "6:user", "6:action"}, {"7:target", "7:user", "7:action"}})
	if got := rows[0].Record[3]; got != "a\n,,,\n" {
		t.Errorf("note = %q, want the empty-looking line kept", got)
	}
	if got := rows[1].Record[0]; got != `"` {
		t.Errorf("cell = %q, want a quote", got)
	}
}

// TestParseEmptyRowsDoNotHideErrors: an open quote on a line of empty
// cells is still an error, on its line.
func TestParseEmptyRowsDoNotHideErrors(t *testing.T) {
	for _, in := range []string{
		"target,user,action\nshop,u1,disable\n,\" ,\n",
		"target,user,action\nshop,u1,disable\n,\" ,",
		"target,user,action\nshop,u1,disable\n,\"\" ,\n",
	} {
		p, err := NewParser(strings.NewReader(in), testTargets())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = p.Each(func(Row) error { n++; return nil })
		var ie *InputError
		if !errors.As(err, &ie) || ie.Line != 3 || n != 1 {
			t.Errorf("%q: %d rows, err %v; want 1 row, then an InputError on line 3", in, n, err)
		}
	}
}

func TestParseScientificNotation(t *testing.T) {
	var cases []rowCase
	for _, u := range []string{"1.23457E+17", "1.2E+5", "1E+15", "9.99999999999999E+20", "1.23457e+17", "1.5E-05"} {
		cases = append(cases, rowCase{name: u, row: "shop," + u + ",disable,,,,", problems: []string{ColUser}})
	}
	cases = append(cases, rowCase{name: "decimal comma", row: "shop,\"1,23457E+17\",disable,,,,", problems: []string{ColUser}})
	for _, u := range []string{"1e5", "1.2E5", "E+17", "1.E+5", "u1.2E+5", "1.2E+", "1.2E+5x", "123456789012345678", "0123", "1.5"} {
		cases = append(cases, rowCase{name: u, row: "shop," + u + ",disable,,,,",
			check: wantOp(Op{Target: "shop", User: u, Action: Disable})})
	}
	runRowCases(t, cases)

	_, rows := parseAll(t, "target;user;action\nshop;1,23457E+17;disable\n", testTargets())
	checkRows(t, rows, []int{2}, [][]string{{"2:user"}})
	p := rows[0].Problems[0]
	for _, want := range []string{"Excel", "scientific notation", "1,23457E+17", "Text"} {
		if !strings.Contains(p.String(), want) {
			t.Errorf("problem %q does not mention %q", p, want)
		}
	}
}

func TestParseHeaderEncoding(t *testing.T) {
	for in, want := range map[string]string{
		"target,user,action\nshop,u1,disable\n":       EncodingUTF8,
		"\ufefftarget,user,action\nshop,u1,disable\n": EncodingUTF8BOM,
	} {
		h, _ := parseAll(t, in, testTargets())
		if h.Encoding != want {
			t.Errorf("Encoding = %q, want %q", h.Encoding, want)
		}
		if !slices.Equal(h.Names, []string{"target", "user", "action"}) {
			t.Errorf("Names = %q", h.Names)
		}
	}
}

// TestCRToLF: each line end, CR alone or CRLF, becomes one LF, even when a
// CRLF is split across reads, so line numbers stay the file's.
func TestCRToLF(t *testing.T) {
	got, err := io.ReadAll(&crToLF{r: iotest.OneByteReader(strings.NewReader("a\rb\r\nc\r\r\nd\n"))})
	if err != nil || string(got) != "a\nb\nc\n\nd\n" {
		t.Errorf("got %q, %v", got, err)
	}
}
