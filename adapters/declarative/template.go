package declarative

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// template is a text with {placeholders}: {user}, {config.KEY} or a column
// name. It is split once at load; a value is escaped for where it lands
// when the request is built, never at load.
type template struct {
	raw   string
	parts []part
	pos   pos
	set   bool
}

// part is literal text, or one placeholder when ref is set.
type part struct {
	lit string
	ref ref
}

type refKind int

const (
	refNone refKind = iota
	refUser
	refConfig
	refColumn
)

type ref struct {
	kind refKind
	name string
}

func (r ref) String() string {
	switch r.kind {
	case refUser:
		return "{user}"
	case refConfig:
		return "{config." + r.name + "}"
	}
	return "{" + r.name + "}"
}

func (t *template) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return posErr(posOf(n), "expected a text, such as \"Bearer {config.token}\"")
	}
	parts, err := parseTemplate(n.Value)
	if err != nil {
		return posErr(posOf(n), "%v", err)
	}
	*t = template{raw: n.Value, parts: parts, pos: posOf(n), set: true}
	return nil
}

type templateError string

func (e templateError) Error() string { return string(e) }

// parseTemplate splits s at its placeholders. "{{" and "}}" stand for a
// literal brace.
func parseTemplate(s string) ([]part, error) {
	var parts []part
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, templateError("a { without its } (write {{ for a literal brace)")
			}
			r, err := parseRef(s[i+1 : i+end])
			if err != nil {
				return nil, err
			}
			if lit.Len() > 0 {
				parts = append(parts, part{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, part{ref: r})
			i += end
		case c == '}':
			return nil, templateError("a } without its { (write }} for a literal brace)")
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, part{lit: lit.String()})
	}
	return parts, nil
}

func parseRef(s string) (ref, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "user":
		return ref{kind: refUser}, nil
	case strings.HasPrefix(s, "config.") && validName(s[len("config."):]):
		return ref{kind: refConfig, name: s[len("config."):]}, nil
	case validName(s):
		return ref{kind: refColumn, name: s}, nil
	}
	return ref{}, templateError("placeholder {" + s + "} is not {user}, {config.KEY} or {COLUMN}")
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// refs lists the template's placeholders.
func (t template) refs() []ref {
	var out []ref
	for _, p := range t.parts {
		if p.ref.kind != refNone {
			out = append(out, p.ref)
		}
	}
	return out
}

// checkPath refuses a path that could leave base_url: it must start with
// '/', its literal text may hold no '?', '#', '\\', '%' or ".." segment,
// and each placeholder must be a whole segment, so that a value is always
// exactly one escaped segment below base_url.
func (t template) checkPath() error {
	if !t.set || !strings.HasPrefix(t.raw, "/") || strings.HasPrefix(t.raw, "//") {
		return posErr(t.pos, "path must start with a single / (it is appended to base_url)")
	}
	for _, p := range t.parts {
		if p.ref.kind != refNone {
			continue
		}
		if strings.ContainsAny(p.lit, "?#\\% \t\r\n") {
			return posErr(t.pos, "path %q holds one of ? # \\ %% or a space: put query parameters under query", t.raw)
		}
		for _, seg := range strings.Split(p.lit, "/") {
			if seg == "." || seg == ".." {
				return posErr(t.pos, "path %q holds a %q segment", t.raw, seg)
			}
		}
	}
	for i, p := range t.parts {
		if p.ref.kind == refNone {
			continue
		}
		before := i == 0 || strings.HasSuffix(t.parts[i-1].lit, "/")
		after := i == len(t.parts)-1 || strings.HasPrefix(t.parts[i+1].lit, "/")
		if !before || !after {
			return posErr(t.pos, "in path %q, %s must be a whole segment (/%s/): a value is always one escaped segment", t.raw, p.ref, p.ref)
		}
	}
	return nil
}

// where says how a value is escaped for the place it lands.
type where int

const (
	inPath where = iota
	inQuery
	inHeader
	inJSON
	inForm
)

// render appends t with every placeholder resolved and escaped for w:
// inPath escapes each value as one path segment; inJSON as the inside of a
// JSON string; inHeader leaves it as it is (httpcall.Do refuses a control
// character, so CR/LF never reaches a header); query and form values are
// escaped by their encoders. An empty value is an error naming it.
func (t *template) render(dst []byte, v *values, w where) ([]byte, error) {
	for i := range t.parts {
		p := &t.parts[i]
		if p.ref.kind == refNone {
			dst = append(dst, p.lit...)
			continue
		}
		s, err := v.get(p.ref)
		if err != nil {
			return dst, err
		}
		switch w {
		case inPath:
			dst = append(dst, httpcall.Segment(s)...)
		case inJSON:
			dst = appendJSONInner(dst, s)
		default:
			dst = append(dst, s...)
		}
	}
	return dst, nil
}

// renderString is render into a new string.
func (t *template) renderString(v *values, w where) (string, error) {
	if len(t.parts) == 1 && t.parts[0].ref.kind == refNone {
		return t.parts[0].lit, nil
	}
	b, err := t.render(make([]byte, 0, len(t.raw)+32), v, w)
	return string(b), err
}

// appendJSONInner appends s escaped as the inside of a JSON string, as
// encoding/json would write it (invalid UTF-8 becomes U+FFFD).
func appendJSONInner(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// values resolves placeholders for one op.
type values struct {
	op   *batch.Op
	a    *Adapter
	cols map[string]*columnSpec
}

// missingError is a placeholder with no value: nothing is sent.
func missingError(r ref) *batch.Error {
	msg := "no value for " + r.String()
	switch r.kind {
	case refUser:
		msg = "empty user id"
	case refConfig:
		msg += ": set " + r.name + " on the target"
	case refColumn:
		msg += ": fill the " + r.name + " column"
	}
	return &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: msg}
}

func (v *values) get(r ref) (string, error) {
	var s string
	switch r.kind {
	case refUser:
		s = v.op.User
	case refConfig:
		s = v.a.config[r.name]
	case refColumn:
		s = v.column(r.name)
	}
	if s == "" {
		return "", v.missing(r)
	}
	return s, nil
}

// missing names the missing value; a column with a fallback says both
// places it may come from.
func (v *values) missing(r ref) error {
	if c := v.cols[r.name]; r.kind == refColumn && c != nil && c.Fallback != "" {
		return &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: "no " + r.name + ": set " + c.Fallback + " on the target or " + r.name + " in the row"}
	}
	return missingError(r)
}

// column is a column's value as sent: the cell (or the target's fallback
// key), an enum value in the spec's spelling, a bool as the spec spells it.
func (v *values) column(name string) string {
	c := v.cols[name]
	s := Column(*v.op, name)
	if c == nil {
		return s
	}
	return c.wire(s, v.a.config)
}
