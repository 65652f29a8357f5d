package batch

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendField appends ,"name":"value" with value escaped as JSON.
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, _ := json.Marshal(value) // rare: let encoding/json escape it
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, value...)
	return append(b, '"')
}

// resultPrefix starts every result record appendResultV1 writes.
const resultPrefix = `{"type":"result",`

// recordType returns a record's type. Result records, most of a journal,
// are known by their prefix: every caller decodes them in full or checks
// them (see resultRowIndex), which checks the rest of the line. Intent
// records are checked here; any other record goes to encoding/json.
func recordType(line []byte) (string, error) {
	if hasPrefix(line, compactResultPrefix) || hasPrefix(line, resultPrefix) {
		return "result", nil
	}
	if _, ok := parseCompactIntent(line); ok {
		return "intent", nil
	}
	if _, ok := parseIntent(line, false); ok {
		return "intent", nil
	}
	head, err := headOf(line)
	return head.kind(), err
}

// head is the type of a record of either version.
type head struct {
	Type string `json:"type"` // version 1, and records that are not a row's
	T    string `json:"t"`    // version 2
}

func headOf(line []byte) (head, error) {
	var h head
	err := json.Unmarshal(line, &h)
	return h, err
}

func (h head) kind() string {
	switch h.T {
	case "r":
		return "result"
	case "i":
		return "intent"
	}
	return h.Type
}

// isCompact reports whether a row's record is in version 2's layout.
func isCompact(line []byte) bool {
	if hasPrefix(line, compactResultPrefix) || hasPrefix(line, compactIntentPrefix) {
		return true
	}
	if hasPrefix(line, resultPrefix) || hasPrefix(line, intentPrefix) {
		return false
	}
	h, _ := headOf(line)
	return h.T != ""
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// decodeResult decodes a result record of either version. A version 2
// record holds neither the row's identity nor its finish time: finish
// gives them.
func decodeResult(line []byte, seen map[string]string) (compactResult, bool, error) {
	if isCompact(line) {
		cr, err := decodeCompactResult(line, seen)
		return cr, true, err
	}
	if res, ok := parseWith(&cursor{b: line, ok: true, keep: true, seen: seen}); ok {
		return compactResult{Result: res}, false, nil
	}
	var rec struct{ Result }
	err := json.Unmarshal(line, &rec)
	return compactResult{Result: rec.Result}, false, err
}

// resultRowIndex is a result record's row index; the record is checked in
// full, but no string made nor time read.
func resultRowIndex(line []byte) (int, error) {
	if isCompact(line) {
		return compactIndex(line)
	}
	if i, ok := resultIndex(line); ok {
		return i, nil
	}
	var rec struct {
		Index int `json:"i"`
	}
	err := json.Unmarshal(line, &rec)
	return rec.Index, err
}

// resultIndex is parseWith for the index: it checks the whole layout but
// decodes only the row's index, and neither makes strings nor reads the
// time (json.Unmarshal of the index alone does not either).
func resultIndex(line []byte) (int, bool) {
	res, ok := parseWith(&cursor{b: line, ok: true})
	return res.Index, ok
}

func parseWith(c *cursor) (res Result, ok bool) {
	c.lit(resultPrefix + `"i":`)
	res.Index = int(c.int())
	c.lit(`,"line":`)
	res.Line = int(c.int())
	res.Target = c.common("target")
	res.User = c.field("user")
	res.Action = Action(c.common("action"))
	res.Outcome = Outcome(c.common("outcome"))
	res.Detail = c.common("detail")
	c.lit(`,"http_status":`)
	res.HTTPStatus = int(c.int())
	c.lit(`,"attempts":`)
	res.Attempts = int(c.int())
	res.ErrorCode = c.common("error_code")
	res.Message = c.field("message")
	c.lit(`,"duration_ns":`)
	res.Duration = time.Duration(c.int())
	c.lit(`,"finished_at":`)
	if at := c.raw(); c.ok && c.keep {
		c.ok = res.FinishedAt.UnmarshalText(at) == nil // as Time.UnmarshalJSON does
	}
	c.lit(`,"retries":`)
	res.Retries = int(c.int())
	if hasPrefix(c.b, `,"writes":`) { // journals from before it lack it
		c.lit(`,"writes":`)
		res.Writes = int(c.int())
	}
	c.end()
	return res, c.ok
}

// intentPrefix starts every intent record appendIntentV1 writes.
const intentPrefix = `{"type":"intent",`

// parseIntent decodes an intent record laid out exactly as version 1 wrote
// it (appendIntentV1), with no escapes in its strings; ok is false for anything else.
// Without keep it only checks the layout (the record is then valid JSON).
func parseIntent(line []byte, keep bool) (res Result, ok bool) {
	c := cursor{b: line, ok: true, keep: keep}
	c.lit(intentPrefix + `"i":`)
	res.Index = int(c.int())
	c.lit(`,"line":`)
	res.Line = int(c.int())
	res.Target = c.field("target")
	res.User = c.field("user")
	res.Action = Action(c.field("action"))
	c.lit(`,"outcome":"","attempts":0,"duration_ns":0,"finished_at":"0001-01-01T00:00:00Z"`)
	if hasPrefix(c.b, `,"attempt":`) {
		c.lit(`,"attempt":`)
		c.int()
	}
	c.end()
	return res, c.ok
}

// cursor reads a journal record's fixed layout; ok turns false at the
// first thing out of place, and stays false. Without keep it checks strings
// but makes none.
type cursor struct {
	b    []byte
	ok   bool
	keep bool
	seen map[string]string // common values made already (nil: none kept)
}

// end reads the record's closing brace and newline.
func (c *cursor) end() {
	c.lit("}")
	if len(c.b) == 1 && c.b[0] == '\n' {
		c.b = c.b[1:]
	}
	if len(c.b) != 0 {
		c.ok = false
	}
}

func (c *cursor) lit(s string) {
	if c.ok && hasPrefix(c.b, s) {
		c.b = c.b[len(s):]
		return
	}
	c.ok = false
}

// int reads a JSON integer that fits an int64 (no leading zeros).
func (c *cursor) int() int64 {
	if !c.ok {
		return 0
	}
	n := 0
	if n < len(c.b) && c.b[n] == '-' {
		n++
	}
	digits := n
	for n < len(c.b) && c.b[n] >= '0' && c.b[n] <= '9' {
		n++
	}
	if n == digits || c.b[digits] == '0' && n > digits+1 {
		c.ok = false
		return 0
	}
	v, err := strconv.ParseInt(string(c.b[:n]), 10, 64)
	c.ok = err == nil
	c.b = c.b[n:]
	return v
}

// field reads ,"name":"value" where value is printable ASCII with no quote
// or backslash: what appendField writes unescaped.
func (c *cursor) field(name string) string {
	if v := c.value(name); c.ok && c.keep {
		return string(v)
	}
	return ""
}

// common is field for the values that repeat from row to row (targets,
// actions, outcomes, details, error codes): each is made once, up to a
// bound.
func (c *cursor) common(name string) string {
	v := c.value(name)
	if !c.ok || !c.keep {
		return ""
	}
	return c.intern(v)
}

// maxCommon bounds the common values an OutcomeIndex keeps.
const maxCommon = 1024

// value reads ,"name":"value" and returns value's bytes.
func (c *cursor) value(name string) []byte {
	if !c.ok || len(c.b) < len(name)+4 || c.b[0] != ',' || c.b[1] != '"' ||
		string(c.b[2:2+len(name)]) != name || string(c.b[2+len(name):4+len(name)]) != `":` {
		c.ok = false
		return nil
	}
	c.b = c.b[4+len(name):]
	return c.raw()
}

// raw reads a string's bytes, quotes excluded, checking they need no
// unescaping.
func (c *cursor) raw() []byte {
	if !c.ok || len(c.b) == 0 || c.b[0] != '"' {
		c.ok = false
		return nil
	}
	for i := 1; i < len(c.b); i++ {
		switch ch := c.b[i]; {
		case ch == '"':
			v := c.b[1:i]
			c.b = c.b[i+1:]
			return v
		case ch < 0x20 || ch == '\\' || ch >= 0x7f:
			c.ok = false
			return nil
		}
	}
	c.ok = false
	return nil
}
