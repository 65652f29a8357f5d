package batch

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// hostile is an input of any size that is never held in memory: prefix,
// then unit over and over until size bytes in all, then suffix. pos counts
// the bytes read from it.
type hostile struct {
	prefix, unit, suffix string
	size, pos            int64
	block                string // unit repeated, to copy more than a byte at a time
}

func (h *hostile) Read(p []byte) (int, error) {
	if h.pos >= h.size {
		return 0, io.EOF
	}
	if h.block == "" {
		h.block = strings.Repeat(h.unit, 4096/len(h.unit)+1)
	}
	p = p[:min(int64(len(p)), h.size-h.pos)]
	bodyEnd := h.size - int64(len(h.suffix))
	n := 0
	for n < len(p) {
		pos := h.pos + int64(n)
		switch {
		case pos < int64(len(h.prefix)):
			n += copy(p[n:], h.prefix[pos:])
		case pos < bodyEnd:
			off := (pos - int64(len(h.prefix))) % int64(len(h.block))
			n += copy(p[n:min(int64(len(p)), int64(n)+bodyEnd-pos)], h.block[off:])
		default:
			n += copy(p[n:], h.suffix[pos-bodyEnd:])
		}
	}
	h.pos += int64(n)
	return n, nil
}

// hostileCase is one file built to exhaust memory, and where it must stop.
type hostileCase struct {
	name string
	in   hostile
	line int    // the line the InputError names
	msg  string // in its message
}

const hostileSize = 100 << 20

func hostileCases() []hostileCase {
	const header = "target,user,action,note\n"
	return []hostileCase{
		{"one huge record", hostile{prefix: header + "shop,u1,disable,x\n", unit: "a"}, 3, "longer than 1 MiB: is this a CSV?"},
		{"huge quoted field", hostile{prefix: header + "shop,u1,disable,\"", unit: "a"}, 2, "is a quote never closed?"},
		{"huge quoted field of lines", hostile{prefix: header + "shop,u1,disable,x\n\n,,,\nshop,u2,enable,\"", unit: "a,b\n"}, 5, "is a quote never closed?"},
		{"one row of empty fields", hostile{prefix: header, unit: ","}, 2, "more than 1000 comma-separated fields: is this a CSV?"},
		{"one row of fields", hostile{prefix: "target;user;action;note\n", unit: "a;"}, 2, "more than 1000 semicolon-separated fields"},
		{"one row of spaces", hostile{prefix: header, unit: " "}, 2, "longer than 1 MiB"},
		{"a header of fields", hostile{unit: "user,"}, 1, "more than 1000 comma-separated fields"},
		{"a header with no line end", hostile{unit: "user"}, 1, "longer than 1 MiB"},
		{"UTF-16 one huge record", hostile{prefix: utf16LE("target\tuser\taction\r\n"), unit: "a\x00"}, 2, "longer than 1 MiB"},
		{"UTF-16 one row of fields", hostile{prefix: utf16LE("target\tuser\taction\r\n"), unit: "\t\x00"}, 2, "more than 1000 tab-separated fields"},
	}
}

// TestParseHostileInputs: 100 MB files that are one endless record stop
// with an InputError naming the record's line, having read little of the
// file and allocated little memory. Not parallel: it counts the process's
// allocations.
func TestParseHostileInputs(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.size = hostileSize
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := parseToEnd(&in)
			runtime.ReadMemStats(&after)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Line != tc.line || !strings.Contains(ie.Msg, tc.msg) {
				t.Fatalf("err = %v, want an InputError on line %d saying %q", err, tc.line, tc.msg)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: read %.1f MiB, allocated %.1f MiB", ie, float64(in.pos)/(1<<20), float64(alloc)/(1<<20))
			if in.pos > 4<<20 {
				t.Errorf("read %d bytes of the input before stopping, want at most 4 MiB", in.pos)
			}
			if alloc > 32<<20 {
				t.Errorf("allocated %d bytes, want at most 32 MiB", alloc)
			}
		})
	}
}

// parseToEnd reads every row of r, and returns the error that ends it.
func parseToEnd(r io.Reader) error {
	p, err := NewParser(r, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Each(func(Row) error { return nil })
}

// TestParseRecordLimits: a record of exactly the limits is read; one byte
// or one field more ends the input.
func TestParseRecordLimits(t *testing.T) {
	const header = "target,user,action,note\n"
	row := func(size int) string {
		s := "shop,u1,disable,"
		return s + strings.Repeat("n", size-len(s)-1) + "\n"
	}
	_, rows := parseAll(t, header+row(MaxRecordBytes)+"shop,u2,enable,x\n", testTargets())
	checkRows(t, rows, []int{2, 3}, [][]string{nil, nil})
	requireLimit(t, header+"shop,u0,enable,x\n"+row(MaxRecordBytes+1)+"shop,u2,enable,x\n", 1, 3, "1 MiB")
	// CRLF counts: the record is its bytes up to and with the line feed.
	requireLimit(t, header+strings.TrimSuffix(row(MaxRecordBytes), "\n")+"\r\n", 0, 2, "1 MiB")

	names := []string{"target", "user", "action"}
	for i := len(names); i < MaxRecordFields; i++ {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	wide := strings.Join(names, ",") + "\n"
	cells := "shop,u1,disable" + strings.Repeat(",x", MaxRecordFields-3)
	_, rows = parseAll(t, wide+cells+"\n", testTargets())
	checkRows(t, rows, []int{2}, [][]string{nil})
	// Commas inside quotes are not delimiters.
	_, rows = parseAll(t, header+"shop,u1,disable,\""+strings.Repeat(",", 5000)+"\"\n", testTargets())
	checkRows(t, rows, []int{2}, [][]string{nil})

	// The short row is a row with a problem; the long one ends the input.
	requireLimit(t, wide+"shop,u1,disable\n"+cells+",x\n", 1, 3, "1000")
	requireLimit(t, wide+"shop,u1,disable\n"+strings.Repeat("\"a\n\",", MaxRecordFields)+"\n", 1, 3, "1000")
	requireLimit(t, strings.TrimSuffix(wide, "\n")+",one-more\n"+cells+"\n", 0, 1, "1000")
}

// requireLimit parses in and wants rows rows, then an InputError on line.
func requireLimit(t *testing.T, in string, rows, line int, msg string) {
	t.Helper()
	p, err := NewParser(strings.NewReader(in), testTargets())
	n := 0
	if err == nil {
		defer p.Close()
		err = p.Each(func(Row) error { n++; return nil })
	}
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != line || n != rows || !strings.Contains(ie.Msg, msg) {
		t.Errorf("after %d rows: %v; want %d rows, then an InputError on line %d mentioning %q", n, err, rows, line, msg)
	}
}
