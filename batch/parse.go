package batch

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// MaxUserLen is the longest user id any vendor accepts.
const MaxUserLen = 255

// TargetInfo is what validation needs to know of one configured target.
type TargetInfo struct {
	Vendor string
	// Actions lists the actions the target's vendor supports.
	Actions []Action
	// Identity is how the target's vendor compares user cells (nil: byte
	// for byte).
	Identity Identity
	// Columns are the vendor's own columns: read from the input, their
	// cells checked by Kind.
	Columns []Column
	// Validator checks the vendor's rules on the target's rows (nil: none).
	Validator Validator
	// Inverter reverses the vendor's changes for undo.csv (nil: only
	// status changes are reversed).
	Inverter Inverter
	// Settings are the target's keys, for Validator (a default email).
	Settings map[string]string
}

func (t TargetInfo) supports(a Action) bool {
	for _, s := range t.Actions {
		if s == a {
			return true
		}
	}
	return false
}

// Targets maps target names to what validation knows of them. A nil map
// validates the file without a config: targets are not checked.
type Targets map[string]TargetInfo

func (ts Targets) names() []string {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fields are the cells of one record that validation reads. Vendor
// columns go into numbered slots (columnIndex.slots says which column
// fills each), so that a row costs no map and no allocation of its own.
type fields struct {
	Target, User, Action, Role, EffectiveAt string
	slots                                   [maxVendorColumns]string
}

// maxVendorColumns is how many vendor columns one input may carry.
const maxVendorColumns = 8

// noColumn marks a core column the header does not have.
const noColumn = -1

// columnIndex says which column of the record fills each of fields' cells:
// the record is read by position, cells are never copied.
type columnIndex struct {
	target, user, action, role, effectiveAt int
	slots                                   []int // the column of each vendor slot
}

func newColumnIndex(h Header, vendor []Column) columnIndex {
	at := func(name string) int {
		if i, ok := h.Known[name]; ok {
			return i
		}
		return noColumn
	}
	ci := columnIndex{target: at(ColTarget), user: at(ColUser), action: at(ColAction), role: at(ColRole),
		effectiveAt: at(ColEffectiveAt)}
	for _, c := range vendor {
		ci.slots = append(ci.slots, h.Known[c.Name])
	}
	return ci
}

// fill sets f from rec, a record with the header's number of fields.
func (ci *columnIndex) fill(f *fields, rec []string) {
	get := func(i int) string {
		if i == noColumn {
			return ""
		}
		return rec[i]
	}
	f.Target, f.User, f.Action = get(ci.target), rec[ci.user], rec[ci.action]
	f.Role, f.EffectiveAt = get(ci.role), get(ci.effectiveAt)
	for s, i := range ci.slots {
		f.slots[s] = rec[i]
	}
}

// InputError is a problem with the file as a whole (not one row): empty,
// not UTF-8, unreadable CSV, a missing column.
type InputError struct {
	Line int // 0 when it has none
	Msg  string
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Parser streams the rows of an operations CSV, validating each.
type Parser struct {
	cr      *csv.Reader
	header  Header
	columns columnIndex
	targets Targets
	// infos points into a copy of targets, so validation does not allocate.
	infos map[string]*TargetInfo
	// opsOnly skips Row.Record: validating and running need only the op.
	opsOnly bool
	// vendor are the vendor columns the header has, in slot order.
	vendor []Column
	// Reading ahead: see nextDecoded.
	batches   chan []decoded
	free      chan []decoded // used batches, back for reuse
	cur       []decoded
	pos       int
	endErr    error // the final error, set before batches closes
	done      chan struct{}
	closeOnce sync.Once
	// defaultTarget is used when the file has no target column (or an empty
	// cell) and the config has exactly one target.
	defaultTarget string
	index         int
	loc           *time.Location // of effective_at dates
	repeats       *Repeats
}

// ParseOptions are the choices NewParserOptions leaves to the operator.
// The zero value detects the delimiter and reads dates in UTC.
type ParseOptions struct {
	// Delimiter separates the cells: ',', ';' or '\t'. 0 tells it from the
	// header line (see ParseDelimiter for the --delimiter flag).
	Delimiter rune
	// Location is the zone in which an effective_at date without a time
	// (YYYY-MM-DD) means midnight; nil means UTC.
	Location *time.Location
	// Repeats, found by FindRepeats over this same file, mark its
	// duplicate and conflicting rows; nil: rows are not compared.
	Repeats *Repeats
	// Columns are the vendor columns to read besides the targets' own:
	// every registered vendor's, so that a file reads the same whatever
	// the config (README "The operations CSV").
	Columns []Column
}

// NewParserOptions reads the header of r and returns a parser for its rows.
// The input is UTF-8 (with or without a BOM) or UTF-16 with a BOM; its cells
// are separated by opts.Delimiter, or by the comma, semicolon or tab the
// header line uses most. The header must name at least the user and action
// columns, in any case. Problems with the input as a whole are *InputError;
// an opts.Delimiter other than those three is a plain error.
func NewParserOptions(r io.Reader, targets Targets, opts ParseOptions) (*Parser, error) {
	comma, err := optionDelimiter(opts.Delimiter)
	if err != nil {
		return nil, err
	}
	text, enc, err := openText(r)
	if err != nil {
		return nil, err
	}
	text = crLines(text)
	if comma == 0 {
		comma = sniffDelimiter(text)
	}
	// The guard bounds each record before csv buffers it, and drops the
	// lines of empty cells.
	cr := csv.NewReader(newGuard(text, comma))
	cr.Comma = rune(comma)
	cr.FieldsPerRecord = 0 // every record has the header's field count
	cr.ReuseRecord = true  // the cells are strings of their own: only the slice is reused
	names, err := cr.Read()
	if err != nil {
		return nil, headerError(err)
	}
	line, _ := cr.FieldPos(0) // 1, unless blank lines come first
	declared := VendorColumns(targets, opts.Columns)
	h, err := newHeader(slices.Clone(names), comma, line, declared)
	if err != nil {
		return nil, err
	}
	h.Delimiter, h.Encoding = rune(comma), enc
	vendor := presentColumns(h, declared)
	if len(vendor) > maxVendorColumns {
		return nil, &InputError{Line: line, Msg: fmt.Sprintf("the header has %d vendor columns: at most %d", len(vendor), maxVendorColumns)}
	}
	p := &Parser{cr: cr, header: h, columns: newColumnIndex(h, vendor), targets: targets, done: make(chan struct{}),
		loc: opts.Location, repeats: opts.Repeats, vendor: vendor}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if len(targets) == 1 {
		p.defaultTarget = targets.names()[0]
	}
	p.infos = make(map[string]*TargetInfo, len(targets))
	for name, info := range targets {
		p.infos[name] = &info
	}
	if _, ok := h.Known[ColTarget]; !ok && targets != nil && p.defaultTarget == "" {
		return nil, &InputError{Line: line, Msg: fmt.Sprintf(
			"the header has no target column, and the config has %d targets (%s): add a target column",
			len(targets), strings.Join(targets.names(), ", "))}
	}
	return p, nil
}

// optionDelimiter checks ParseOptions.Delimiter.
func optionDelimiter(r rune) (byte, error) {
	switch r {
	case 0, ',', ';', '\t':
		return byte(r), nil
	}
	return 0, fmt.Errorf("delimiter %q: use , or ; or tab", r)
}

func headerError(err error) error {
	if errors.Is(err, io.EOF) {
		return emptyInput()
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return ie
	}
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return &InputError{Line: perr.StartLine, Msg: "the header is not valid CSV: " + perr.Err.Error()}
	}
	return &InputError{Line: 1, Msg: "reading the header: " + err.Error()}
}

// VendorColumns are the columns extra and the targets' vendors declare,
// each name once, in the order first declared.
func VendorColumns(targets Targets, extra []Column) []Column {
	var out []Column
	add := func(cs []Column) {
		for _, c := range cs {
			if !isCore(c.Name) && !slices.ContainsFunc(out, func(d Column) bool { return d.Name == c.Name }) {
				out = append(out, c)
			}
		}
	}
	add(extra)
	for _, name := range targets.names() {
		add(targets[name].Columns)
	}
	return out
}

// presentColumns are the declared columns the header has.
func presentColumns(h Header, declared []Column) []Column {
	var out []Column
	for _, c := range declared {
		if _, ok := h.Known[c.Name]; ok {
			out = append(out, c)
		}
	}
	return out
}

func normalizeNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSpace(n))
	}
	return out
}

func newHeader(names []string, comma byte, line int, vendor []Column) (Header, error) {
	h := Header{Names: names, Known: map[string]int{}}
	seen := map[string]int{}
	for i, n := range normalizeNames(names) {
		if j, dup := seen[n]; dup && n != "" {
			return h, &InputError{Line: line, Msg: fmt.Sprintf(
				"column %q appears twice (columns %d and %d): column names must be distinct", names[i], j+1, i+1)}
		}
		seen[n] = i
		if isCore(n) || slices.ContainsFunc(vendor, func(c Column) bool { return c.Name == n }) {
			h.Known[n] = i
		} else {
			h.Passthrough = append(h.Passthrough, i)
		}
	}
	var missing []string
	for _, c := range []string{ColUser, ColAction} {
		if _, ok := h.Known[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return h, &InputError{Line: line, Msg: fmt.Sprintf(
			"the header has no %s column (found: %s; expected: %s; read as %s-separated)",
			strings.Join(missing, " or "), strings.Join(names, string(comma)), strings.Join(expected(vendor), ","), delimiterName(comma))}
	}
	return h, nil
}

// expected lists the columns a header may have: the core ones, the
// vendors' before effective_at.
func expected(vendor []Column) []string {
	out := slices.Clone(KnownColumns[:len(KnownColumns)-1])
	for _, c := range vendor {
		out = append(out, c.Name)
	}
	return append(out, ColEffectiveAt)
}

func isCore(name string) bool {
	for _, k := range KnownColumns {
		if k == name {
			return true
		}
	}
	return false
}

// OpsOnly makes Next leave Row.Record empty: the reports need the cells,
// validating and running need only the op, and skipping them is cheaper.
func (p *Parser) OpsOnly() { p.opsOnly = true }

// Header returns the input's header.
func (p *Parser) Header() Header { return p.header }

// Next returns the next row, valid or not, or io.EOF after the last one. Any
// other error is an *InputError that ends the file: CSV that cannot be read
// past that point.
func (p *Parser) Next() (Row, error) {
	d := p.nextDecoded()
	if d.err != nil {
		return p.readError(d.err)
	}
	row := Row{Index: p.index, Line: d.line, Record: d.rec}
	p.index++
	p.validate(&row, &d.f)
	if row.Valid() {
		p.repeats.mark(&row)
	}
	return row, nil
}

// Each calls fn for every remaining row, in order, and returns nil at the
// end of the input, or the first error of Next or fn.
func (p *Parser) Each(fn func(Row) error) error {
	for {
		row, err := p.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// Close stops the reading ahead. Call it when not reading to the end.
func (p *Parser) Close() {
	p.closeOnce.Do(func() { close(p.done) })
}

// decoded is one record as the reading goroutine decoded it: the cells
// validation reads, and, unless OpsOnly, all of them (Row.Record).
type decoded struct {
	f    fields
	rec  []string
	line int
	err  error
}

// prefetch is how many records the reading goroutine hands over at once,
// and prefetchBytes about how much memory they may hold at most: a record
// can be up to MaxRecordBytes long, or have a thousand cells (cellBytes
// each in Row.Record), and the batches in flight must stay small.
const (
	prefetch      = 256
	prefetchBytes = 1 << 20
	cellBytes     = 16
)

// nextDecoded returns the next record. Decoding (encoding/csv)
// runs in a goroutine of its own, ahead of validation, so that on a
// million-row file the two share the machine's cores.
func (p *Parser) nextDecoded() *decoded {
	if p.batches == nil {
		p.batches, p.free = make(chan []decoded, 4), make(chan []decoded, 6)
		go p.decodeAll()
	}
	for p.pos >= len(p.cur) {
		if p.cur != nil {
			clear(p.cur) // the cells are not kept alive while the batch waits
			select {     // hand the used batch back for reuse
			case p.free <- p.cur[:0]:
			default:
			}
		}
		b, ok := <-p.batches
		if !ok {
			p.cur = nil
			return &decoded{err: p.endErr}
		}
		p.cur, p.pos = b, 0
	}
	d := &p.cur[p.pos]
	p.pos++
	return d
}

// decodeAll reads every record, in batches, until a final error or Close.
func (p *Parser) decodeAll() {
	defer close(p.batches)
	batch, size, from := p.newBatch(), 0, p.cr.InputOffset()
	for {
		d := p.decode()
		batch = append(batch, d)
		to := p.cr.InputOffset()
		size += int(to-from) + cellBytes*len(d.rec)
		from = to
		final := d.err != nil && !isFieldCount(d.err)
		if final || len(batch) == prefetch || size >= prefetchBytes {
			select {
			case p.batches <- batch:
			case <-p.done:
				return
			}
			batch, size = p.newBatch(), 0
		}
		if final {
			p.endErr = d.err
			return
		}
	}
}

func (p *Parser) newBatch() []decoded {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]decoded, 0, prefetch)
	}
}

func (p *Parser) decode() decoded {
	rec, err := p.cr.Read()
	if err != nil {
		return decoded{err: err}
	}
	d := decoded{}
	d.line, _ = p.cr.FieldPos(0)
	p.columns.fill(&d.f, rec)
	if !p.opsOnly {
		d.rec = slices.Clone(rec)
	}
	return d
}

func isFieldCount(err error) bool {
	var perr *csv.ParseError
	return errors.As(err, &perr) && errors.Is(perr.Err, csv.ErrFieldCount)
}

func (p *Parser) readError(err error) (Row, error) {
	if errors.Is(err, io.EOF) {
		// A header and no data rows is a valid file of 0 rows: a night
		// with no leavers (README "The operations CSV").
		return Row{}, io.EOF
	}
	var perr *csv.ParseError
	if errors.As(err, &perr) && errors.Is(perr.Err, csv.ErrFieldCount) {
		// The row is unusable, but the rows after it can still be read.
		row := Row{Index: p.index, Line: perr.StartLine, Record: []string{}}
		p.index++
		row.Problems = []Problem{{Line: perr.StartLine, Column: "(row)",
			Msg:      "the row does not have as many fields as the header",
			Accepted: fmt.Sprintf("%d %s-separated fields", len(p.header.Names), delimiterName(byte(p.header.Delimiter)))}}
		return row, nil
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return Row{}, ie
	}
	if perr != nil {
		return Row{}, &InputError{Line: perr.StartLine, Msg: "not valid CSV: " + perr.Err.Error() +
			" (a quote inside a field must be doubled, and a quoted field must be closed)"}
	}
	return Row{}, &InputError{Msg: "reading the input: " + err.Error()}
}

// cell trims a cell and undoes the formula neutralisation that userbatch's
// own reports apply, so that failed.csv and undo.csv can be run again.
func cell(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}

func (p *Parser) validate(row *Row, f *fields) {
	v := validator{line: row.Line}
	op := Op{Index: row.Index, Line: row.Line}
	op.Target, op.User = cell(f.Target), cell(f.User)
	info := v.target(p, &op)
	if info != nil && info.Identity != nil {
		if k := info.Identity.Key(op.User); k != op.User {
			op.UserKey = k
		}
	}
	v.user(op.User)
	op.Action = v.action(cell(f.Action), info)
	v.options(&op, f, p.vendor, info)
	op.EffectiveAt = v.effectiveAt(cell(f.EffectiveAt), p.loc)
	row.Op, row.Problems = op, v.problems
}

type validator struct {
	line     int
	problems []Problem
}

func (v *validator) add(col, value, msg, accepted string) {
	v.problems = append(v.problems, Problem{Line: v.line, Column: col, Value: value, Msg: msg, Accepted: accepted})
}

// target resolves the row's target. It returns nil when the target cannot
// be checked (no config, or the target is wrong).
func (v *validator) target(p *Parser, op *Op) *TargetInfo {
	if op.Target == "" {
		op.Target = p.defaultTarget
	}
	if p.targets == nil {
		return nil
	}
	accepted := func() string { return "one of the configured targets: " + strings.Join(p.targets.names(), ", ") }
	if op.Target == "" {
		v.add(ColTarget, "", "target is empty", accepted())
		return nil
	}
	info, ok := p.infos[op.Target]
	if !ok {
		v.add(ColTarget, op.Target, fmt.Sprintf("unknown target %q", op.Target), accepted())
		return nil
	}
	return info
}

func (v *validator) user(u string) {
	if u == "" {
		v.add(ColUser, u, "user is empty", "the vendor's user id, 1 to 255 characters")
		return
	}
	runes, valid, hidden := scanUser(u)
	switch {
	case runes > MaxUserLen:
		v.add(ColUser, u, fmt.Sprintf("user is %d characters long", runes), "at most 255 characters")
	case !valid:
		v.add(ColUser, u, "user is not valid UTF-8", "a UTF-8 user id")
	case hidden >= 0:
		v.add(ColUser, u, "user contains "+describeHidden(hidden),
			"a user id on one line, of visible characters: retype it, or delete the character")
	case isScientific(u):
		v.add(ColUser, u, fmt.Sprintf("user %s is a number in scientific notation: "+
			"Excel turned a long numeric id into this and lost its last digits", u), scientificHelp)
	}
}

func (v *validator) action(s string, info *TargetInfo) Action {
	if s == "" {
		v.add(ColAction, s, "action is empty", actionHelp)
		return ""
	}
	a, ok := ParseAction(s)
	if !ok {
		v.add(ColAction, s, fmt.Sprintf("unknown action %q", s), actionHelp)
		return ""
	}
	if info != nil && !info.supports(a) {
		v.add(ColAction, s, fmt.Sprintf("vendor %s does not support %s", info.Vendor, a),
			"for this target: "+joinActions(info.Actions))
	}
	return a
}

const actionHelp = "disable, enable, upgrade-role, downgrade-role, toggle-status " +
	"(aliases: block/deactivate/suspend = disable; unblock/activate/unsuspend = enable)"

func joinActions(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// options reads the role and the vendor cells, then asks the target's
// vendor what it makes of them. Which roles an action takes is the
// vendor's: without one, a role action needs only a role.
func (v *validator) options(op *Op, f *fields, vendor []Column, info *TargetInfo) {
	for s, c := range vendor {
		if val := v.readCell(c, cell(f.slots[s])); val != "" {
			op.Cells = append(op.Cells, Cell{c.Name, val})
		}
	}
	if op.Action == UpgradeRole || op.Action == DowngradeRole {
		op.Role = cell(f.Role)
		if op.Role == "" && (info == nil || info.Validator == nil) {
			v.add(ColRole, "", "role is empty", "the role to set, as the target's vendor names it")
		}
	}
	if info != nil && info.Validator != nil {
		var problems []Problem
		*op, problems = info.Validator.Validate(*op, info.Settings)
		v.vendorColumns(problems)
	}
}

// vendorColumns adds the vendor's column problems, but none for a column
// already found wrong.
func (v *validator) vendorColumns(problems []Problem) {
	for _, p := range problems {
		if !slices.ContainsFunc(v.problems, func(q Problem) bool { return q.Column == p.Column }) {
			v.add(p.Column, p.Value, p.Msg, p.Accepted)
		}
	}
}

// boolean reads a true/false cell. Empty means false and not set.
func (v *validator) boolean(col, s string) (value, set bool) {
	switch strings.ToLower(s) {
	case "":
		return false, false
	case "true", "yes", "1":
		return true, true
	case "false", "no", "0":
		return false, true
	}
	v.add(col, s, fmt.Sprintf("%s %q is not true or false", col, s), "true/false, yes/no or 1/0, in any case")
	return false, false
}
