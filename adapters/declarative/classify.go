package declarative

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// The outcomes a rule's then may name.
const (
	thenApplied      = "applied"
	thenAlready      = "already"
	thenNotFound     = "not_found"
	thenUnauthorized = "unauthorized"
	thenPermanent    = "permanent"
	thenRetryable    = "retryable"
	thenAmbiguous    = "ambiguous"
	thenNotVendorAPI = "not_vendor_api"
)

// Outcomes lists what a rule's then may say, in README's order.
var Outcomes = []string{thenApplied, thenAlready, thenNotFound, thenUnauthorized, thenPermanent,
	thenRetryable, thenAmbiguous, thenNotVendorAPI}

// answer is one response, parsed only as far as the rules ask.
type answer struct {
	status      int
	contentType string
	header      http.Header
	body        []byte // secrets already redacted

	parsed, isJSON bool
	doc            any

	msgsDone bool
	msgs     []message
	text     string // the messages as one safe line
}

// message is one text the vendor sent, with the field it was under.
type message struct{ field, text string }

func (an *answer) json() (any, bool) {
	if !an.parsed {
		an.parsed = true
		an.isJSON = len(bytes.TrimSpace(an.body)) > 0 && json.Unmarshal(an.body, &an.doc) == nil
	}
	return an.doc, an.isJSON
}

// result is a classified success.
type result struct {
	already bool
	status  int
	message string
}

// classify applies the request's rules, the spec's rules, then the
// built-in ones: 2xx applied, 429 retryable (Retry-After honoured), 5xx
// ambiguous, anything else a permanent bad_response quoting the body,
// marked not the vendor's API unless the body is the vendor's envelope.
func (a *Adapter) classify(rq *requestSpec, v *values, an *answer) (result, error) {
	for _, rules := range [2][]rule{rq.Rules, a.spec.file.Rules} {
		for i := range rules {
			if matched, ok := a.match(&rules[i].If, v, an); ok {
				return a.outcome(&rules[i], an, matched)
			}
		}
	}
	return a.outcome(a.builtin(an), an, "")
}

var (
	builtinApplied   = rule{Then: thenApplied}
	builtinRetryable = rule{Then: thenRetryable}
	builtinAmbiguous = rule{Then: thenAmbiguous}
	builtinOther     = rule{Then: thenPermanent, Code: batch.CodeBadResponse, Message: "unexpected answer: {body}"}
	builtinForeign   = rule{Then: thenNotVendorAPI, Message: "unexpected answer: {body}"}
)

func (a *Adapter) builtin(an *answer) *rule {
	switch {
	case an.status/100 == 2:
		return &builtinApplied
	case an.status == http.StatusTooManyRequests:
		return &builtinRetryable
	case an.status >= 500:
		return &builtinAmbiguous
	case a.envelope(an):
		return &builtinOther
	}
	return &builtinForeign
}

// match reports whether every condition of c holds. matched is the
// vendor message a message pattern matched, if any.
func (a *Adapter) match(c *cond, v *values, an *answer) (matched string, ok bool) {
	switch {
	case c.Status.set && !c.Status.has(an.status):
		return "", false
	case len(c.Actions) > 0 && !hasAction(c.Actions, v.op.Action):
		return "", false
	case len(c.Columns) > 0 && !holds(c.Columns, v.op):
		return "", false
	case c.ContentType != "" && !mediaIs(an.contentType, c.ContentType):
		return "", false
	case c.Body != "" && !a.bodyIs(an, c.Body):
		return "", false
	case c.Envelope != nil && a.envelope(an) != *c.Envelope:
		return "", false
	}
	for i := range c.JSON {
		if !c.JSON[i].holds(an) {
			return "", false
		}
	}
	if c.Message == nil && c.Field == "" {
		return "", true
	}
	for _, m := range a.messages(an) {
		if c.Field != "" && m.field != c.Field {
			continue
		}
		if c.Message == nil {
			return m.text, true
		}
		if c.matchText(m.text, v) {
			return m.text, true
		}
	}
	return "", false
}

// matchText matches a message's text, whitespace collapsed, against the
// pattern; each named capture in captures must equal its column's value.
func (c *cond) matchText(text string, v *values) bool {
	text = strings.Join(strings.Fields(text), " ")
	if len(c.Captures) == 0 {
		return c.Message.re.MatchString(text)
	}
	sub := c.Message.re.FindStringSubmatch(text)
	if sub == nil {
		return false
	}
	for group, col := range c.Captures {
		i := c.Message.re.SubexpIndex(group)
		if i < 0 || !strings.EqualFold(sub[i], v.column(col)) {
			return false
		}
	}
	return true
}

func hasAction(list []actionName, a batch.Action) bool {
	for _, x := range list {
		if batch.Action(x) == a {
			return true
		}
	}
	return false
}

// mediaIs compares a Content-Type with a rule's: "json" is any JSON media
// type (application/json or +json); a value starting with '+' a suffix;
// one ending in '*' a prefix; anything else the media type itself, in any
// case.
func mediaIs(contentType, want string) bool {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case want == "json":
		return mt == "application/json" || strings.HasSuffix(mt, "+json")
	case strings.HasPrefix(want, "+"):
		return strings.HasSuffix(mt, strings.ToLower(want))
	case strings.HasSuffix(want, "*"):
		return strings.HasPrefix(mt, strings.ToLower(strings.TrimSuffix(want, "*")))
	}
	return mt == strings.ToLower(want)
}

func (a *Adapter) bodyIs(an *answer, want string) bool {
	switch want {
	case "empty":
		return len(bytes.TrimSpace(an.body)) == 0
	case "not_empty":
		return len(bytes.TrimSpace(an.body)) > 0
	case "html":
		return page(an)
	}
	_, isJSON := an.json()
	return isJSON == (want == "json")
}

// page reports whether the answer is a web page, which no vendor's API
// answers (httpcall.PageOf: labelled HTML, or a body that starts with '<').
func page(an *answer) bool { return httpcall.PageOf(an.contentType, an.body) }

// envelope reports whether the body is the vendor's own: a JSON object,
// and, when the spec's envelope lists pointers or media types, one of the
// pointers holds a value or the answer is labelled with one of the types.
func (a *Adapter) envelope(an *answer) bool {
	doc, _ := an.json()
	obj, ok := doc.(map[string]any)
	if !ok {
		return false
	}
	env := &a.spec.file.Envelope
	if len(env.Pointers) == 0 && len(env.ContentTypes) == 0 {
		return true
	}
	for _, p := range env.Pointers {
		if v, found := lookup(obj, p.tokens); found && !empty(v) {
			return true
		}
	}
	for _, ct := range env.ContentTypes {
		if mediaIs(an.contentType, ct) {
			return true
		}
	}
	return false
}

// messages extracts the vendor's messages from the first source that has
// any (default: a "message" string at the top).
func (a *Adapter) messages(an *answer) []message {
	if an.msgsDone {
		return an.msgs
	}
	an.msgsDone = true
	sources := a.spec.file.Messages
	if len(sources) == 0 {
		sources = defaultMessages
	}
	for _, src := range sources {
		if msgs, text := src.extract(an); len(msgs) > 0 {
			an.msgs, an.text = msgs, text
			break
		}
	}
	return an.msgs
}

var defaultMessages = []messageSource{{Pointer: pointer{tokens: []string{"message"}, set: true}}}

func (s messageSource) extract(an *answer) ([]message, string) {
	if s.Body {
		text := strings.TrimSpace(string(an.body))
		if text == "" {
			return nil, ""
		}
		return []message{{text: text}}, text
	}
	doc, ok := an.json()
	if !ok {
		return nil, ""
	}
	if s.Fields == nil {
		v, _ := lookup(doc, s.Pointer.tokens)
		texts := strs(v)
		msgs := make([]message, len(texts))
		for i, t := range texts {
			msgs[i] = message{text: t}
		}
		return msgs, strings.Join(texts, " ")
	}
	v, _ := lookup(doc, s.Fields.tokens)
	obj, _ := v.(map[string]any)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		if !inFold(s.Except, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var msgs []message
	var parts []string
	for _, k := range keys {
		texts := strs(obj[k])
		for _, t := range texts {
			msgs = append(msgs, message{field: k, text: t})
		}
		if len(texts) > 0 {
			parts = append(parts, k+": "+strings.Join(texts, " "))
		}
	}
	return msgs, strings.Join(parts, "; ")
}

// strs reads a string or a list of strings, blank ones left out.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		if s := strings.TrimSpace(x); s != "" {
			return []string{s}
		}
	case []any:
		var out []string
		for _, it := range x {
			if s, ok := it.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
		return out
	}
	return nil
}

// lookup follows a JSON pointer's tokens.
func lookup(doc any, tokens []string) (any, bool) {
	cur := doc
	for _, t := range tokens {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[t]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// scalarText is a JSON scalar as text: strings as they are, numbers as
// written, booleans true/false; ok is false for objects, arrays and null.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func (j *jsonCond) holds(an *answer) bool {
	doc, ok := an.json()
	v, found := lookup(doc, j.Pointer.tokens)
	found = found && ok
	switch {
	case j.Exists != nil && found != *j.Exists:
		return false
	case j.Empty != nil && (!found || empty(v)) != *j.Empty:
		return false
	case j.Equals != nil && !equalsText(v, *j.Equals):
		return false
	case len(j.In) > 0 && !inText(v, j.In):
		return false
	case j.Contains != nil && !containsText(v, *j.Contains):
		return false
	case j.Range.set && !inRange(v, j.Range):
		return false
	case j.Type != nil && (!found || !slices.Contains(j.Type, jsonType(v))):
		return false
	}
	return true
}

// jsonTypes are the types a json condition's type names.
var jsonTypes = []string{"object", "array", "string", "number", "bool", "null"}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

func equalsText(v any, want string) bool {
	s, ok := scalarText(v)
	return ok && strings.EqualFold(s, want)
}

func inText(v any, list []string) bool {
	for _, w := range list {
		if equalsText(v, w) {
			return true
		}
	}
	return false
}

// containsText: a string holding want (any case), or a list with an
// element equal to it.
func containsText(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(strings.ToLower(x), strings.ToLower(want))
	case []any:
		return inText(want, toStrings(x))
	}
	return false
}

func toStrings(list []any) []string {
	var out []string
	for _, it := range list {
		if s, ok := scalarText(it); ok {
			out = append(out, s)
		}
	}
	return out
}

func inRange(v any, r statusSet) bool {
	f, ok := v.(float64)
	return ok && f == float64(int(f)) && r.has(int(f))
}

// outcome turns a matched rule into a result or a *batch.Error. Its
// message says what the rule's message template says, from vendor text
// redacted whole before it was cut.
func (a *Adapter) outcome(r *rule, an *answer, matched string) (result, error) {
	a.messages(an)
	text := an.text
	if matched != "" {
		text = matched
	}
	text = httpcall.SafeMessage(text, a.secrets...)
	msg := a.say(r.Message, an, text)
	switch r.Then {
	case thenApplied:
		return result{status: an.status, message: msg}, nil
	case thenAlready:
		return result{already: true, status: an.status, message: msg}, nil
	}
	if msg == "" {
		msg = http.StatusText(an.status)
	}
	e := &batch.Error{Kind: batch.Permanent, HTTPStatus: an.status, Message: msg, Code: r.Code, CredentialsUnsure: r.Unsure}
	switch r.Then {
	case thenNotFound:
		e.Code = cmp.Or(e.Code, batch.CodeNotFound)
	case thenUnauthorized:
		e.Code = cmp.Or(e.Code, batch.CodeUnauthorized)
	case thenRetryable:
		e.Kind, e.Code = batch.Retryable, cmp.Or(e.Code, batch.CodeRateLimited)
		e.RetryAfter = httpcall.ParseRetryAfter(an.header.Get("Retry-After"), a.now())
	case thenAmbiguous:
		e.Kind, e.Code = batch.Ambiguous, cmp.Or(e.Code, batch.CodeServer)
		e.RetryAfter = httpcall.ParseRetryAfter(an.header.Get("Retry-After"), a.now())
	case thenNotVendorAPI:
		e.Code = cmp.Or(e.Code, batch.CodeBadResponse)
	default:
		e.Code = cmp.Or(e.Code, batch.CodeRefused)
	}
	if r.Then == thenNotVendorAPI || r.NotVendorAPI {
		// Three in a row stop the target (README, "Targets that stop").
		e.Fault = batch.FaultForeign
	}
	return result{}, e
}

// say fills a rule's message template: {message} is the vendor's text (or
// the status's name), {body} a snippet of the body, {status} the status
// code, {content_type} the answer's media type. Each is redacted.
func (a *Adapter) say(tmpl string, an *answer, text string) string {
	if tmpl == "" || tmpl == "{message}" {
		return text
	}
	if text == "" {
		text = http.StatusText(an.status)
	}
	out := strings.NewReplacer(
		"{message}", text,
		"{body}", httpcall.SafeSnippet(an.body, a.secrets...),
		"{status}", strconv.Itoa(an.status),
		"{content_type}", httpcall.SafeMessage(an.contentType, a.secrets...),
	).Replace(tmpl)
	return httpcall.SafeMessage(out, a.secrets...)
}
