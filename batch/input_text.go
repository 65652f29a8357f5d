package batch

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// The encodings Header.Encoding names.
const (
	EncodingUTF8    = "UTF-8"
	EncodingUTF8BOM = "UTF-8 with BOM"
	EncodingUTF16LE = "UTF-16LE"
	EncodingUTF16BE = "UTF-16BE"
)

// textBuffer is the size of the buffers the input is read through; the
// header line is looked for within it.
const textBuffer = 64 << 10

// ParseDelimiter reads a --delimiter value: "," or "comma", ";" or
// "semicolon", "tab" or `\t` (or a tab). An empty string returns 0, which
// NewParserOptions takes as "tell it from the header line".
func ParseDelimiter(s string) (rune, error) {
	if s == "\t" {
		return '\t', nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return 0, nil
	case ",", "comma":
		return ',', nil
	case ";", "semicolon":
		return ';', nil
	case "tab", `\t`:
		return '\t', nil
	}
	return 0, fmt.Errorf("delimiter %q: use , or ; or tab", s)
}

// delimiterName names a delimiter in messages ("semicolon-separated").
func delimiterName(c byte) string {
	switch c {
	case ';':
		return "semicolon"
	case '\t':
		return "tab"
	}
	return "comma"
}

// openText returns the input as UTF-8 text, whatever Excel saved it as,
// with the name of the encoding found. It drops a byte order mark, and
// refuses input that is not text with a message an operator can act on.
func openText(r io.Reader) (*bufio.Reader, string, error) {
	br := bufio.NewReaderSize(r, textBuffer)
	head, _ := br.Peek(4)
	var utf16 transform.Transformer
	switch {
	case len(head) == 0:
		return nil, "", emptyInput()
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3)
		return br, EncodingUTF8BOM, checkText(br)
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		utf16 = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder()
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		utf16 = unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()
	default:
		return br, EncodingUTF8, checkText(br)
	}
	enc := EncodingUTF16LE
	if head[0] == 0xFE {
		enc = EncodingUTF16BE
	}
	// The decoder's buffers are fixed: it streams, whatever the input's size.
	text := bufio.NewReaderSize(transform.NewReader(br, utf16), textBuffer)
	return text, enc, checkText(text)
}

func emptyInput() error {
	return &InputError{Msg: "the input is empty: expected a header row such as target,user,action"}
}

// checkText refuses text that holds NUL bytes near its start: a binary file,
// UTF-16 saved without a byte order mark, or UTF-32.
func checkText(br *bufio.Reader) error {
	head, _ := br.Peek(512)
	i := bytes.IndexByte(head, 0)
	switch {
	case i < 0:
		return nil
	case looksUTF16(head):
		return &InputError{Msg: "the input holds NUL bytes: it looks like UTF-16 without a byte order mark; " +
			"save it as \"CSV UTF-8\" or as \"Unicode Text\" and try again"}
	}
	return &InputError{Msg: "the input is not text (it holds NUL bytes): expected a CSV or tab-separated text file"}
}

// looksUTF16 reports whether every other byte of head is NUL, as in ASCII
// text saved as UTF-16.
func looksUTF16(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	even, odd := 0, 0
	for i, b := range head {
		if b == 0 && i%2 == 0 {
			even++
		} else if b == 0 {
			odd++
		}
	}
	half := len(head) / 2
	return even >= half*9/10 || odd >= half*9/10
}

// sniffDelimiter tells the delimiter from the header line (the first line
// that holds more than delimiters and spaces): the most frequent of comma,
// semicolon and tab outside quotes; comma on a tie or when there is none.
func sniffDelimiter(br *bufio.Reader) byte {
	for n := 4 << 10; ; n *= 4 {
		n = min(n, br.Size())
		head, err := br.Peek(n)
		c, whole := headerDelimiter(head)
		if whole || err != nil || n == br.Size() {
			return c
		}
	}
}

// SniffDelimiter tells the delimiter of a CSV file whose start is head
// (after any byte order mark) from its header line, as the parser does:
// for reading back report files written with the input's delimiter.
func SniffDelimiter(head []byte) rune {
	c, _ := headerDelimiter(head)
	return rune(c)
}

// headerDelimiter counts the candidate delimiters in the header line at the
// start of head, outside quotes. whole reports whether that line ended
// within head.
func headerDelimiter(head []byte) (c byte, whole bool) {
	var commas, semicolons, tabs int
	quoted, text := false, false
	for _, b := range head {
		switch {
		case b == '"':
			quoted = !quoted
		case quoted:
			text = true
		case b == '\n' && text:
			whole = true
		case b == '\n': // an empty line before the header: start again
			commas, semicolons, tabs = 0, 0, 0
		case b == ',':
			commas++
		case b == ';':
			semicolons++
		case b == '\t':
			tabs++
		case b != ' ' && b != '\r':
			text = true
		}
		if whole {
			break
		}
	}
	switch {
	case semicolons > commas && semicolons >= tabs:
		return ';', whole
	case tabs > commas && tabs > semicolons:
		return '\t', whole
	}
	return ',', whole
}

// crLines reads text whose header line ends in CR alone (old Mac "CSV"
// exports) as text whose lines end in LF, so that encoding/csv sees every
// line and counts them as the file's physical lines. Other text is returned
// as it is, CR in its cells included.
func crLines(br *bufio.Reader) *bufio.Reader {
	head, _ := br.Peek(br.Size())
	i := bytes.IndexAny(head, "\r\n")
	if i < 0 || head[i] == '\n' || (i+1 < len(head) && head[i+1] == '\n') {
		return br
	}
	return bufio.NewReaderSize(&crToLF{r: br}, textBuffer)
}

// crToLF turns each line end, CR alone or CRLF, into one LF.
type crToLF struct {
	r      io.Reader
	skipLF bool // the last byte read was a CR: an LF right after it is its pair
}

func (c *crToLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	out := 0
	for _, b := range p[:n] {
		if b == '\n' && c.skipLF {
			c.skipLF = false
			continue
		}
		c.skipLF = b == '\r'
		if b == '\r' {
			b = '\n'
		}
		p[out] = b
		out++
	}
	if out == 0 && n > 0 && err == nil {
		return c.Read(p) // a lone LF that paired a CR: read on rather than return 0, nil
	}
	return out, err
}
