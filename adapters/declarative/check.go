package declarative

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/batch"
)

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// keyPos is where a top-level key is written, or line 1 when it is absent.
func keyPos(root *yaml.Node, key string) pos {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return posOf(root.Content[i+1])
		}
	}
	return pos{1, 1}
}

// checker checks a decoded spec; every error names its line and column.
type checker struct {
	f    *file
	root *yaml.Node
}

func (f *file) check(root *yaml.Node) error {
	c := checker{f: f, root: root}
	for _, step := range []func() error{c.header, c.configKeys, c.fileColumns, c.auth, c.fileRules, c.actions, c.read, c.invert} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) header() error {
	if strings.TrimSpace(c.f.Vendor) == "" {
		return posErr(keyPos(c.root, "vendor"), "vendor is required: the vendor's name, as reports and `userbatch vendors` show it")
	}
	for _, p := range c.f.Identity.Prefixes {
		if p == "" {
			return posErr(keyPos(c.root, "identity"), "identity: a prefix is empty")
		}
	}
	for _, m := range c.f.Messages {
		if n := btoi(m.Fields != nil) + btoi(m.Pointer.set) + btoi(m.Body); n != 1 {
			return posErr(keyPos(c.root, "messages"), "messages: each source gives one of pointer, fields or body")
		}
	}
	return nil
}

func (c *checker) configKeys() error {
	for k := range c.f.Config {
		if !validName(k) {
			return posErr(keyPos(c.root, "config"), "config key %q: use letters, digits and _", k)
		}
	}
	return nil
}

func (c *checker) fileColumns() error {
	return c.columns(c.f.Columns)
}

func (c *checker) columns(cols []columnSpec) error {
	for i := range cols {
		col := &cols[i]
		switch {
		case !knownColumn(col.Name):
			return posErr(col.pos, "column %q is not one a spec can read (accepted: %s)", col.Name, strings.Join(Columns, ", "))
		case col.Type != "" && col.Type != "string" && col.Type != "bool" && col.Type != "email":
			return posErr(col.pos, "column %s: type %q (accepted: string, bool, email)", col.Name, col.Type)
		case (col.True != "" || col.False != "") && col.Type != "bool":
			return posErr(col.pos, "column %s: true and false spell a bool column; set type: bool", col.Name)
		case len(col.Enum) > 0 && col.Type != "" && col.Type != "string":
			return posErr(col.pos, "column %s: enum is for a string column", col.Name)
		case col.Fallback != "" && !c.hasKey(col.Fallback):
			return posErr(col.pos, "column %s: fallback %q is not a key under config", col.Name, col.Fallback)
		}
		if err := c.columnNames(col.When, col.pos); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) columnNames(m map[string]string, p pos) error {
	for name := range m {
		if !knownColumn(name) {
			return posErr(p, "column %q is not one a spec can read (accepted: %s)", name, strings.Join(Columns, ", "))
		}
	}
	return nil
}

func (c *checker) hasKey(k string) bool {
	_, ok := c.f.Config[k]
	return ok
}

// scope is what a template may name: the config keys, and these columns.
type scope map[string]*columnSpec

func (c *checker) scopeOf(extra []columnSpec) scope {
	s := scope{}
	for i := range c.f.Columns {
		s[c.f.Columns[i].Name] = &c.f.Columns[i]
	}
	for i := range extra {
		s[extra[i].Name] = &extra[i]
	}
	return s
}

func (c *checker) template(t *template, s scope) error {
	for _, r := range t.refs() {
		switch {
		case r.kind == refConfig && !c.hasKey(r.name):
			return posErr(t.pos, "%s: %s is not a key under config", r, r.name)
		case r.kind == refColumn && s[r.name] == nil:
			return posErr(t.pos, "%s: declare the column under columns (the spec's or the action's) first", r)
		}
	}
	return nil
}

func (c *checker) params(list []param, s scope, header bool) error {
	for i := range list {
		p := &list[i]
		if p.Name == "" || (header && !validHeaderName(p.Name)) {
			return posErr(p.pos, "name %q is not a valid %s name", p.Name, map[bool]string{true: "header", false: "parameter"}[header])
		}
		if !p.Value.set {
			return posErr(p.pos, "%s needs a value", p.Name)
		}
		p.key = http.CanonicalHeaderKey(p.Name)
		if err := c.template(&p.Value, s); err != nil {
			return err
		}
		if err := c.columnNames(p.When, p.pos); err != nil {
			return err
		}
	}
	return nil
}

func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", b) >= 0 {
			return false
		}
	}
	return name != ""
}

func (c *checker) auth() error {
	s := c.scopeOf(nil)
	if err := c.params(c.f.Auth.Headers, s, true); err != nil {
		return err
	}
	if err := c.params(c.f.Auth.Query, s, false); err != nil {
		return err
	}
	return c.params(c.f.Auth.Body, s, false)
}

func (c *checker) fileRules() error {
	for _, ct := range c.f.Envelope.ContentTypes {
		if !mediaPattern(ct) {
			return posErr(keyPos(c.root, "envelope"), "envelope: content type %q (accepted: %s)", ct, mediaAccepted)
		}
	}
	return c.rules(c.f.Rules)
}

const mediaAccepted = "a media type such as application/json, json (any JSON type), +json (a suffix) or application/vnd.x.* (a prefix)"

// mediaPattern accepts what mediaIs compares: one token, no parameters.
func mediaPattern(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == ';' || r == ',' || r == 0x7f })
}

func (c *checker) actions() error {
	if len(c.f.Actions) == 0 {
		return posErr(keyPos(c.root, "actions"), "actions: describe at least one of %s", actionList())
	}
	for name, a := range c.f.Actions {
		if err := c.action(name, a); err != nil {
			return err
		}
	}
	for name, a := range c.f.Actions {
		for i := range a.Steps {
			if err := c.stepAction(name, &a.Steps[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) action(name actionName, a *action) error {
	switch {
	case a == nil:
		return posErr(keyPos(c.root, "actions"), "action %s is empty", name)
	case a.Idempotent == nil:
		return posErr(a.pos, "action %s: say idempotent: true or false (false: never resent once it may have arrived)", name)
	case (a.Request == nil) == (len(a.Steps) == 0):
		return posErr(a.pos, "action %s: give either request or steps", name)
	}
	if a.Request != nil {
		a.Steps = []step{{Request: *a.Request, pos: a.Request.pos}}
		a.Request = nil
	}
	if err := c.columns(a.Columns); err != nil {
		return err
	}
	s := c.scopeOf(a.Columns)
	for i := range a.Steps {
		if err := c.step(name, i, &a.Steps[i], s); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) step(name actionName, i int, st *step, s scope) error {
	first := i == 0
	switch {
	case first && (len(st.After) > 0 || len(st.When) > 0 || st.Action != ""):
		return posErr(st.pos, "action %s: the first step always runs and sends its own request: no after, when or action", name)
	case !first && len(st.After) == 0:
		return posErr(st.pos, "action %s, step %d: say after which result of the previous step it goes on (after: [already] or [applied])", name, i+1)
	case st.Action != "" && st.Request.pos != (pos{}):
		return posErr(st.pos, "action %s, step %d: give either request or action", name, i+1)
	}
	for _, a := range st.After {
		if a != thenApplied && a != thenAlready {
			return posErr(st.pos, "action %s, step %d: after %q (accepted: applied, already)", name, i+1, a)
		}
	}
	if err := c.columnNames(st.When, st.pos); err != nil {
		return err
	}
	if st.Action != "" {
		return nil
	}
	return c.request(&st.Request, s)
}

// stepAction checks a step that sends another action's request.
func (c *checker) stepAction(name actionName, st *step) error {
	if st.Action == "" {
		return nil
	}
	other, ok := c.f.Actions[st.Action]
	if !ok || st.Action == name || other.Steps[0].Action != "" {
		return posErr(st.pos, "action %s: step action %s must be another action the spec describes", name, st.Action)
	}
	return nil
}

var methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

func (c *checker) request(rq *requestSpec, s scope) error {
	switch {
	case rq.pos == (pos{}):
		return posErr(keyPos(c.root, "actions"), "a step has no request")
	case !methods[rq.Method]:
		return posErr(rq.pos, "method %q (accepted: GET, POST, PUT, PATCH, DELETE)", rq.Method)
	case rq.JSON != nil && len(rq.Form) > 0:
		return posErr(rq.pos, "give either json or form, not both")
	case rq.Encoding != "" && rq.Encoding != "urlencoded" && rq.Encoding != "multipart":
		return posErr(rq.pos, "encoding %q (accepted: urlencoded, multipart)", rq.Encoding)
	case rq.Encoding != "" && len(rq.Form) == 0:
		return posErr(rq.pos, "encoding is for a form body")
	case strings.ContainsAny(rq.ContentType+rq.Accept, "\r\n"):
		return posErr(rq.pos, "content_type and accept are one line each")
	}
	if err := rq.Path.checkPath(); err != nil {
		if !rq.Path.set {
			return posErr(rq.pos, "path is required")
		}
		return err
	}
	if err := c.template(&rq.Path, s); err != nil {
		return err
	}
	if err := c.params(rq.Query, s, false); err != nil {
		return err
	}
	if err := c.params(rq.Headers, s, true); err != nil {
		return err
	}
	if err := c.params(rq.Form, s, false); err != nil {
		return err
	}
	if rq.JSON != nil {
		for _, t := range rq.JSON.root.templates() {
			if err := c.template(t, s); err != nil {
				return err
			}
		}
	}
	return c.rules(rq.Rules)
}

var knownCodes = map[string]bool{
	batch.CodeUnauthorized: true, batch.CodeNotFound: true, batch.CodeConflict: true, batch.CodeValidation: true,
	batch.CodeRefused: true, batch.CodeRateLimited: true, batch.CodeServer: true, batch.CodeTimeout: true,
	batch.CodeNetwork: true, batch.CodeBadResponse: true, batch.CodeAmbiguous: true,
}

func (c *checker) rules(rules []rule) error {
	for i := range rules {
		r := &rules[i]
		switch {
		case !inFold(Outcomes, r.Then) || r.Then != strings.ToLower(r.Then):
			return posErr(r.pos, "then %q (accepted: %s)", r.Then, strings.Join(Outcomes, ", "))
		case r.Code != "" && !knownCodes[r.Code]:
			return posErr(r.pos, "code %q (accepted: %s)", r.Code, strings.Join(slices.Sorted(maps.Keys(knownCodes)), ", "))
		case r.Code != "" && (r.Then == thenApplied || r.Then == thenAlready):
			return posErr(r.pos, "code is for a failure; %s is a success", r.Then)
		case r.Unsure && r.Then != thenUnauthorized:
			return posErr(r.pos, "unsure is for then: unauthorized")
		case r.NotVendorAPI && r.Then != thenPermanent && r.Then != thenAmbiguous:
			return posErr(r.pos, "not_vendor_api: true is for then: permanent or ambiguous (then: not_vendor_api says it alone)")
		case len(r.If.Captures) > 0 && r.If.Message == nil:
			return posErr(r.pos, "captures name groups of a message pattern; give message")
		}
		if err := c.cond(&r.If, r.pos); err != nil {
			return err
		}
		if err := checkSay(r.Message, r.pos); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) cond(cd *cond, p pos) error {
	switch cd.Body {
	case "", "json", "not_json", "empty", "not_empty", "html":
	default:
		return posErr(p, "body %q (accepted: json, not_json, empty, not_empty, html)", cd.Body)
	}
	if cd.ContentType != "" && !mediaPattern(cd.ContentType) {
		return posErr(p, "content_type %q (accepted: %s)", cd.ContentType, mediaAccepted)
	}
	for group, col := range cd.Captures {
		if cd.Message.re.SubexpIndex(group) < 0 {
			return posErr(cd.Message.pos, "the pattern has no group (?P<%s>...)", group)
		}
		if !knownColumn(col) {
			return posErr(p, "captures: column %q is not one a spec can read", col)
		}
	}
	if err := c.columnNames(cd.Columns, p); err != nil {
		return err
	}
	for i := range cd.JSON {
		j := &cd.JSON[i]
		if !j.Pointer.set {
			return posErr(j.pos, "a json condition needs a pointer")
		}
		if j.Equals == nil && j.In == nil && j.Contains == nil && j.Exists == nil && j.Empty == nil && !j.Range.set && j.Type == nil {
			return posErr(j.pos, "a json condition needs a test: equals, in, contains, exists, empty, range or type")
		}
		for _, ty := range j.Type {
			if !slices.Contains(jsonTypes, ty) {
				return posErr(j.pos, "type %q (accepted: %s)", ty, strings.Join(jsonTypes, ", "))
			}
		}
	}
	return nil
}

// checkSay accepts a rule's message template: {message}, {body}, {status}
// and {content_type}.
func checkSay(s string, p pos) error {
	rest := s
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return posErr(p, "message: a { without its }")
		}
		switch rest[i : i+j+1] {
		case "{message}", "{body}", "{status}", "{content_type}":
		default:
			return posErr(p, "message: %s (accepted: {message}, {body}, {status}, {content_type})", rest[i:i+j+1])
		}
		rest = rest[i+j+1:]
	}
}

func (c *checker) read() error {
	rs := c.f.Read
	if rs == nil {
		return nil
	}
	switch {
	case !rs.Value.set:
		return posErr(rs.pos, "read: value is required: the JSON pointer to the state, such as /disabled")
	case rs.Type != "bool" && rs.Type != "string":
		return posErr(rs.pos, "read: type %q (accepted: bool, string)", rs.Type)
	case len(rs.InState) == 0:
		return posErr(rs.pos, "read: in_state is required: which values mean each action is already done")
	case rs.Media != "" && rs.Media != "json":
		return posErr(rs.pos, "read: media %q (accepted: json)", rs.Media)
	case strings.Count(rs.Current, "{") != strings.Count(rs.Current, "{value}"):
		return posErr(rs.pos, "read: current takes {value} only")
	}
	// The pipeline reads before every disable and enable of a reader.
	for _, a := range []actionName{actionName(batch.Disable), actionName(batch.Enable)} {
		if _, described := c.f.Actions[a]; described {
			if _, ok := rs.InState[a]; !ok {
				return posErr(rs.pos, "read: in_state must say what %s reads as: a run reads before every %s", a, a)
			}
		}
	}
	for a, m := range rs.InState {
		if _, ok := c.f.Actions[a]; !ok {
			return posErr(rs.pos, "read: in_state names %s, which actions does not describe", a)
		}
		if (len(m.Equals) == 0) == (len(m.NotEquals) == 0) {
			return posErr(rs.pos, "read: in_state %s: give either equals or not_equals", a)
		}
	}
	return c.request(&rs.Request, c.scopeOf(nil))
}

func (c *checker) invert() error {
	for a, list := range c.f.Invert {
		if _, ok := c.f.Actions[a]; !ok {
			return posErr(keyPos(c.root, "invert"), "invert: %s is not an action the spec describes", a)
		}
		for i := range list {
			inv := &list[i]
			if _, ok := c.f.Actions[inv.Action]; !ok && inv.Action != "" {
				return posErr(inv.pos, "invert: the undo action %s is not one the spec describes", inv.Action)
			}
			if inv.Action == "" {
				return posErr(inv.pos, "invert: action is required")
			}
			for _, m := range []map[string]string{inv.When, inv.Unless, inv.Set} {
				if err := c.columnNames(m, inv.pos); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// columnsOf is every column action a reads, the spec's and its own.
func (s *Spec) columnsOf(a *action) map[string]*columnSpec {
	m := map[string]*columnSpec{}
	for i := range s.file.Columns {
		m[s.file.Columns[i].Name] = &s.file.Columns[i]
	}
	for i := range a.Columns {
		m[a.Columns[i].Name] = &a.Columns[i]
	}
	return m
}

// Identity is the spec's identity rules.
func (s *Spec) Identity() batch.Identity {
	id := s.file.Identity
	if len(id.Prefixes) == 0 && !id.FoldCase {
		return batch.ExactIdentity{}
	}
	return batch.PrefixIdentity{Prefixes: id.Prefixes, FoldCase: id.FoldCase}
}

// Vendor is the vendor's name as the spec gives it.
func (s *Spec) Vendor() string { return s.file.Vendor }

// Summary is the spec's one-line description.
func (s *Spec) Summary() string { return s.file.Summary }

// ActionNames lists the actions the spec describes, in batch.Actions order.
func (s *Spec) ActionNames() []string {
	var out []string
	for _, a := range s.Actions() {
		out = append(out, string(a))
	}
	return out
}

// Actions lists the actions the spec describes, in batch.Actions order.
func (s *Spec) Actions() []batch.Action {
	var out []batch.Action
	for _, a := range batch.Actions {
		if _, ok := s.file.Actions[actionName(a)]; ok {
			out = append(out, a)
		}
	}
	return out
}

// Keys lists the target config keys the spec reads, sorted.
func (s *Spec) Keys() []string { return slices.Sorted(maps.Keys(s.file.Config)) }

// KeyInfo says whether a config key is required and secret.
func (s *Spec) KeyInfo(k string) (required, secret bool) {
	ks := s.file.Config[k]
	return ks.Required, ks.Secret || k == "apikey" || k == "token"
}

// ActionInfo is what `userbatch vendors check` prints of one action.
type ActionInfo struct {
	Action     batch.Action
	Idempotent bool
	Requests   []string // "POST /path" per step
	Columns    []string // "role (required; Member or Preferred Customer)"
	Undo       []string
}

// Describe lists what each action does, for `userbatch vendors check`.
func (s *Spec) Describe() []ActionInfo {
	var out []ActionInfo
	for _, a := range s.Actions() {
		act := s.file.Actions[actionName(a)]
		info := ActionInfo{Action: a, Idempotent: *act.Idempotent}
		for i := range act.Steps {
			st := &act.Steps[i]
			line := ""
			if i > 0 {
				line = "after " + strings.Join(st.After, " or ") + strings.TrimSuffix(describeWhen(" if", st.When), ": ") + ": "
			}
			rq := &st.Request
			if st.Action != "" {
				rq = &s.file.Actions[st.Action].Steps[0].Request
			}
			info.Requests = append(info.Requests, line+rq.Method+" "+rq.Path.raw)
		}
		cols := s.columnsOf(act)
		for _, name := range slices.Sorted(maps.Keys(cols)) {
			info.Columns = append(info.Columns, cols[name].describe())
		}
		for _, inv := range s.file.Invert[actionName(a)] {
			info.Undo = append(info.Undo, describeWhen("if", inv.When)[1:]+describeWhen("unless", inv.Unless)[1:]+
				string(inv.Action)+describeSet(inv.Set)+noteSuffix(inv.Note))
		}
		out = append(out, info)
	}
	return out
}

func (c *columnSpec) describe() string {
	var attrs []string
	if c.Required {
		attrs = append(attrs, "required")
	}
	if c.Type != "" {
		attrs = append(attrs, c.Type)
	}
	if len(c.Enum) > 0 {
		attrs = append(attrs, strings.Join(c.Enum, " or "))
	}
	if c.Fallback != "" {
		attrs = append(attrs, "else the target's "+c.Fallback)
	}
	if len(attrs) == 0 {
		return c.Name
	}
	return c.Name + " (" + strings.Join(attrs, "; ") + ")"
}

func describeSet(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return " " + strings.Join(parts, " ")
}

// describeWhen is " if col=value: " for a condition, or " " for none.
func describeWhen(word string, m map[string]string) string {
	if len(m) == 0 {
		return " "
	}
	return " " + strings.TrimSpace(word) + describeSet(m) + ": "
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " (note: " + n + ")"
}

// OwnAnswers says which answers the spec takes for its vendor's own and
// how many rules say an answer is not, for `userbatch vendors check`.
func (s *Spec) OwnAnswers() string {
	env := &s.file.Envelope
	var own []string
	for _, p := range env.Pointers {
		own = append(own, "JSON with "+p.raw)
	}
	for _, ct := range env.ContentTypes {
		own = append(own, "labelled "+ct)
	}
	if len(own) == 0 {
		own = []string{"any JSON object"}
	}
	n := 0
	for _, rules := range s.allRules() {
		for i := range rules {
			if rules[i].Then == thenNotVendorAPI || rules[i].NotVendorAPI {
				n++
			}
		}
	}
	rules := fmt.Sprintf("%d rules say", n)
	if n == 1 {
		rules = "1 rule says"
	}
	return fmt.Sprintf("%s; %s what is not the vendor's (3 in a row stop the target)", strings.Join(own, ", or "), rules)
}

// allRules is the spec's rules and each request's own.
func (s *Spec) allRules() [][]rule {
	out := [][]rule{s.file.Rules}
	for _, act := range s.file.Actions {
		for i := range act.Steps {
			out = append(out, act.Steps[i].Request.Rules)
		}
	}
	if s.file.Read != nil {
		out = append(out, s.file.Read.Request.Rules)
	}
	return out
}

// Reads says what the spec reads back, for `userbatch vendors`.
func (s *Spec) Reads() string {
	rs := s.file.Read
	if rs == nil {
		return "nothing (dry-run says unknown state)"
	}
	var acts []string
	for _, a := range s.Actions() {
		if _, ok := rs.InState[actionName(a)]; ok {
			acts = append(acts, string(a))
		}
	}
	return fmt.Sprintf("%s %s at %s %s, before %s (already-correct users are not written)",
		rs.Type, rs.Value.raw, rs.Request.Method, rs.Request.Path.raw, strings.Join(acts, ", "))
}

// ColumnProblems checks op's cells against the columns op's action
// declares; config holds the target's keys (a column's fallback).
func (s *Spec) ColumnProblems(op batch.Op, config map[string]string, target string) []batch.Problem {
	act, ok := s.file.Actions[actionName(op.Action)]
	if !ok {
		return nil
	}
	var out []batch.Problem
	cols := s.columnsOf(act)
	for _, name := range slices.Sorted(maps.Keys(cols)) {
		out = append(out, cols[name].problems(op, config, target)...)
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// IdentityRules are the spec's id-form prefixes and whether ids ignore case.
func (s *Spec) IdentityRules() (prefixes []string, foldCase bool) {
	return s.file.Identity.Prefixes, s.file.Identity.FoldCase
}
