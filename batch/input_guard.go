package batch

import (
	"fmt"
	"io"
)

// MaxRecordBytes and MaxRecordFields bound one record of the input, the
// header included. encoding/csv holds a whole record in memory, so a file
// that is one endless record, or has a quote that is never closed, would
// otherwise take all of it.
const (
	MaxRecordBytes  = 1 << 20
	MaxRecordFields = 1000
)

// maxHeld is how much of a line of empty cells the guard holds back; the
// rest of a longer one is passed on and parsed as a row after all.
const maxHeld = 64 << 10

// blank says where a line stands while every cell in it is empty so far.
type blank uint8

const (
	notBlank     blank = iota // a cell holds something: the line is passed on
	cellStart                 // at the start of the line or of a cell
	inSpace                   // in an unquoted cell of spaces
	inQuotes                  // in a quoted cell of spaces
	afterQuote                // after a quote in a quoted cell: its end, or half of a doubled quote
	afterQuoteCR              // after a quoted cell's end and a CR
	blankLine                 // the line feed that ends a line of empty cells
)

// guard sits between the decoded text and encoding/csv, and follows the
// records as csv reads them (a line feed inside quotes does not end one).
//   - It ends the input with an *InputError naming the record's first line
//     when a record passes MaxRecordBytes or MaxRecordFields, so csv never
//     buffers more of it than that.
//   - It drops the lines whose cells are all empty or spaces (Excel leaves
//     them at the bottom) but keeps their line feed: csv skips them as
//     blank lines, counts them, and line numbers stay the file's.
//
// Every pass over the same bytes drops the same lines, so row indexes agree.
type guard struct {
	src     io.Reader
	comma   byte
	special [256]bool // the bytes that move the state: quote, line feed, delimiter
	empty   [256]bool // the bytes a line of empty cells is made of
	in      []byte
	out     []byte // processed bytes not yet read
	off     int
	err     error // returned once out is drained

	line     int // the line of the next byte
	recLine  int // the line the current record starts on
	recBytes int
	fields   int
	quoted   bool
	state    blank
	held     []byte // the current line, while its cells are all empty
}

func newGuard(src io.Reader, comma byte) *guard {
	g := &guard{src: src, comma: comma, in: make([]byte, 32<<10), line: 1}
	g.special['"'], g.special['\n'], g.special[comma] = true, true, true
	for _, c := range []byte{'"', '\n', comma, ' ', '\t', '\r'} {
		g.empty[c] = true
	}
	g.startRecord()
	return g
}

func (g *guard) startRecord() {
	g.recLine, g.recBytes, g.fields, g.state = g.line, 0, 1, cellStart
}

// Read never returns 0, nil: it reads on until it has bytes or an error.
func (g *guard) Read(p []byte) (int, error) {
	for g.off == len(g.out) {
		if g.err != nil {
			return 0, g.err
		}
		g.out, g.off = g.out[:0], 0
		n, err := g.src.Read(g.in)
		g.process(g.in[:n])
		if err != nil && g.err == nil {
			g.end()
			g.err = err
		}
	}
	n := copy(p, g.out[g.off:])
	g.off += n
	return n, nil
}

// process moves b to out, less the lines of empty cells, and stops at the
// first byte past a bound.
func (g *guard) process(b []byte) {
	i, start := 0, 0 // b[start:i] passes through unchanged
	for i < len(b) && g.err == nil {
		switch {
		case g.state == notBlank:
		case g.state == cellStart && len(g.held) == 0 && !g.empty[b[i]]:
			g.state = notBlank // the usual line, which starts with a letter or digit
		default:
			g.out = append(g.out, b[start:i]...)
			if g.blankByte(b[i]) {
				i++
			}
			start = i
			continue
		}
		i = g.pass(b, i)
	}
	g.out = append(g.out, b[start:i]...)
}

// pass follows the bytes of a line that is passed on, from b[i], until its
// record ends, a bound is passed or b ends, and returns where it stopped.
// This loop sees every byte of the input: it is kept tight.
func (g *guard) pass(b []byte, i int) int {
	special := &g.special
	size := g.recBytes - i // the record's size up to b[i] is size+i
	for ; i < len(b); i++ {
		c := b[i]
		if !special[c] {
			continue
		}
		switch {
		case c == '"':
			g.quoted = !g.quoted
		case c == '\n':
			g.line++
			if g.quoted {
				continue
			}
			if g.recBytes = size + i + 1; g.recBytes > MaxRecordBytes {
				g.fail(g.tooLong())
				return i
			}
			g.startRecord()
			return i + 1
		default:
			if g.delimiter(); g.err != nil {
				return i
			}
		}
	}
	if g.recBytes = size + i; g.recBytes > MaxRecordBytes {
		g.fail(g.tooLong())
	}
	return i
}

func (g *guard) delimiter() {
	if g.quoted {
		return
	}
	g.fields++
	if g.fields > MaxRecordFields {
		g.fail(fmt.Sprintf("a record of more than %d %s-separated fields: is this a CSV?", MaxRecordFields, delimiterName(g.comma)))
	}
}

// blankByte takes c while the line's cells are all empty so far, and
// reports whether it did; false means the line holds something, and c is
// to be passed on after the bytes held.
func (g *guard) blankByte(c byte) bool {
	next := g.nextBlank(c)
	switch next {
	case notBlank:
		g.out = append(g.out, g.held...)
		g.held, g.state = g.held[:0], notBlank
		return false
	case blankLine:
		g.held = g.held[:0]
		g.out = append(g.out, '\n')
		g.line++
		g.startRecord()
		return true
	}
	g.held = append(g.held, c)
	g.state = next
	g.recBytes++
	switch {
	case c == '"':
		g.quoted = !g.quoted
	case c == g.comma:
		g.delimiter()
	}
	if len(g.held) > maxHeld {
		g.out = append(g.out, g.held...)
		g.held, g.state = g.held[:0], notBlank
	}
	return true
}

// nextBlank is the state after c, as long as every cell is empty or spaces.
func (g *guard) nextBlank(c byte) blank {
	space := c == ' ' || c == '\r' || (c == '\t' && g.comma != '\t')
	switch g.state {
	case cellStart, inSpace:
		switch {
		case c == g.comma:
			return cellStart
		case space:
			return inSpace
		case c == '\n':
			return blankLine
		case c == '"' && g.state == cellStart:
			return inQuotes
		}
	case inQuotes:
		switch c {
		case '"':
			return afterQuote
		case ' ', '\t', '\r':
			return inQuotes
		}
	case afterQuote:
		switch c {
		case g.comma:
			return cellStart
		case '\n':
			return blankLine
		case '\r':
			return afterQuoteCR
		}
	case afterQuoteCR:
		if c == '\n' {
			return blankLine
		}
	}
	return notBlank
}

// end settles the last line at the end of the input: one of empty cells is
// dropped; one inside an open quote is passed on, for csv to report.
func (g *guard) end() {
	if g.state == inQuotes {
		g.out = append(g.out, g.held...)
	}
	g.held = g.held[:0]
}

func (g *guard) tooLong() string {
	msg := fmt.Sprintf("a record longer than %d MiB: is this a CSV?", MaxRecordBytes>>20)
	if g.quoted {
		msg += " (it is inside a quoted field: is a quote never closed?)"
	}
	return msg
}

func (g *guard) fail(msg string) {
	g.err = &InputError{Line: g.recLine, Msg: msg}
}
