package batch

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Version 2 of the journal writes each row's records compact (README "The
// journal"): a row is known by its index alone, since --resume refuses any
// other input than the one the journal was started with, and the row's
// line, target, user and action are read from it. Keys are short, zero
// values are left out, the outcome is a letter, durations are in µs, and
// the time a row finished is in µs after the base: the started_at of the
// "run" record before it (see timeBase).
//
//	{"t":"i","i":12,"a":1}
//	{"t":"r","i":12,"o":"a","d":"disabled","h":200,"n":1,"l":1834,"f":52210,"w":1}
//
// Other keys of a result: "e" error code, "m" message, "r" retries, and
// "at" (µs since 1970) for a row finished with no run record before it.
const journalVersion = 2

const (
	compactResultPrefix = `{"t":"r","i":`
	compactIntentPrefix = `{"t":"i","i":`
)

// outcomeCode is the letter an outcome is written as; an outcome with no
// letter is written whole.
func outcomeCode(o Outcome) string {
	switch o {
	case Applied:
		return "a"
	case Already:
		return "y"
	case Planned:
		return "p"
	case NotDue:
		return "n"
	case Invalid:
		return "v"
	case Failed:
		return "f"
	case Unknown:
		return "u"
	case Skipped:
		return "s"
	}
	return string(o)
}

// outcomeOfCode undoes outcomeCode; whole names come back as they are.
func outcomeOfCode(s []byte, c *cursor) Outcome {
	if len(s) == 1 {
		switch s[0] {
		case 'a':
			return Applied
		case 'y':
			return Already
		case 'p':
			return Planned
		case 'n':
			return NotDue
		case 'v':
			return Invalid
		case 'f':
			return Failed
		case 'u':
			return Unknown
		case 's':
			return Skipped
		}
	}
	return Outcome(c.intern(s))
}

// timeBase is what a record's "f" counts from: a run's start, to the µs, so
// that base + whole µs is the finish time truncated to the µs.
func timeBase(startedAt time.Time) time.Time { return startedAt.UTC().Truncate(time.Microsecond) }

// appendResult encodes a result record, by hand: it runs once per row on
// the single writer. base is the current run's timeBase (zero: none).
func appendResult(b []byte, r *Result, base time.Time) []byte {
	b = append(b, compactResultPrefix...)
	b = strconv.AppendInt(b, int64(r.Index), 10)
	b = appendField(b, "o", outcomeCode(r.Outcome))
	b = appendText(b, "d", r.Detail)
	b = appendNumber(b, "h", int64(r.HTTPStatus))
	b = appendNumber(b, "n", int64(r.Attempts))
	b = appendText(b, "e", r.ErrorCode)
	b = appendText(b, "m", r.Message)
	b = appendNumber(b, "l", r.Duration.Microseconds())
	switch {
	case r.FinishedAt.IsZero():
	case base.IsZero():
		b = appendNumber(b, "at", r.FinishedAt.UnixMicro())
	default:
		b = appendNumber(b, "f", floorMicros(r.FinishedAt.Sub(base)))
	}
	b = appendNumber(b, "r", int64(r.Retries))
	b = appendNumber(b, "w", int64(r.Writes))
	return append(b, "}\n"...)
}

// floorMicros is d in whole µs, rounded down (before the base too).
func floorMicros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond < 0 {
		us--
	}
	return us
}

// appendIntent encodes an intent record: the writer encodes one before
// every request.
func appendIntent(b []byte, index, attempt int) []byte {
	b = append(b, compactIntentPrefix...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = appendNumber(b, "a", int64(attempt))
	return append(b, "}\n"...)
}

// appendText appends ,"name":"value" unless value is empty.
func appendText(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return appendField(b, name, value)
}

// appendNumber appends ,"name":v unless v is 0.
func appendNumber(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// compactResult is a version 2 result as read, before its row and time
// base are known.
type compactResult struct {
	Result
	rel, abs       int64 // "f" and "at"
	hasRel, hasAbs bool
}

// finish gives the result its row's identity and its finish time.
func (c *compactResult) finish(op Op, base time.Time) Result {
	res := c.Result
	res.Line, res.Target, res.User, res.Action = op.Line, op.Target, op.User, op.Action
	switch {
	case c.hasAbs:
		res.FinishedAt = time.UnixMicro(c.abs).UTC()
	case c.hasRel:
		res.FinishedAt = base.Add(time.Duration(c.rel) * time.Microsecond)
	}
	return res
}

// parseCompactResult reads a result in the form appendResult writes, keys
// in any order, strings with no escapes; ok is false for anything else.
// Without keep it checks the record and reads only the index.
func parseCompactResult(line []byte, keep bool, seen map[string]string) (cr compactResult, ok bool) {
	c := cursor{b: line, ok: true, keep: keep, seen: seen}
	c.lit(compactResultPrefix)
	cr.Index = int(c.int())
	hasOutcome := false
	for c.ok && len(c.b) > 0 && c.b[0] == ',' {
		switch c.key() {
		case "o":
			v := c.raw()
			hasOutcome = c.ok && len(v) > 0
			if hasOutcome && keep {
				cr.Outcome = outcomeOfCode(v, &c)
			}
		case "d":
			cr.Detail = c.text(true)
		case "e":
			cr.ErrorCode = c.text(true)
		case "m":
			cr.Message = c.text(false)
		case "h":
			cr.HTTPStatus = int(c.int())
		case "n":
			cr.Attempts = int(c.int())
		case "l":
			cr.Duration = time.Duration(c.int()) * time.Microsecond
		case "f":
			cr.rel, cr.hasRel = c.int(), true
		case "at":
			cr.abs, cr.hasAbs = c.int(), true
		case "r":
			cr.Retries = int(c.int())
		case "w":
			cr.Writes = int(c.int())
		}
	}
	c.end()
	return cr, c.ok && hasOutcome
}

// parseCompactIntent reads an intent in the form appendIntent writes.
func parseCompactIntent(line []byte) (index int, ok bool) {
	c := cursor{b: line, ok: true}
	c.lit(compactIntentPrefix)
	index = int(c.int())
	if hasPrefix(c.b, `,"a":`) {
		c.lit(`,"a":`)
		c.int()
	}
	c.end()
	return index, c.ok
}

// compactJSON is a version 2 record as encoding/json reads it: for the
// records whose strings hold escapes.
type compactJSON struct {
	T  string `json:"t"`
	I  *int   `json:"i"`
	O  string `json:"o"`
	D  string `json:"d"`
	H  int    `json:"h"`
	N  int    `json:"n"`
	E  string `json:"e"`
	M  string `json:"m"`
	L  int64  `json:"l"`
	F  *int64 `json:"f"`
	At *int64 `json:"at"`
	R  int    `json:"r"`
	W  int    `json:"w"`
}

// decodeCompactResult decodes a version 2 result: by parseCompactResult
// when it can, else by encoding/json.
func decodeCompactResult(line []byte, seen map[string]string) (compactResult, error) {
	if cr, ok := parseCompactResult(line, true, seen); ok {
		return cr, nil
	}
	var rec compactJSON
	if err := json.Unmarshal(line, &rec); err != nil {
		return compactResult{}, err
	}
	if rec.T != "r" || rec.I == nil || rec.O == "" {
		return compactResult{}, errors.New("a result record with no row index or outcome")
	}
	c := cursor{}
	cr := compactResult{Result: Result{Index: *rec.I, Outcome: outcomeOfCode([]byte(rec.O), &c), Detail: rec.D,
		HTTPStatus: rec.H, Attempts: rec.N, ErrorCode: rec.E, Message: rec.M,
		Duration: time.Duration(rec.L) * time.Microsecond, Retries: rec.R, Writes: rec.W}}
	if rec.F != nil {
		cr.rel, cr.hasRel = *rec.F, true
	}
	if rec.At != nil {
		cr.abs, cr.hasAbs = *rec.At, true
	}
	return cr, nil
}

// compactIndex is a version 2 record's row index, checked in full.
func compactIndex(line []byte) (int, error) {
	if cr, ok := parseCompactResult(line, false, nil); ok {
		return cr.Index, nil
	}
	cr, err := decodeCompactResult(line, nil)
	return cr.Index, err
}

// compactKeys are the keys of a version 2 result.
var compactKeys = [...]string{"o", "d", "e", "m", "h", "n", "l", "f", "at", "r", "w"}

// key reads ,"key": and returns key, one of compactKeys.
func (c *cursor) key() string {
	if !c.ok || len(c.b) < 2 || c.b[0] != ',' || c.b[1] != '"' {
		c.ok = false
		return ""
	}
	for _, k := range compactKeys {
		if n := len(k) + 4; len(c.b) >= n && string(c.b[2:2+len(k)]) == k && c.b[n-2] == '"' && c.b[n-1] == ':' {
			c.b = c.b[n:]
			return k
		}
	}
	c.ok = false
	return ""
}

// text reads a string value; common ones are made once (see common).
func (c *cursor) text(common bool) string {
	v := c.raw()
	if !c.ok || !c.keep {
		return ""
	}
	if common {
		return c.intern(v)
	}
	return string(v)
}

// intern makes v a string once per common value, up to a bound.
func (c *cursor) intern(v []byte) string {
	if c.seen == nil {
		return string(v)
	}
	if s, ok := c.seen[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(c.seen) < maxCommon {
		c.seen[s] = s
	}
	return s
}
