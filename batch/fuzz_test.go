package batch

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	unicode16 "golang.org/x/text/encoding/unicode"
)

// FuzzParse feeds arbitrary bytes through the parser. Whatever the input, the
// parser must not panic, must end with io.EOF or an *InputError, and every row
// it returns must satisfy the invariants the report and the run rely on.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("target,user,action\nshop,u1,disable\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := Targets{
			"shop":  withRules(TargetInfo{Vendor: "epixel", Actions: []Action{Disable, Enable, UpgradeRole, DowngradeRole}}),
			"admin": {Vendor: "clearsquare", Actions: []Action{ToggleStatus}},
			"chat":  withRules(TargetInfo{Vendor: "msgkart", Actions: []Action{Disable, Enable}}),
		}
		p, err := NewParser(bytes.NewReader(data), targets)
		if err != nil {
			requireInputError(t, err)
			return
		}
		// A second parser in ops-only mode must agree row for row.
		ops, err := NewParser(bytes.NewReader(data), targets)
		if err != nil {
			t.Fatalf("second parse of the same bytes: %v", err)
		}
		ops.OpsOnly()
		h := p.Header()
		if _, ok := h.Known[ColUser]; !ok {
			t.Fatalf("header %q accepted without a user column", h.Names)
		}
		if _, ok := h.Known[ColAction]; !ok {
			t.Fatalf("header %q accepted without an action column", h.Names)
		}
		if !strings.ContainsRune(",;\t", h.Delimiter) || h.Encoding == "" {
			t.Fatalf("header read with delimiter %q, encoding %q", h.Delimiter, h.Encoding)
		}
		prev := 1 // the header's line
		var rows []Row
		for i := 0; ; i++ {
			row, err := p.Next()
			opsRow, opsErr := ops.Next()
			if !sameParse(row, err, opsRow, opsErr) {
				t.Fatalf("ops-only parse differs at row %d:\n full %+v, %v\n ops  %+v, %v", i, row, err, opsRow, opsErr)
			}
			if errors.Is(err, io.EOF) {
				// io.EOF before any row: a header-only file, 0 rows.
				compareReference(t, data, h, rows, err)
				return
			}
			if err != nil {
				requireInputError(t, err)
				compareReference(t, data, h, rows, err)
				return
			}
			rows = append(rows, row)
			if row.Index != i {
				t.Fatalf("row %d has Index %d", i, row.Index)
			}
			// Records start on distinct physical lines, after the header.
			if row.Line <= prev {
				t.Fatalf("row %d starts on line %d, after a row on line %d", i, row.Line, prev)
			}
			prev = row.Line
			checkFuzzRow(t, h, row, targets, len(data))
		}
	})
}

// compareReference checks the rows against a plain encoding/csv read of
// the same text, less the records whose cells are all ASCII spaces or
// empty: the guard must drop exactly those, and change nothing else.
func compareReference(t *testing.T, data []byte, h Header, rows []Row, end error) {
	t.Helper()
	text := data
	switch h.Encoding {
	case EncodingUTF8BOM:
		text = data[3:]
	case EncodingUTF16LE, EncodingUTF16BE:
		var err error
		// ExpectBOM: the byte order mark says which of the two it is.
		if text, err = unicode16.UTF16(unicode16.LittleEndian, unicode16.ExpectBOM).NewDecoder().Bytes(data); err != nil {
			t.Fatalf("decoding %s: %v", h.Encoding, err)
		}
	}
	if len(text) >= maxHeld {
		return
	}
	text = macLines(text)
	cr := csv.NewReader(bytes.NewReader(text))
	cr.Comma, cr.FieldsPerRecord = h.Delimiter, -1
	var refErr error
	first := true
	i := 0
	for {
		rec, err := cr.Read()
		if err != nil {
			refErr = err
			break
		}
		if !slices.ContainsFunc(rec, func(c string) bool { return strings.Trim(c, " \t\r") != "" }) {
			continue
		}
		if first { // the header
			first = false
			continue
		}
		line, _ := cr.FieldPos(0)
		if i == len(rows) {
			var ie *InputError
			if errors.As(end, &ie) && ie.Line == line && len(rec) > MaxRecordFields {
				return // the guard stopped a record csv would read whole
			}
			t.Fatalf("encoding/csv reads a record %q on line %d after the parser's last row (the parser ended with %v)", rec, line, end)
		}
		row := rows[i]
		if row.Line != line || (len(row.Record) > 0 && !slices.Equal(row.Record, rec)) {
			t.Fatalf("row %d: line %d, %q; encoding/csv reads line %d, %q", i, row.Line, row.Record, line, rec)
		}
		i++
	}
	if i < len(rows) {
		t.Fatalf("the parser has %d rows, encoding/csv %d", len(rows), i)
	}
	var perr *csv.ParseError
	var ie *InputError
	switch {
	case errors.Is(refErr, io.EOF) && !errors.Is(end, io.EOF):
		t.Fatalf("the parser ends with %v, encoding/csv reads to the end", end)
	case errors.As(refErr, &perr) && (!errors.As(end, &ie) || ie.Line != perr.StartLine):
		t.Fatalf("the parser ends with %v, encoding/csv with %v", end, refErr)
	}
}

// macLines is the reference for the parser's old Mac files: text whose
// first line ends in CR alone has each CRLF, and each CR alone, read as LF.
func macLines(text []byte) []byte {
	i := bytes.IndexAny(text, "\r\n")
	if i < 0 || text[i] == '\n' || (i+1 < len(text) && text[i+1] == '\n') {
		return text
	}
	text = bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(text, []byte("\r"), []byte("\n"))
}

// sameParse reports whether a full and an ops-only Next gave the same row
// (its cells aside) and the same error.
func sameParse(full Row, fullErr error, ops Row, opsErr error) bool {
	if (fullErr == nil) != (opsErr == nil) || (fullErr != nil && fullErr.Error() != opsErr.Error()) {
		return false
	}
	if len(ops.Record) != 0 {
		return false
	}
	full.Record = nil
	ops.Record = nil
	return reflect.DeepEqual(full, ops)
}

func requireInputError(t *testing.T, err error) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v is %T, want *InputError", err, err)
	}
	if ie.Msg == "" || ie.Line < 0 {
		t.Fatalf("incomplete InputError %+v", ie)
	}
}

func checkFuzzRow(t *testing.T, h Header, row Row, targets Targets, inputLen int) {
	t.Helper()
	size := 0
	for _, c := range row.Record {
		size += len(c)
	}
	if size > MaxRecordBytes || len(row.Record) > MaxRecordFields {
		t.Fatalf("row at line %d: %d cells, %d bytes: past the record limits", row.Line, len(row.Record), size)
	}
	// Rows of empty cells are dropped (lines longer than maxHeld aside).
	if len(row.Record) > 0 && inputLen < maxHeld && !slices.ContainsFunc(row.Record, func(c string) bool {
		return strings.Trim(c, " \t\r") != ""
	}) {
		t.Fatalf("row at line %d has only empty cells %q: it should have been skipped", row.Line, row.Record)
	}
	for _, p := range row.Problems {
		if p.Column == "" || p.Msg == "" || p.Line != row.Line {
			t.Fatalf("row at line %d: incomplete problem %+v", row.Line, p)
		}
	}
	if !row.Valid() {
		return
	}
	op := row.Op
	if len(row.Record) != len(h.Names) {
		t.Fatalf("valid row with %d fields under a %d-column header", len(row.Record), len(h.Names))
	}
	if op.Index != row.Index || op.Line != row.Line {
		t.Fatalf("Op at %d/%d, row at %d/%d", op.Index, op.Line, row.Index, row.Line)
	}
	if op.User == "" || op.Action == "" {
		t.Fatalf("valid row without user or action: %+v", op)
	}
	if utf8.RuneCountInString(op.User) > MaxUserLen || !utf8.ValidString(op.User) ||
		strings.IndexFunc(op.User, unicode.IsControl) >= 0 || strings.IndexFunc(op.User, isHidden) >= 0 ||
		isScientific(op.User) {
		t.Fatalf("valid row with user %q", op.User)
	}
	if !op.EffectiveAt.IsZero() && op.EffectiveAt.Location() != time.UTC {
		t.Fatalf("valid row with effective_at %v, not in UTC", op.EffectiveAt)
	}
	info, ok := targets[op.Target]
	if !ok || !info.supports(op.Action) {
		t.Fatalf("valid row with target %q and action %s", op.Target, op.Action)
	}
	if (op.Action == UpgradeRole || op.Action == DowngradeRole) && op.Role == "" {
		t.Fatalf("valid %s without a role", op.Action)
	}
	if info.Validator != nil && hasProblems(info.Validator.Validate(op, info.Settings)) {
		t.Fatalf("valid %s row its vendor refuses: %+v", info.Vendor, op)
	}
	for _, c := range op.Cells {
		if c.Column == ColEmail && !strings.Contains(c.Value, "@") {
			t.Fatalf("valid %s row with email %q", info.Vendor, c.Value)
		}
	}
}

func hasProblems(_ Op, p []Problem) bool { return len(p) > 0 }
