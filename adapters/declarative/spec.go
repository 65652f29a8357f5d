// Package declarative is the adapter for a vendor described in a YAML file
// (a spec) instead of Go: its requests, its answers and what each answer
// means, with the same safety classes as the Go adapters (README: Add a
// vendor without Go). A spec is loaded and checked whole before anything is
// sent; every error names its line and column.
package declarative

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/batch"
)

// MaxSpecSize bounds a spec file: a vendor is a few hundred lines.
const MaxSpecSize = 256 << 10

// Spec is a loaded, checked vendor description.
type Spec struct {
	// Name is where the spec came from (a path, or builtin:NAME).
	Name string
	file file
	// Digest identifies the spec's content, so that a resume can refuse a
	// spec changed under it.
	Digest string
}

// file is the spec as written. Every key is documented in README's spec
// reference; the yaml tags are the keys.
type file struct {
	Vendor   string                   `yaml:"vendor"`
	Summary  string                   `yaml:"summary"`
	Config   map[string]keySpec       `yaml:"config"`
	Identity identitySpec             `yaml:"identity"`
	Auth     authSpec                 `yaml:"auth"`
	Columns  []columnSpec             `yaml:"columns"`
	Messages []messageSource          `yaml:"messages"`
	Envelope envelopeSpec             `yaml:"envelope"`
	Rules    []rule                   `yaml:"rules"`
	Actions  map[actionName]*action   `yaml:"actions"`
	Read     *readSpec                `yaml:"read"`
	Invert   map[actionName][]inverse `yaml:"invert"`
}

// keySpec is one target config key the spec reads.
type keySpec struct {
	Required bool   `yaml:"required"`
	Secret   bool   `yaml:"secret"`
	Help     string `yaml:"help"`
}

type identitySpec struct {
	FoldCase bool     `yaml:"fold_case"`
	Prefixes []string `yaml:"prefixes"`
}

// authSpec is what every request carries: headers, query parameters and
// fields added to every JSON object or form body.
type authSpec struct {
	Headers []param `yaml:"headers"`
	Query   []param `yaml:"query"`
	Body    []param `yaml:"body"`
}

// columnSpec is one input column an action reads.
type columnSpec struct {
	Name     string            `yaml:"name"`
	Type     string            `yaml:"type"` // string (default), bool, email
	Required bool              `yaml:"required"`
	Enum     []string          `yaml:"enum"`
	Fallback string            `yaml:"fallback"` // a config key used when the cell is empty
	True     string            `yaml:"true"`     // how a bool is spelled on the wire
	False    string            `yaml:"false"`
	When     map[string]string `yaml:"when"` // required only when these columns hold these values
	pos      pos
}

// messageSource is one place the vendor's message may be in an answer.
type messageSource struct {
	Pointer pointer  `yaml:"pointer"` // a string or a list of strings
	Fields  *pointer `yaml:"fields"`  // an object of field → string or list of strings
	Except  []string `yaml:"except"`  // keys of Fields to leave out
	Body    bool     `yaml:"body"`    // the whole body, as text
}

// action is how one canonical action is sent.
type action struct {
	Idempotent *bool        `yaml:"idempotent"`
	Columns    []columnSpec `yaml:"columns"`
	Request    *requestSpec `yaml:"request"`
	Steps      []step       `yaml:"steps"`
	pos        pos
}

// step is one request of an action; the first always runs, each next one
// only when After names the previous step's result and When holds.
type step struct {
	Request     requestSpec       `yaml:"request"`
	Action      actionName        `yaml:"action"` // send this action's first request instead
	After       []string          `yaml:"after"`  // applied, already
	When        map[string]string `yaml:"when"`
	ErrorPrefix string            `yaml:"error_prefix"`
	Reply       string            `yaml:"reply"` // the row's message when this step succeeds
	pos         pos
}

// requestSpec is one HTTP request.
type requestSpec struct {
	Method      string    `yaml:"method"`
	Path        template  `yaml:"path"`
	Query       []param   `yaml:"query"`
	Headers     []param   `yaml:"headers"`
	JSON        *jsonBody `yaml:"json"`
	Form        []param   `yaml:"form"`
	Encoding    string    `yaml:"encoding"` // urlencoded (default) or multipart, for form
	ContentType string    `yaml:"content_type"`
	Accept      string    `yaml:"accept"`
	Rules       []rule    `yaml:"rules"`
	pos         pos
}

// param is one named value: a header, a query parameter, a form field.
type param struct {
	Name      string            `yaml:"name"`
	Value     template          `yaml:"value"`
	When      map[string]string `yaml:"when"`
	OmitEmpty bool              `yaml:"omit_empty"`
	pos       pos
	key       string // Name as a canonical header key
}

// rule maps an answer to an outcome when every condition in If holds.
type rule struct {
	If      cond   `yaml:"if"`
	Then    string `yaml:"then"`
	Code    string `yaml:"code"`
	Message string `yaml:"message"`
	Unsure  bool   `yaml:"unsure"`
	// NotVendorAPI marks a permanent or ambiguous outcome as an answer
	// that is not the vendor's own (then: not_vendor_api says it alone).
	NotVendorAPI bool `yaml:"not_vendor_api"`
	pos          pos
}

// envelopeSpec says which answers are the vendor's own: a JSON object
// with a non-empty value at one of Pointers, or labelled with one of
// ContentTypes; with neither listed, any JSON object. A list alone is
// Pointers.
type envelopeSpec struct {
	Pointers     []pointer `yaml:"pointers"`
	ContentTypes []string  `yaml:"content_types"`
}

// cond is a rule's conditions; all that are set must hold.
type cond struct {
	Status      statusSet         `yaml:"status"`
	Actions     []actionName      `yaml:"actions"`
	JSON        []jsonCond        `yaml:"json"`
	Message     *pattern          `yaml:"message"`
	Field       string            `yaml:"field"`
	Captures    map[string]string `yaml:"captures"`
	ContentType string            `yaml:"content_type"`
	Body        string            `yaml:"body"` // json, not_json, empty, not_empty, html
	Envelope    *bool             `yaml:"envelope"`
	Columns     map[string]string `yaml:"columns"`
}

// jsonCond tests the value at a JSON pointer.
type jsonCond struct {
	Pointer  pointer   `yaml:"pointer"`
	Equals   *string   `yaml:"equals"`
	In       []string  `yaml:"in"`
	Contains *string   `yaml:"contains"`
	Exists   *bool     `yaml:"exists"`
	Empty    *bool     `yaml:"empty"`
	Range    statusSet `yaml:"range"` // a number within these ranges
	Type     []string  `yaml:"type"`  // the value is one of these JSON types
	pos      pos
}

// readSpec is how to read a user's state.
type readSpec struct {
	Request requestSpec          `yaml:"request"`
	Value   pointer              `yaml:"value"`
	Type    string               `yaml:"type"` // bool or string
	InState map[actionName]match `yaml:"in_state"`
	Current string               `yaml:"current"`
	Names   map[string]string    `yaml:"names"`
	Media   string               `yaml:"media"` // json: the answer must be labelled JSON (or not at all)
	pos     pos
}

// match lists the values that mean "in state", or the ones that do not.
type match struct {
	Equals    []string `yaml:"equals"`
	NotEquals []string `yaml:"not_equals"`
}

// inverse is one row of undo.csv for an applied change.
type inverse struct {
	Action actionName        `yaml:"action"`
	When   map[string]string `yaml:"when"`
	Unless map[string]string `yaml:"unless"`
	Set    map[string]string `yaml:"set"`
	Note   string            `yaml:"note"`
	pos    pos
}

// pos is where a node starts in the spec.
type pos struct{ line, col int }

func (p pos) String() string { return fmt.Sprintf("line %d, column %d", p.line, p.col) }

func posOf(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// posErr is a load error at a place in the spec.
func posErr(p pos, format string, args ...any) error {
	return fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...))
}

// actionName is a canonical action, checked where it is written.
type actionName batch.Action

func (a *actionName) UnmarshalYAML(n *yaml.Node) error {
	act, ok := batch.ParseAction(n.Value)
	if n.Kind != yaml.ScalarNode || !ok || string(act) != strings.ToLower(strings.TrimSpace(n.Value)) {
		return posErr(posOf(n), "unknown action %q (accepted: %s)", n.Value, actionList())
	}
	*a = actionName(act)
	return nil
}

func actionList() string {
	s := make([]string, len(batch.Actions))
	for i, a := range batch.Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// pattern is a regular expression, compiled at load.
type pattern struct {
	re  *regexp.Regexp
	pos pos
}

func (p *pattern) UnmarshalYAML(n *yaml.Node) error {
	re, err := regexp.Compile(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return posErr(posOf(n), "not a regular expression (RE2 syntax): %v", err)
	}
	p.re, p.pos = re, posOf(n)
	return nil
}

// statusSet is a list of statuses: 404, 2xx or 500-599.
type statusSet struct {
	ranges [][2]int
	set    bool
}

func (s *statusSet) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	s.set = true
	for _, it := range items {
		r, ok := parseStatus(it.Value)
		if it.Kind != yaml.ScalarNode || !ok {
			return posErr(posOf(it), "status %q is not a status (accepted: 404, 4xx, 500-599)", it.Value)
		}
		s.ranges = append(s.ranges, r)
	}
	return nil
}

func parseStatus(v string) ([2]int, bool) {
	v = strings.TrimSpace(v)
	if len(v) == 3 && v[1:] == "xx" && v[0] >= '1' && v[0] <= '5' {
		lo := int(v[0]-'0') * 100
		return [2]int{lo, lo + 99}, true
	}
	lo, hi, isRange := strings.Cut(v, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		return [2]int{}, false
	}
	return [2]int{a, b}, true
}

func (s statusSet) has(status int) bool {
	for _, r := range s.ranges {
		if status >= r[0] && status <= r[1] {
			return true
		}
	}
	return false
}

// pointer is an RFC 6901 JSON pointer, split at load.
type pointer struct {
	tokens []string
	raw    string
	set    bool
}

func (p *pointer) UnmarshalYAML(n *yaml.Node) error {
	toks, ok := parsePointer(n.Value)
	if n.Kind != yaml.ScalarNode || !ok {
		return posErr(posOf(n), "%q is not a JSON pointer (such as /errors/detail, or \"\" for the whole body)", n.Value)
	}
	p.tokens, p.raw, p.set = toks, n.Value, true
	return nil
}

func parsePointer(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	if s[0] != '/' {
		return nil, false
	}
	parts := strings.Split(s[1:], "/")
	for i, t := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, true
}

// Load reads and checks the spec at path.
func Load(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse checks a spec's text; name says where it came from.
func Parse(name string, data []byte) (*Spec, error) {
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("larger than %d KiB: a vendor spec is a few hundred lines", MaxSpecSize>>10)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("line 1, column 1: expected a mapping with vendor:, actions: and the other keys of README's spec reference")
	}
	if n := findAlias(&doc); n != nil {
		return nil, posErr(posOf(n), "YAML aliases are not accepted in a spec: write the values out")
	}
	if err := checkKeys(doc.Content[0], reflect.TypeOf(file{}), ""); err != nil {
		return nil, err
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, withColumn(err, &doc)
	}
	if err := f.check(doc.Content[0]); err != nil {
		return nil, err
	}
	return &Spec{Name: name, file: f, Digest: digest(data)}, nil
}

// findAlias returns the first alias node, walking the tree breadth first.
func findAlias(root *yaml.Node) *yaml.Node {
	queue := []*yaml.Node{root}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n.Kind == yaml.AliasNode {
			return n
		}
		queue = append(queue, n.Content...)
	}
	return nil
}

// leaves are the types that read their own node: their content is not
// mapping keys to check.
var leaves = map[reflect.Type]bool{
	reflect.TypeOf(template{}): true, reflect.TypeOf(pattern{}): true, reflect.TypeOf(statusSet{}): true,
	reflect.TypeOf(pointer{}): true, reflect.TypeOf(jsonBody{}): true,
}

// checkKeys reports the first mapping key that t has no field for, with
// its line and column and the keys accepted there. yaml.v3's own
// KnownFields check names the line only.
func checkKeys(n *yaml.Node, t reflect.Type, where string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if leaves[t] {
		return nil
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return posErr(posOf(k), "unknown key %q%s (accepted: %s)", k.Value, where, strings.Join(sortedKeys(fields), ", "))
			}
			if err := checkKeys(v, ft, " under "+k.Value); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i], t.Elem(), where); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, c := range n.Content {
			if err := checkKeys(c, t.Elem(), where); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			m[tag] = t.Field(i).Type
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

var yamlLine = regexp.MustCompile(`line (\d+): (cannot unmarshal !!\w+ ` + "`([^`]*)`" + `)?`)

// withColumn adds a column to yaml.v3's "line N:" errors, from the first
// node on that line holding the value it quotes.
func withColumn(err error, doc *yaml.Node) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	m := yamlLine.FindStringSubmatchIndex(msg)
	if m == nil {
		return errors.New(msg)
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	value := ""
	if m[6] >= 0 {
		value = msg[m[6]:m[7]]
	}
	col := findColumn(doc, line, value)
	if col == 0 {
		return errors.New(msg)
	}
	return fmt.Errorf("line %d, column %d:%s", line, col, msg[m[3]+1:])
}

func findColumn(n *yaml.Node, line int, value string) int {
	if n.Line == line && n.Kind == yaml.ScalarNode && (value == "" || n.Value == value) {
		return n.Column
	}
	for _, c := range n.Content {
		if col := findColumn(c, line, value); col != 0 {
			return col
		}
	}
	return 0
}

// The struct types whose position a later check quotes record it here.
// Known keys were checked by checkKeys, so decoding into the plain type is
// enough.

func (c *columnSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain columnSpec
	return decodeAt(n, (*plain)(c), &c.pos)
}

func (a *action) UnmarshalYAML(n *yaml.Node) error {
	type plain action
	return decodeAt(n, (*plain)(a), &a.pos)
}

func (s *step) UnmarshalYAML(n *yaml.Node) error {
	type plain step
	return decodeAt(n, (*plain)(s), &s.pos)
}

func (r *requestSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain requestSpec
	return decodeAt(n, (*plain)(r), &r.pos)
}

func (p *param) UnmarshalYAML(n *yaml.Node) error {
	type plain param
	return decodeAt(n, (*plain)(p), &p.pos)
}

func (r *rule) UnmarshalYAML(n *yaml.Node) error {
	type plain rule
	return decodeAt(n, (*plain)(r), &r.pos)
}

func (e *envelopeSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		return decodePlain(n, &e.Pointers)
	}
	type plain envelopeSpec
	return decodePlain(n, (*plain)(e))
}

func (j *jsonCond) UnmarshalYAML(n *yaml.Node) error {
	type plain jsonCond
	return decodeAt(n, (*plain)(j), &j.pos)
}

func (r *readSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain readSpec
	return decodeAt(n, (*plain)(r), &r.pos)
}

func (i *inverse) UnmarshalYAML(n *yaml.Node) error {
	type plain inverse
	return decodeAt(n, (*plain)(i), &i.pos)
}

// decodeAt decodes n into v and notes where n is.
func decodeAt(n *yaml.Node, v any, at *pos) error {
	*at = posOf(n)
	return decodePlain(n, v)
}

// decodePlain decodes n into v; a type error gets n's line and column.
func decodePlain(n *yaml.Node, v any) error {
	if err := n.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return withColumn(err, n)
		}
		return err
	}
	return nil
}
