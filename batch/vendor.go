package batch

import (
	"context"
	"strconv"
	"strings"
)

// What a vendor knows of its own rows, beside Adapter: each is a small
// optional interface, and the core asks "does this vendor know how to ...?",
// never which vendor it is (README "Layout"). Columner, Validator and
// Inverter need no credentials: the registry hands them out without building
// a client, so `validate` works from the config alone. Discoverer and
// Reader run against the vendor and sit on the adapter.

// ColumnKind says how every cell of a vendor column is read, whatever the
// row's target: the cell's form is checked on every row that sets it.
type ColumnKind int

// The column kinds.
const (
	// Text is taken as written (trimmed).
	Text ColumnKind = iota
	// Flag is true/false, yes/no or 1/0 in any case; kept as "true" or "false".
	Flag
	// Email must hold an @.
	Email
)

// Column is an input column a vendor reads beside the core ones.
type Column struct {
	Name string
	Kind ColumnKind
	// Required says when a row must set it, for help texts ("" never).
	Required string
	// Accepted says what values it takes.
	Accepted string
	// Carry: an undo row copies the cell from the row it reverses (who
	// calls, not what changes). Otherwise the cell is an option of the
	// change, and undo rows set it themselves (Inverse.Cells) or leave it
	// empty.
	Carry bool
}

// Columner is a vendor whose rows carry columns of its own.
type Columner interface {
	Columns() []Column
}

// Validator checks a row against a vendor's own rules: which roles an
// action takes, which columns it needs. Validate returns op as the vendor
// spells it (a role's canonical spelling) and its problems; settings are
// the target's keys from the config. The parser fills each Problem's
// Line, and drops a problem in a column that already has one. (op goes by
// value: a pointer through an interface would cost every row an
// allocation.)
type Validator interface {
	Validate(op Op, settings map[string]string) (Op, []Problem)
}

// Inverse is one undo row for an applied change: the action, the role and
// the vendor cells it sets, and a note when an operator must fill a cell in.
type Inverse struct {
	Action Action
	Role   string
	Cells  []Cell
	Note   string
}

// Inverter is a vendor that knows how to reverse its changes (undo.csv).
type Inverter interface {
	// Invert lists the undo rows for op, which was applied; none when it
	// knows of no undo.
	Invert(op Op) []Inverse
	// UndoColumns are the columns undo.csv adds when an input with header
	// h lacks them: those an operator may have to fill in an undo row.
	UndoColumns(h Header) []string
}

// Discoverer is an adapter that asks its vendor, once at the start of a
// run, what it supports.
type Discoverer interface {
	// Discover returns what was found, in words for the log. An error is
	// not fatal: the adapter finds out again with the first row.
	Discover(ctx context.Context) (string, error)
}

// Cell is one vendor column's value in a row.
type Cell struct{ Column, Value string }

// Cell returns the value of vendor column name in op ("" when unset).
func (op Op) Cell(name string) string {
	for _, c := range op.Cells {
		if c.Column == name {
			return c.Value
		}
	}
	return ""
}

// Flag reports whether flag column name is set true in op.
func (op Op) Flag(name string) bool { return op.Cell(name) == "true" }

// readCell checks one vendor cell's form and returns its value as kept.
func (v *validator) readCell(c Column, s string) string {
	switch c.Kind {
	case Flag:
		b, set := v.boolean(c.Name, s)
		if !set {
			return ""
		}
		return strconv.FormatBool(b)
	case Email:
		if s != "" && !strings.Contains(s, "@") {
			v.add(c.Name, s, c.Name+" has no @", "an email address such as ops@example.com")
		}
	}
	return s
}
